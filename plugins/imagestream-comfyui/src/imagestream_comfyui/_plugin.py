"""The module the ``imagestream`` entry point names: registers the ``comfyui`` provider.

Light on purpose: every process that loads plugins imports it. It registers
a :class:`~imagestream.provider.LazyProvider` with what :mod:`._meta`
declares, and the server's checkpoints as its models (:mod:`._server` asks
the server with a short blocking request when they are listed): no provider
class, workflow code, HTTP stack nor asyncio until a run starts.
"""

from __future__ import annotations

from collections.abc import Callable

from imagestream import Provider, hookimpl
from imagestream.provider import LazyProvider

from ._meta import DESCRIPTION, NAME

__all__ = ["register_providers"]


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    """Register :class:`~imagestream_comfyui.ComfyUIProvider` as ``comfyui``."""
    # What ComfyUIProvider says about itself (the plugin's tests check it does).
    register(
        LazyProvider(
            "imagestream_comfyui._provider:ComfyUIProvider",
            name=NAME,
            description=DESCRIPTION,
            models="imagestream_comfyui._server:server_models",
            options="imagestream_comfyui._provider:OPTIONS",
            streams_previews=True,
        )
    )
