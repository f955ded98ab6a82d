"""``python -m imagestream``: the command line."""

from .cli import run

run()
