"""ComfyUI for imagestream: queue a workflow on a running ComfyUI, stream its previews.

Installed, it registers the provider ``comfyui``::

    import imagestream

    async for chunk in imagestream.stream("a castle", provider="comfyui", steps=20):
        ...

Use the provider object directly to compose your own pipeline::

    from imagestream_comfyui import ComfyUIProvider

    pipe = imagestream.Pipeline(ComfyUIProvider(), saver=True)
"""

from __future__ import annotations

from ._errors import ComfyUIExecutionError, ComfyUINodeError
from ._provider import ComfyUIProvider
from ._server import BASE_URL_ENV, DEFAULT_BASE_URL
from ._workflow import PLACEHOLDERS, default_workflow

__all__ = [
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "PLACEHOLDERS",
    "ComfyUIExecutionError",
    "ComfyUINodeError",
    "ComfyUIProvider",
    "default_workflow",
]

__version__ = "0.1.0"
