"""The plugin module the ``imagestream`` entry point names: registers the ``novelai`` provider.

Importing it is cheap: the provider imports nothing heavy until it is used
(aiohttp comes with the core's HTTP client, the decoders with their plugins).
"""

from __future__ import annotations

from collections.abc import Callable

from imagestream import Provider, hookimpl

from ._provider import NovelAIProvider

__all__ = ["register_providers"]


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    """Register :class:`~imagestream_novelai.NovelAIProvider` as ``novelai``."""
    register(NovelAIProvider())
