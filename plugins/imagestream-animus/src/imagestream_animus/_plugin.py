"""The module the ``imagestream`` entry point names: the ``animus`` provider and ``imagestream chat``.

Light on purpose: it is imported in every process that loads plugins. It
registers a :class:`~imagestream.provider.LazyProvider` with what
:mod:`._meta` declares: no provider class, HTTP stack nor asyncio until a
generation or a chat runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from imagestream import Provider, hookimpl
from imagestream.provider import LazyProvider

from ._meta import DEFAULT_MODEL, DESCRIPTION, KEY_ENV, MODELS, PROVIDER

if TYPE_CHECKING:
    import click  # the command line's, imported only when it runs

__all__ = ["register_commands", "register_providers"]


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    """Register :class:`~imagestream_animus.AnimusProvider` as ``animus``."""
    register(
        LazyProvider(
            "imagestream_animus._provider:AnimusProvider",
            name=PROVIDER,
            description=DESCRIPTION,
            models=MODELS,
            default_model=DEFAULT_MODEL,
            options="imagestream_animus._provider:OPTIONS",
            key_env=KEY_ENV,
        )
    )


@hookimpl
def register_commands(register: Callable[[click.Command], None]) -> None:
    """Register ``chat``."""
    from ._cli import chat_command

    register(chat_command)
