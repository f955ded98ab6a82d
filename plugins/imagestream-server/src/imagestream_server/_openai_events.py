"""Pieces both OpenAI-compatible APIs share: SSE framing, image facts, usage, which previews to send.

Images are relayed exactly as the provider gave them: a JPEG preview stays a
JPEG even when the final is a PNG, and each event's ``output_format`` says
what its own bytes are (from the MIME type), not what was asked for.
"""

from __future__ import annotations

from typing import Any

import attrs

from imagestream import ImageFinal, ImagePreview, Usage

from ._sse import sse_event

__all__ = [
    "ImageFacts",
    "PartialPicker",
    "image_format",
    "images_usage",
    "responses_usage",
    "sse_event",
]

_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp", "image/gif": "gif"}


def image_format(mime_type: str | None) -> str | None:
    """``"image/jpeg"`` → ``"jpeg"``: OpenAI's ``output_format`` for bytes of that type."""
    if not mime_type:
        return None
    mime_type = mime_type.split(";")[0].strip().lower()
    return _FORMATS.get(mime_type) or (mime_type.removeprefix("image/") or None)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@attrs.frozen
class ImageFacts:
    """What the client asked for, used where an image does not say for itself.

    Attributes:
        size: ``WIDTHxHEIGHT`` or ``None`` (auto).
        quality: The quality asked for, or ``None``.
        background: The background asked for, or ``None``.
        output_format: The format asked for, or ``None``.
    """

    size: str | None = None
    quality: str | None = None
    background: str | None = None
    output_format: str | None = None

    def of(self, chunk: ImagePreview | ImageFinal) -> dict[str, str | None]:
        """``size``, ``quality``, ``background``, ``output_format`` of one image (``None``: unknown).

        The image's own facts win: its pixel size, its bytes' type, and what
        the provider reported (``extra``); then what was asked for.
        """
        extra = chunk.extra
        if chunk.width and chunk.height:
            size: str | None = f"{chunk.width}x{chunk.height}"
        else:
            found = chunk.image.size
            size = f"{found[0]}x{found[1]}" if found else _text(extra.get("size")) or self.size
        output_format = (
            image_format(chunk.mime_type or chunk.image.mime_type)
            or _text(extra.get("output_format"))
            or self.output_format
        )
        quality = _text(extra.get("quality")) or self.quality
        background = _text(extra.get("background")) or self.background
        return {
            "size": size,
            "quality": quality,
            "background": background,
            "output_format": output_format,
        }

    def event_fields(self, chunk: ImagePreview | ImageFinal) -> dict[str, str]:
        """:meth:`of` for a streamed event, where every fact is required: unknown is ``auto``."""
        facts = self.of(chunk)
        return {
            "size": facts["size"] or "auto",
            "quality": facts["quality"] or "auto",
            "background": facts["background"] or "auto",
            "output_format": facts["output_format"] or "png",
        }


def _tokens(value: int | None) -> int:
    return value if value is not None else 0


def _in_out(usage: Usage) -> tuple[int, int, int]:
    input_tokens = usage.input_tokens
    if input_tokens is None:
        input_tokens = _tokens(usage.input_text_tokens) + _tokens(usage.input_image_tokens)
    output_tokens = usage.output_tokens
    if output_tokens is None:
        output_tokens = _tokens(usage.output_text_tokens) + _tokens(usage.output_image_tokens)
    total = usage.total_tokens
    if total is None:
        total = input_tokens + output_tokens
    return input_tokens, output_tokens, total


def images_usage(usage: Usage | None) -> dict[str, Any]:
    """The Images API's ``usage`` (zeros where the provider reported nothing).

    Input tokens not itemised count as text; output tokens not itemised count
    as image tokens, which is what an image model's output is.
    """
    usage = usage or Usage()
    input_tokens, output_tokens, total = _in_out(usage)
    image_in = _tokens(usage.input_image_tokens)
    text_in = (
        usage.input_text_tokens
        if usage.input_text_tokens is not None
        else max(0, input_tokens - image_in)
    )
    text_out = _tokens(usage.output_text_tokens)
    image_out = (
        usage.output_image_tokens
        if usage.output_image_tokens is not None
        else max(0, output_tokens - text_out)
    )
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"image_tokens": image_in, "text_tokens": text_in},
        "output_tokens": output_tokens,
        "output_tokens_details": {"image_tokens": image_out, "text_tokens": text_out},
        "total_tokens": total,
    }


def responses_usage(usage: Usage | None) -> dict[str, Any]:
    """The Responses API's ``usage`` (zeros where the provider reported nothing)."""
    usage = usage or Usage()
    input_tokens, output_tokens, total = _in_out(usage)
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": _tokens(usage.thought_tokens)},
        "total_tokens": total,
    }


@attrs.define
class _Sample:
    sent: int = 0
    held: ImagePreview | None = None
    done: bool = False


class PartialPicker:
    """Which previews become partial images: at most ``wanted`` per image, spread out, the last kept.

    A provider may send more previews than asked for (``procedural`` sends one
    per sampler step unless told). When a preview says its step and the
    number of steps, slot ``k`` of ``wanted`` goes to the first preview at or
    past step ``round(k * steps / wanted) - 1`` (the rule the providers use
    themselves, so a provider that already picked sends exactly its picks
    through); the last slot is the last step. When a preview does not say,
    the first ``wanted - 1`` go out as they come and the last slot waits for
    the final image and takes the latest preview. Nothing is sent twice and a
    preview is never held back longer than until its image is final.

    Args:
        wanted: Partial images per image (OpenAI's ``partial_images``; 0: none).
    """

    def __init__(self, wanted: int) -> None:
        self.wanted = wanted
        self._samples: dict[int, _Sample] = {}

    def _state(self, sample: int) -> _Sample:
        return self._samples.setdefault(sample, _Sample())

    def offer(self, preview: ImagePreview) -> list[tuple[int, ImagePreview]]:
        """The previews to send now, each with its ``partial_image_index``."""
        state = self._state(preview.sample)
        if state.done or state.sent >= self.wanted:
            return []
        slot = state.sent + 1
        if preview.step is not None and preview.total_steps:
            due = preview.step >= round(slot * preview.total_steps / self.wanted) - 1
        else:
            due = slot < self.wanted
        if not due:
            state.held = preview
            return []
        state.held = None
        state.sent += 1
        return [(slot - 1, preview)]

    def finish(self, sample: int) -> list[tuple[int, ImagePreview]]:
        """The image ``sample`` is final: its held-back last preview, if a slot is left for it."""
        state = self._state(sample)
        state.done = True
        held, state.held = state.held, None
        if held is None or state.sent >= self.wanted:
            return []
        state.sent += 1
        return [(state.sent - 1, held)]
