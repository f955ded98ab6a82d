"""What the ``animus`` provider says about itself, for listing it without importing it.

The entry module registers a :class:`~imagestream.provider.LazyProvider`
with these values and the provider class sets its attributes from them, so
``imagestream providers`` and ``--help`` import no HTTP stack and no request
code, and the two cannot disagree. The option table stays with the code
that reads it (``OPTIONS`` in :mod:`._provider`), imported when asked for.
"""

from __future__ import annotations

from typing import Final

from imagestream import ModelInfo

PROVIDER: Final = "animus"

KEY_ENV: Final = "ANIMUS_API_KEY"
"""The organisation's API key, exchanged for short-lived tokens."""

GENERATION: Final = "generation"
GENERATE_IMAGE: Final = "generate-image"

DESCRIPTION: Final = (
    "Animus: images with polled progress (0-100), key exchanged for a refreshed JWT"
)
MODELS: Final = (
    ModelInfo(
        GENERATION, "POST /generation/create, status polled: Progress 0-100, then the image(s)"
    ),
    ModelInfo(GENERATE_IMAGE, "POST /generate/image (alpha): one image URL, no progress"),
)
DEFAULT_MODEL: Final = GENERATION
