"""What the ``procedural`` provider says about itself, for listing it without importing it.

The entry module registers a :class:`~imagestream.provider.LazyProvider`
with these values and the provider class sets its attributes from them, so
``imagestream providers`` and ``--help`` never import the renderer, and the
two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from imagestream import ModelInfo

NAME: Final = "procedural"
DESCRIPTION: Final = "offline, no key: draws simple prompts as asked, anything else as abstract art"
DEFAULT_MODEL: Final = "procedural-1"
MODELS: Final = (
    ModelInfo(
        DEFAULT_MODEL,
        "deterministic drawing with diffusion-like previews (seed, size, steps)",
        streams_previews=True,
    ),
)

PREVIEW_FORMAT: Final = "jpeg"
PREVIEW_QUALITY: Final = 70
PREVIEW_SIZE: Final = 256
"""The longest side of a preview, in pixels: a preview of a bigger picture is scaled down."""

OPTIONS: Final[Mapping[str, Any]] = {
    "preview_format": {
        "type": "choice",
        "description": "format of the streamed previews",
        "default": PREVIEW_FORMAT,
        "choices": ("png", "jpeg", "webp"),
    },
    "preview_quality": {
        "type": "integer",
        "description": "JPEG/WebP quality of the previews",
        "default": PREVIEW_QUALITY,
        "min": 1,
        "max": 100,
    },
    "preview_size": {
        "type": "integer",
        "description": "longest side of the previews in pixels (never more than the picture's)",
        "default": PREVIEW_SIZE,
        "min": 16,
        "max": 4096,
    },
}
