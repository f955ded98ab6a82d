"""The module the ``imagestream`` entry point names: the ``animus`` provider and ``imagestream chat``.

Light on purpose: it is imported in every process that loads plugins. No
HTTP stack and no asyncio until a generation or a chat runs.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from imagestream import Provider, hookimpl

from ._provider import AnimusProvider

__all__ = ["register_commands", "register_providers"]


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    """Register :class:`~imagestream_animus.AnimusProvider` as ``animus``."""
    register(AnimusProvider())


@hookimpl
def register_commands(register: Callable[[click.Command], None]) -> None:
    """Register ``chat``."""
    from ._cli import chat_command

    register(chat_command)
