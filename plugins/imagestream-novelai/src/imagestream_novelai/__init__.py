"""NovelAI image generation for imagestream, streamed step by step.

Installed, it registers the provider ``novelai``::

    import imagestream

    async for chunk in imagestream.stream("1girl, lighthouse", provider="novelai", steps=28):
        ...

Use the provider object directly to compose your own pipeline::

    from imagestream_novelai import NovelAIProvider

    pipe = imagestream.Pipeline(NovelAIProvider(), saver=True)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagestream.provider import lazy_exports

from ._models import DEFAULT_MODEL, MODELS, ModelSpec

if TYPE_CHECKING:
    from imagestream.provider import KeyConflictWarning as KeyWarning

    from ._options import KNOWN_OPTIONS
    from ._provider import NovelAIProvider
    from ._zip import ZipLimits

# KeyWarning is the kit's KeyConflictWarning, kept under its 0.1 name.
__all__ = [
    "DEFAULT_MODEL",
    "KNOWN_OPTIONS",
    "MODELS",
    "KeyWarning",
    "ModelSpec",
    "NovelAIProvider",
    "ZipLimits",
]

__version__ = "0.2.0"

# Imported on first use: the entry module (_plugin) is a submodule, and every
# process that loads plugins imports it, so this package imports only the model table.
_LAZY = {
    "KNOWN_OPTIONS": "._options",
    "NovelAIProvider": "._provider",
    "ZipLimits": "._zip",
    "KeyWarning": "imagestream.provider:KeyConflictWarning",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
