"""The chunk protocol: what ``imagestream.stream()`` yields, whatever the provider.

Every chunk is a frozen, slotted ``attrs`` record. A stream is any sequence of

- :class:`TextDelta` — a piece of text the model said,
- :class:`ImagePreview` — an intermediate picture (a partial image or a
  sampler step), blurry to sharp,
- :class:`ImageFinal` — a finished image,
- :class:`Usage` — tokens and cost, usually once near the end,
- :class:`Progress` — how far along the work is, with no picture (a
  provider that reports a percentage or a step count but sends no preview).

Chunks made by the core rather than received from the provider (fake
streaming of a provider that cannot stream) carry ``synthetic=True``, so a UI
can tell a real preview from none at all.

Plain dicts (for JSON or msgpack) come from :func:`imagestream.chunk_to_dict`,
where the ``type`` key is the :attr:`kind` below.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from ._image import ImageData

__all__ = ["Chunk", "ImageFinal", "ImagePreview", "Progress", "TextDelta", "Usage"]


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return dict(value) if value else {}


@attrs.frozen
class TextDelta:
    """A piece of text from the model (a caption, a revised prompt, a reply).

    Attributes:
        text: The new text; concatenate deltas to get the whole.
        synthetic: True when the core made this chunk (fake streaming).
        thought: True for the model's reasoning (a thought summary) rather
            than its answer; kept apart from the answer's text.
    """

    kind: ClassVar[str] = "text_delta"

    text: str
    synthetic: bool = False
    thought: bool = False


@attrs.frozen
class ImagePreview:
    """An intermediate image: a provider's partial image or a sampler step.

    Attributes:
        image: The preview payload (often a small JPEG).
        index: 0-based number of this preview within its sample.
        sample: Which image of a batch this preview belongs to (0-based).
        step: The sampler step (0-based), when the provider says.
        total_steps: The number of sampler steps, when known.
        sigma: The sampler's noise level at this step, when the provider says.
        mime_type: Declared or sniffed type of the payload, when known.
        width: Width in pixels, when known.
        height: Height in pixels, when known.
        synthetic: True when the core made this chunk.
        extra: Provider-specific facts kept as sent (``quality``, ``background``, ...).
    """

    kind: ClassVar[str] = "image_preview"

    image: ImageData
    index: int
    sample: int = 0
    step: int | None = None
    total_steps: int | None = None
    sigma: float | None = None
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None
    synthetic: bool = False
    extra: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)

    @property
    def progress(self) -> float | None:
        """Fraction done (0..1) when the step and total are known."""
        if self.step is None or not self.total_steps:
            return None
        return min(1.0, (self.step + 1) / self.total_steps)


@attrs.frozen
class ImageFinal:
    """A finished image.

    Attributes:
        image: The image payload.
        sample: Which image of a batch this is (0-based).
        mime_type: Declared or sniffed type of the payload, when known.
        width: Width in pixels, when known.
        height: Height in pixels, when known.
        revised_prompt: The prompt the provider actually used, when it says.
        seed: The seed the image was made with, when known.
        synthetic: True when the core made this chunk (fake streaming).
        extra: Provider-specific facts kept as sent.
    """

    kind: ClassVar[str] = "image_final"

    image: ImageData
    sample: int = 0
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None
    revised_prompt: str | None = None
    seed: int | None = None
    synthetic: bool = False
    extra: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)


@attrs.frozen
class Usage:
    """Tokens (and cost) the provider reported; ``None`` means "not reported".

    Attributes:
        input_tokens: All input tokens.
        output_tokens: All output tokens.
        total_tokens: Input plus output, as reported.
        input_text_tokens: Input tokens that were text.
        input_image_tokens: Input tokens that were images (edits, references).
        output_text_tokens: Output tokens that were text.
        output_image_tokens: Output tokens that were images.
        thought_tokens: Tokens the model spent reasoning (billed as output
            text by the providers that report them), when reported.
        cost_usd: Cost in US dollars, when the provider reports it directly.
        synthetic: True when the core made this chunk.
        raw: The provider's usage object as sent.
    """

    kind: ClassVar[str] = "usage"

    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    input_text_tokens: int | None = None
    input_image_tokens: int | None = None
    output_text_tokens: int | None = None
    output_image_tokens: int | None = None
    thought_tokens: int | None = None
    cost_usd: float | None = None
    synthetic: bool = False
    raw: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)


def _fraction(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    if not 0.0 <= value <= 1.0:  # also refuses NaN
        raise ValueError(f"Progress.fraction must be between 0 and 1, not {value!r}")
    return value


@attrs.frozen
class Progress:
    """How far along a generation is, without a picture.

    For providers that report progress but send no preview: a polled
    percentage, a queue position, a sampler step count from a server whose
    previews are off. A provider that sends a picture at each step uses
    :class:`ImagePreview` (which has ``step`` and ``total_steps`` too)
    instead.

    Attributes:
        fraction: Fraction done, 0 to 1, when known (a provider's 0-100
            percentage divided by 100).
        step: The current step (0-based), when the provider counts steps.
        total_steps: The number of steps, when known.
        message: What is happening, in the provider's words (``"queued"``,
            ``"loading model"``), when it says.
        sample: Which image of a batch this is about (0-based).
        synthetic: True when the core made this chunk.
        extra: Provider-specific facts kept as sent (a queue position, a node id).
    """

    kind: ClassVar[str] = "progress"

    fraction: float | None = attrs.field(default=None, converter=_fraction)
    step: int | None = None
    total_steps: int | None = None
    message: str | None = None
    sample: int = 0
    synthetic: bool = False
    extra: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)

    @property
    def progress(self) -> float | None:
        """Fraction done: ``fraction``, else from ``step`` and ``total_steps``, else ``None``."""
        if self.fraction is not None:
            return self.fraction
        if self.step is None or not self.total_steps:
            return None
        return min(1.0, (self.step + 1) / self.total_steps)


Chunk = TextDelta | ImagePreview | ImageFinal | Usage | Progress
"""Any chunk of the protocol."""

CHUNK_TYPES: tuple[type[Any], ...] = (TextDelta, ImagePreview, ImageFinal, Usage, Progress)
