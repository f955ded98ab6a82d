"""What each OpenAI image model accepts: sizes, qualities, formats, counts and features.

The table drives local validation (``_options.py``), so a request a model
would refuse fails before anything is sent. Model ids not in the table are
passed through: ids that start like a GPT image model get that family's
rules with open-ended sizes and qualities (new snapshots appear often and the
server is the judge), anything else is sent as given.

The table follows the official ``openai`` SDK's types (``ImageModel``, the
image parameter and stream event types, 3.57): its models, which of them
are retired, which qualities and sizes each takes. Where the SDK says nothing
about a model's rule, the rule is left open (``None``) and the server judges,
rather than guessed. A retired model is still sent when asked for, with a
:class:`RetiredModelWarning` naming its replacement.
"""

from __future__ import annotations

import re

import attrs

from imagestream import ModelInfo, Pricing

from ._pricing import IMAGE_MODEL_PRICES, dalle_image_price

__all__ = [
    "MODELS",
    "NO_STREAM_FORMATS",
    "OUTPUT_FORMATS",
    "STREAM_FORMATS",
    "ModelSpec",
    "RetiredModelWarning",
    "pricing_for",
    "spec_for",
]

_GPT_SIZES = ("auto", "1024x1024", "1536x1024", "1024x1536")
_GPT_QUALITIES = ("auto", "low", "medium", "high")
# gpt-image-2.5-sunburst and gpt-image-2.5-flare (and their snapshots) also take these.
_GPT_25_QUALITIES = (*_GPT_QUALITIES, "xhigh", "max")

STREAM_FORMATS = ("png", "jpeg", "webp")
"""Output formats an image can be streamed in (the partial image events' ``output_format``)."""
NO_STREAM_FORMATS = ("gif",)
"""Output formats the Images API cannot stream, nor send partial images of."""
OUTPUT_FORMATS = (*STREAM_FORMATS, *NO_STREAM_FORMATS)
"""Output formats sent for a GPT image model. The API's ``svg`` is refused locally:
it is no raster image, and imagestream's image checks would reject it after it
was made (and billed)."""


class RetiredModelWarning(FutureWarning):
    """A retired OpenAI model was asked for; the request is still sent.

    OpenAI has shut the model down (the official SDK lists it as deprecated),
    so the server will most likely refuse it; the message names the
    replacement. A :class:`FutureWarning`, not a :class:`DeprecationWarning`,
    because Python shows those only to the ``__main__`` module's code and this
    one is meant for whoever runs the request. Silence it with
    ``warnings.filterwarnings("ignore", category=RetiredModelWarning)``.
    """


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
        input_fidelity: Accepted ``input_fidelity`` values (empty: refused;
            ``None``: not documented, so not checked locally).
        retired: The date OpenAI shut the model down (``YYYY-MM-DD``), if it did.
        replacement: What to use instead of a retired model.
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
    input_fidelity: tuple[str, ...] | None = ()
    retired: str | None = None
    replacement: str = ""
    known: bool = True

    @property
    def gpt_image(self) -> bool:
        """True for the GPT image models (streaming, partial images, token usage)."""
        return self.family == "gpt-image"

    @property
    def dalle(self) -> bool:
        """True for DALL·E 2 and 3."""
        return self.family in ("dall-e-2", "dall-e-3")

    def retired_message(self) -> str | None:
        """What :class:`RetiredModelWarning` says about this model, or ``None``."""
        if self.retired is None:
            return None
        return (
            f"openai: {self.id} was retired on {self.retired}; the request is sent, "
            f"but OpenAI will most likely refuse it: use {self.replacement} instead"
        )


def _gpt2(
    model_id: str,
    description: str,
    qualities: tuple[str, ...] = _GPT_QUALITIES,
    input_fidelity: tuple[str, ...] | None = (),
) -> ModelSpec:
    """A model with gpt-image-2's free sizes (multiples of 16, 1:3..3:1, up to 3840x2160)."""
    return ModelSpec(
        model_id,
        "gpt-image",
        description,
        sizes=None,
        free_size=True,
        qualities=qualities,
        input_fidelity=input_fidelity,
    )


_DALLE_RETIRED = "2026-05-12"
_DALLE_REPLACEMENT = "a GPT image model (gpt-image-1.5, gpt-image-2.5-sunburst, ...)"
_SUNBURST = "GPT Image 2.5 sunburst: free sizes up to 3840x2160, quality up to xhigh and max."
_FLARE = "GPT Image 2.5 flare: free sizes up to 3840x2160, quality up to xhigh and max."
_GPT_26 = "sizes and qualities are the server's to check (the SDK lists none yet)"

_SPECS: dict[str, ModelSpec] = {
    spec.id: spec
    for spec in (
        ModelSpec(
            "gpt-image-1",
            "gpt-image",
            "GPT Image 1: retired 2026-10-23 (still sent, with a warning).",
            input_fidelity=("high", "low"),
            retired="2026-10-23",
            replacement="gpt-image-2.5-sunburst or gpt-image-2.5-flare",
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
        _gpt2("gpt-image-2", "GPT Image 2: free sizes up to 3840x2160, streamed partial images."),
        _gpt2("gpt-image-2-2026-04-21", "GPT Image 2, the 2026-04-21 snapshot."),
        _gpt2(
            "gpt-image-2.5-sunburst", _SUNBURST, qualities=_GPT_25_QUALITIES, input_fidelity=None
        ),
        _gpt2(
            "gpt-image-2.5-sunburst-2026-09-08",
            "GPT Image 2.5 sunburst, the 2026-09-08 snapshot.",
            qualities=_GPT_25_QUALITIES,
            input_fidelity=None,
        ),
        _gpt2("gpt-image-2.5-flare", _FLARE, qualities=_GPT_25_QUALITIES, input_fidelity=None),
        _gpt2(
            "gpt-image-2.5-flare-2026-09-08",
            "GPT Image 2.5 flare, the 2026-09-08 snapshot.",
            qualities=_GPT_25_QUALITIES,
            input_fidelity=None,
        ),
        ModelSpec(
            "gpt-image-2.6-sunburst",
            "gpt-image",
            f"GPT Image 2.6 sunburst (the Responses tool's default); {_GPT_26}.",
            sizes=None,
            qualities=None,
            input_fidelity=None,
        ),
        ModelSpec(
            "gpt-image-2.6-flare",
            "gpt-image",
            f"GPT Image 2.6 flare; {_GPT_26}.",
            sizes=None,
            qualities=None,
            input_fidelity=None,
        ),
        ModelSpec(
            "dall-e-3",
            "dall-e-3",
            f"DALL-E 3: retired {_DALLE_RETIRED} (still sent, with a warning); one image, no streaming.",
            sizes=("1024x1024", "1792x1024", "1024x1792"),
            qualities=("standard", "hd"),
            max_n=1,
            edits=False,
            max_edit_images=0,
            retired=_DALLE_RETIRED,
            replacement=_DALLE_REPLACEMENT,
        ),
        ModelSpec(
            "dall-e-2",
            "dall-e-2",
            f"DALL-E 2: retired {_DALLE_RETIRED} (still sent, with a warning); small square images.",
            sizes=("256x256", "512x512", "1024x1024"),
            qualities=("standard",),
            max_edit_images=1,
            retired=_DALLE_RETIRED,
            replacement=_DALLE_REPLACEMENT,
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
            input_fidelity=None,
            known=False,
        )
    if model.startswith(("dall-e-2-", "dall-e-3-")):
        return attrs.evolve(_SPECS[model[:8]], id=model)
    return ModelSpec(model, "other", sizes=None, qualities=None, input_fidelity=None, known=False)


def _undated(model: str) -> str:
    """``gpt-image-2-2026-04-21`` → ``gpt-image-2``; other ids unchanged."""
    match = re.fullmatch(r"(.+)-\d{4}-\d{2}-\d{2}", model)
    return match.group(1) if match else model


def pricing_for(model: str) -> Pricing | None:
    """Token prices of ``model``; a dated snapshot is priced like its base model.

    ``None`` when no price could be checked (the newest models: see ``_pricing``).
    """
    spec = spec_for(model)
    if spec.dalle:
        # Billed per image; this is the default size and quality. The provider
        # reports the exact price of each request in its Usage chunk.
        return Pricing(per_image=dalle_image_price(spec.family, None, None))
    return IMAGE_MODEL_PRICES.get(model) or IMAGE_MODEL_PRICES.get(_undated(model))


MODELS: tuple[ModelInfo, ...] = tuple(
    ModelInfo(
        id=spec.id,
        description=spec.description,
        streams_previews=spec.gpt_image,
        pricing=pricing_for(spec.id),
    )
    for spec in _SPECS.values()
)
"""The models ``imagestream providers`` lists (any other id is passed through)."""
