"""What each OpenAI image model accepts: sizes, qualities, counts and features.

The table drives local validation (``_options.py``), so a request a model
would refuse fails before anything is sent. Model ids not in the table are
passed through: ids that start like a GPT image model get that family's
rules with open-ended sizes and qualities (new snapshots appear often and the
server is the judge), anything else is sent as given.
"""

from __future__ import annotations

import attrs

from imagestream import ModelInfo, Pricing

from ._pricing import IMAGE_MODEL_PRICES, dalle_image_price

__all__ = ["MODELS", "ModelSpec", "pricing_for", "spec_for"]

_GPT_SIZES = ("auto", "1024x1024", "1536x1024", "1024x1536")
_GPT_QUALITIES = ("auto", "low", "medium", "high")


@attrs.frozen
class ModelSpec:
    """The rules of one image model.

    Attributes:
        id: Model id.
        family: ``"gpt-image"``, ``"dall-e-2"``, ``"dall-e-3"`` or ``"other"``.
        description: One line for ``imagestream providers``.
        sizes: Accepted sizes, or ``None`` for "any WIDTHxHEIGHT the family allows".
        free_size: Sizes follow the ``gpt-image-2`` rule (multiples of 16, ratio
            within 1:3..3:1, at most 3840x2160) instead of a fixed list.
        qualities: Accepted ``quality`` values, or ``None`` for any.
        max_n: Most images per request.
        edits: The model can edit images (``/v1/images/edits``).
        max_edit_images: Most input images of one edit.
        input_fidelity: Accepted ``input_fidelity`` values (empty: refused).
        known: False for an id that is not in the table (rules are relaxed).
    """

    id: str
    family: str
    description: str = ""
    sizes: tuple[str, ...] | None = _GPT_SIZES
    free_size: bool = False
    qualities: tuple[str, ...] | None = _GPT_QUALITIES
    max_n: int = 10
    edits: bool = True
    max_edit_images: int = 16
    input_fidelity: tuple[str, ...] = ()
    known: bool = True

    @property
    def gpt_image(self) -> bool:
        """True for the GPT image models (streaming, partial images, token usage)."""
        return self.family == "gpt-image"

    @property
    def dalle(self) -> bool:
        """True for DALL·E 2 and 3."""
        return self.family in ("dall-e-2", "dall-e-3")


_SPECS: dict[str, ModelSpec] = {
    spec.id: spec
    for spec in (
        ModelSpec(
            "gpt-image-1",
            "gpt-image",
            "GPT Image 1: generations and edits, streamed partial images.",
            input_fidelity=("high", "low"),
        ),
        ModelSpec(
            "gpt-image-1-mini",
            "gpt-image",
            "GPT Image 1 mini: the low-cost GPT image model, streamed partial images.",
            input_fidelity=("low",),
        ),
        ModelSpec(
            "gpt-image-1.5",
            "gpt-image",
            "GPT Image 1.5: faster, sharper text, streamed partial images.",
            input_fidelity=("high", "low"),
        ),
        ModelSpec(
            "chatgpt-image-latest",
            "gpt-image",
            "The image model ChatGPT currently uses (same rules as GPT Image 1.5).",
            input_fidelity=("high", "low"),
        ),
        ModelSpec(
            "gpt-image-2",
            "gpt-image",
            "GPT Image 2: free sizes up to 3840x2160, streamed partial images.",
            sizes=None,
            free_size=True,
        ),
        ModelSpec(
            "dall-e-3",
            "dall-e-3",
            "DALL-E 3: one image per request, no streaming, revised prompts.",
            sizes=("1024x1024", "1792x1024", "1024x1792"),
            qualities=("standard", "hd"),
            max_n=1,
            edits=False,
            max_edit_images=0,
        ),
        ModelSpec(
            "dall-e-2",
            "dall-e-2",
            "DALL-E 2: small square images, no streaming; edits take one square PNG.",
            sizes=("256x256", "512x512", "1024x1024"),
            qualities=("standard",),
            max_edit_images=1,
        ),
    )
}


def spec_for(model: str) -> ModelSpec:
    """The rules for ``model``; relaxed rules for ids not in the table."""
    spec = _SPECS.get(model)
    if spec is not None:
        return spec
    if model.startswith(("gpt-image-", "chatgpt-image")):
        # A snapshot (gpt-image-2-2026-04-21) keeps its base model's rules;
        # a newer model gets the family's rules with sizes and qualities open.
        for known_id, known_spec in _SPECS.items():
            if known_spec.gpt_image and model.startswith(known_id + "-20"):
                return attrs.evolve(known_spec, id=model)
        return ModelSpec(
            model,
            "gpt-image",
            sizes=None,
            free_size=False,
            qualities=None,
            input_fidelity=("high", "low"),
            known=False,
        )
    if model.startswith(("dall-e-2-", "dall-e-3-")):
        return attrs.evolve(_SPECS[model[:8]], id=model)
    return ModelSpec(
        model, "other", sizes=None, qualities=None, input_fidelity=("high", "low"), known=False
    )


def _pricing(spec: ModelSpec) -> Pricing | None:
    if spec.dalle:
        # Billed per image; this is the default size and quality. The provider
        # reports the exact price of each request in its Usage chunk.
        return Pricing(per_image=dalle_image_price(spec.id, None, None))
    return IMAGE_MODEL_PRICES.get(spec.id)


def pricing_for(model: str) -> Pricing | None:
    """Token prices of ``model``; a dated snapshot is priced like its base model."""
    spec = spec_for(model)
    for known_id, known_spec in _SPECS.items():
        if model == known_id or (
            spec.family == known_spec.family and model.startswith(known_id + "-20")
        ):
            return _pricing(known_spec)
    return None


MODELS: tuple[ModelInfo, ...] = tuple(
    ModelInfo(
        id=spec.id,
        description=spec.description,
        streams_previews=spec.gpt_image,
        pricing=_pricing(spec),
    )
    for spec in _SPECS.values()
)
"""The models ``imagestream providers`` lists (any other id is passed through)."""
