"""imagestream-diffusers: local diffusion models, a real preview at every sampler step.

Any text-to-image pipeline that ``diffusers.DiffusionPipeline.from_pretrained``
loads (Stable Diffusion 1.x/2.x, SDXL, SD3, Flux), from a folder or from the
user's own Hugging Face cache, run in a worker thread; the event loop only
receives chunks. Importing this package imports neither torch nor diffusers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._provider import DiffusersProvider
    from ._worker import OutOfMemoryError, PipelineCache

__all__ = ["DiffusersProvider", "OutOfMemoryError", "PipelineCache"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the entry module (_plugin) is a submodule, and
    # every process that loads plugins imports it; the worker module imports
    # the chunk classes.
    if name == "DiffusersProvider":
        from ._provider import DiffusersProvider

        return DiffusersProvider
    if name in ("OutOfMemoryError", "PipelineCache"):
        from . import _worker

        return getattr(_worker, name)
    raise AttributeError(f"module 'imagestream_diffusers' has no attribute {name!r}")
