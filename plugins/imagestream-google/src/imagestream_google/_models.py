"""Google's image models: what each accepts, where it is served, what it costs.

Prices are US dollars per million tokens as Google's pricing pages list them
(ai.google.dev/gemini-api/docs/pricing and the Vertex AI generative AI
pricing page), checked 2026-11 against third-party copies of those pages:
Gemini 2.5 Flash Image bills image output at $30 per 1M tokens (about 1,290
tokens an image, so about $0.039), Gemini 3 Pro Image at $120 per 1M (1,120
tokens at 1K/2K, about $0.134; 4K costs more); text output and thoughts at
the model's text rate. Imagen 4 is billed per image ($0.02 fast, $0.04
standard, $0.06 ultra).
"""

from __future__ import annotations

from typing import NamedTuple

from imagestream import ModelInfo, Pricing

__all__ = [
    "ASPECT_RATIOS",
    "DEFAULT_MODEL",
    "IMAGE_SIZES",
    "MODELS",
    "ModelSpec",
    "spec_for",
]

DEFAULT_MODEL = "gemini-2.5-flash-image"

ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "9:16", "16:9", "21:9")
"""The ratios ``imageConfig.aspectRatio`` takes."""

IMAGE_SIZES = ("1K", "2K", "4K")
"""The resolutions ``imageConfig.imageSize`` takes."""

IMAGEN_ASPECT_RATIOS = ("1:1", "3:4", "4:3", "9:16", "16:9")
"""The ratios Imagen's ``parameters.aspectRatio`` takes."""


class ModelSpec(NamedTuple):
    """The rules of one model.

    A named tuple rather than an attrs class: every process that loads plugins
    imports this table (``imagestream providers`` shows it), and making an
    attrs class costs milliseconds there.

    Attributes:
        id: The model id sent.
        description: One line for ``imagestream providers``.
        imagen: An Imagen model: Vertex ``:predict``, no streaming, no text.
        global_only: Served only from the ``global`` Vertex location.
        image_sizes: Accepted ``imageSize`` values (empty: the option is refused).
        pricing: Token or per-image prices.
        known: False for an id not in the table (passed through as given).
    """

    id: str
    description: str = ""
    imagen: bool = False
    global_only: bool = False
    image_sizes: tuple[str, ...] = IMAGE_SIZES
    pricing: Pricing | None = None
    known: bool = True

    def info(self) -> ModelInfo:
        """The :class:`ModelInfo` ``imagestream providers`` shows."""
        # Gemini sends whole images (no partials) and Imagen none at all until
        # the end: neither claims real previews.
        return ModelInfo(self.id, self.description, streams_previews=False, pricing=self.pricing)


_GEMINI = (
    ModelSpec(
        "gemini-2.5-flash-image",
        "Gemini 2.5 Flash Image ('nano banana'): text and images interleaved, fast.",
        image_sizes=("1K",),
        pricing=Pricing(input_text=0.30, input_image=0.30, output_text=2.50, output_image=30.0),
    ),
    ModelSpec(
        "gemini-3-pro-image-preview",
        "Gemini 3 Pro Image (preview): thinks first, up to 4K, served from 'global' only.",
        global_only=True,
        pricing=Pricing(input_text=2.0, input_image=2.0, output_text=12.0, output_image=120.0),
    ),
)
_IMAGEN = (
    ModelSpec(
        "imagen-4.0-generate-001",
        "Imagen 4 (legacy, deprecated by Google; Vertex :predict, no streaming).",
        imagen=True,
        image_sizes=("1K", "2K"),
        pricing=Pricing(per_image=0.04),
    ),
    ModelSpec(
        "imagen-4.0-fast-generate-001",
        "Imagen 4 Fast (legacy, deprecated by Google).",
        imagen=True,
        image_sizes=(),
        pricing=Pricing(per_image=0.02),
    ),
    ModelSpec(
        "imagen-4.0-ultra-generate-001",
        "Imagen 4 Ultra (legacy, deprecated by Google).",
        imagen=True,
        image_sizes=("1K", "2K"),
        pricing=Pricing(per_image=0.06),
    ),
)

MODELS: dict[str, ModelSpec] = {spec.id: spec for spec in (*_GEMINI, *_IMAGEN)}
"""Every model the plugin knows, by id."""


def spec_for(model: str) -> ModelSpec:
    """The rules of ``model``; an unknown id passes through (``imagen-*`` ids as Imagen)."""
    model = model.removeprefix("models/")
    if model in MODELS:
        return MODELS[model]
    # New snapshots appear often and the server is the judge of them.
    return ModelSpec(model, imagen=model.startswith("imagen-"), known=False)
