"""The module the ``imagestream`` entry point names: adds ``imagestream serve``.

Light on purpose: it runs whenever the command line lists its commands. The
server itself is imported only when ``serve`` runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from imagestream import hookimpl

if TYPE_CHECKING:
    import click  # the command line's, imported only when it runs

__all__ = ["register_commands"]


@hookimpl
def register_commands(register: Callable[[click.Command], None]) -> None:
    """Register ``serve``."""
    from ._cli import serve

    register(serve)
