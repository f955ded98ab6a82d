"""The module the ``imagestream`` entry point names: adds ``imagestream serve``.

Light on purpose: it runs whenever the command line lists its commands. The
server itself is imported only when ``serve`` runs.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from imagestream import hookimpl

__all__ = ["register_commands"]


@hookimpl
def register_commands(register: Callable[[click.Command], None]) -> None:
    """Register ``serve``."""
    from ._cli import serve

    register(serve)
