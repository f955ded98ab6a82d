"""``python -m imagestream``: the command line."""

from .cli import main

main()
