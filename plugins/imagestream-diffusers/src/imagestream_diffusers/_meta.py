"""What the ``diffusers`` provider says about itself, for listing it without importing it.

The entry module registers a :class:`~imagestream.provider.LazyProvider`
with these values and the provider class sets its attributes from them, so
``imagestream providers`` and ``--help`` import neither the provider nor
torch nor diffusers, and the two cannot disagree. The option table stays
with the provider (``OPTIONS`` in :mod:`._provider`), imported when asked for.
"""

from __future__ import annotations

from typing import Final

from imagestream import ModelInfo

NAME: Final = "diffusers"
DESCRIPTION: Final = (
    "local models through diffusers (SD 1.x/2.x, SDXL, SD3, Flux): "
    "a preview at every sampler step; -m FOLDER or a Hub id in your cache"
)
DEFAULT_MODEL: Final[str | None] = None
MODELS: Final = (
    ModelInfo(
        "stable-diffusion-v1-5/stable-diffusion-v1-5",
        "Stable Diffusion 1.5 (512x512), from your Hugging Face cache",
        streams_previews=True,
    ),
    ModelInfo(
        "stabilityai/stable-diffusion-xl-base-1.0",
        "SDXL base (1024x1024), from your Hugging Face cache",
        streams_previews=True,
    ),
    ModelInfo(
        "stabilityai/stable-diffusion-3.5-medium",
        "Stable Diffusion 3.5 Medium, from your Hugging Face cache",
        streams_previews=True,
    ),
    ModelInfo(
        "black-forest-labs/FLUX.1-schnell",
        "Flux.1 schnell (4 steps), from your Hugging Face cache",
        streams_previews=True,
    ),
)
