"""What the ``comfyui`` provider says about itself, for listing it without importing it.

The entry module registers a :class:`~imagestream.provider.LazyProvider`
with these values, and :class:`~imagestream_comfyui.ComfyUIProvider` sets
its attributes from them, so the two cannot disagree. Its models are the
server's checkpoints, from :func:`._server.server_models`; the option table
stays with the code that reads it (``OPTIONS`` in :mod:`._provider`),
imported when asked for.
"""

from __future__ import annotations

from typing import Final

NAME: Final = "comfyui"

DESCRIPTION: Final = (
    "ComfyUI on your machine: any workflow, previews at each step over its WebSocket"
)
