"""The module the ``imagestream`` entry point names: adds ``imagestream batch``.

Light on purpose: it runs whenever the command line lists its commands. The
batch machinery (asyncio, SQLite, Ray) is imported only when ``batch`` runs.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from imagestream import hookimpl

__all__ = ["register_commands"]


@hookimpl
def register_commands(register: Callable[[click.Command], None]) -> None:
    """Register ``batch``."""
    from ._cli import batch

    register(batch)
