"""The module the ``imagestream`` entry point names: registers the ``openai`` provider.

It stays light on purpose: the plugin manager imports it at start-up, so it
imports neither aiohttp nor the API modules.
"""

from __future__ import annotations

from collections.abc import Callable

from imagestream import Provider, hookimpl

from ._provider import OpenAIProvider

__all__ = ["register_providers"]


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    """Register :class:`~imagestream_openai.OpenAIProvider` as ``openai``."""
    register(OpenAIProvider())
