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

from typing import TYPE_CHECKING

from imagestream.provider import lazy_exports

if TYPE_CHECKING:
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

# Imported on first use: the entry module (``_plugin``) is a submodule, and
# every process that loads plugins imports it, so this package imports nothing.
_LAZY: dict[str, str] = {
    "BASE_URL_ENV": "._server",
    "DEFAULT_BASE_URL": "._server",
    "PLACEHOLDERS": "._workflow",
    "ComfyUIExecutionError": "._errors",
    "ComfyUINodeError": "._errors",
    "ComfyUIProvider": "._provider",
    "default_workflow": "._workflow",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, [*__all__, "__version__"])
