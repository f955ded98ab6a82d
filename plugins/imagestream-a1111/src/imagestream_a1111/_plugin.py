"""The module the ``imagestream`` entry point names: registers the ``a1111`` provider.

Light on purpose: every process that loads plugins imports it. It registers
a :class:`~imagestream.provider.LazyProvider` with what :mod:`._meta`
declares, and the server's checkpoints as its models (:mod:`._server` asks
the server with a short blocking request when they are listed): no provider
class, HTTP stack nor asyncio until a run starts.
"""

from __future__ import annotations

from collections.abc import Callable

from imagestream import Provider, hookimpl
from imagestream.provider import LazyProvider

from ._meta import DESCRIPTION, MAX_CONCURRENCY, NAME

__all__ = ["register_providers"]


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    """Register :class:`~imagestream_a1111.A1111Provider` as ``a1111``."""
    # What A1111Provider says about itself (the plugin's tests check it does).
    register(
        LazyProvider(
            "imagestream_a1111._provider:A1111Provider",
            name=NAME,
            description=DESCRIPTION,
            models="imagestream_a1111._server:server_models",
            options="imagestream_a1111._provider:OPTIONS",
            max_concurrency=MAX_CONCURRENCY,
            streams_previews=True,
        )
    )
