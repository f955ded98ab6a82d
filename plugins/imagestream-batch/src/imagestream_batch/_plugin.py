"""The module the ``imagestream`` entry point names: adds ``imagestream batch``.

Light on purpose: it runs whenever the command line lists its commands. The
batch machinery (asyncio, SQLite, Ray) is imported only when ``batch`` runs.
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
    """Register ``batch``."""
    from ._cli import batch

    register(batch)
