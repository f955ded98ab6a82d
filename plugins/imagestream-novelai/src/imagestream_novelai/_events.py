"""Stream events (msgpack maps or SSE JSON) into imagestream chunks.

Both stream formats carry the same event: ``event_type``, ``samp_ix``,
``step_ix``, ``gen_id``, ``sigma`` and ``image``. The msgpack format sends
``image`` as raw bytes, SSE as base64 text; the chunks that come out are the
same either way (the image payload is wrapped as it came and decoded only if
someone asks for the bytes).

No recording of either format exists, so this module accepts every shape the
independent clients disagree about:

* ``gen_id`` may be an int or a string: it is kept, as text, in ``extra``.
* ``step_ix`` and ``sigma`` may be present or absent on finals (and a client
  types a missing ``step_ix`` as -1): a negative or missing step is "unknown".
* In SSE, ``event_type`` may be in the JSON or only on the ``event:`` line.
* An intermediate event may say how many steps there are (``steps``); when
  it does not, the request's step count is used.
* Event types other than ``intermediate``, ``final`` and ``error`` are
  skipped, so a new informational event does not break old clients.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from imagestream import (
    Chunk,
    ImageData,
    ImageFinal,
    ImagePreview,
    StreamDecodeError,
    StreamInterruptedError,
)

from ._errors import PROVIDER, error_from_event
from ._options import Settings

__all__ = ["EventTranslator", "sse_payload"]

log = logging.getLogger("imagestream.novelai")


def sse_payload(event_name: str, data: str) -> Mapping[str, Any]:
    """The event map of one SSE event: its JSON, with ``event_type`` from the ``event:`` line if missing.

    Raises:
        StreamDecodeError: The data of a non-error event is not a JSON object.
    """
    line_type = event_name if event_name and event_name != "message" else None
    try:
        payload = json.loads(data)
    except ValueError:
        if line_type == "error":
            # An error event may carry plain text instead of JSON.
            return {"event_type": "error", "message": data}
        raise StreamDecodeError(f"SSE event {event_name!r} does not carry JSON data") from None
    if not isinstance(payload, dict):
        raise StreamDecodeError(f"SSE event {event_name!r} carries JSON that is not an object")
    if "event_type" not in payload and line_type is not None:
        payload["event_type"] = line_type
    return payload


def _int(value: object) -> int | None:
    """An index field: ints, and digit strings from a server that sends text."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        digits = text.removeprefix("-")
        # isascii: "²".isdigit() is true, but int("²") fails.
        if digits.isascii() and digits.isdigit():
            return int(text)
    return None


def _float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _image(value: object, expected: str, kind: str) -> tuple[ImageData, str]:
    """Wrap the payload as it came, declaring the type its first bytes show."""
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        mime = ImageData.from_bytes(raw[:16]).mime_type or expected
        return ImageData.from_bytes(raw, mime), mime
    if isinstance(value, str) and value:
        # Only the first few characters are decoded to sniff the type.
        probe = ImageData.from_base64(value[:24])
        mime = probe.mime_type or expected
        return ImageData.from_base64(value, mime), mime
    raise StreamDecodeError(f"{kind} event without an image payload")


class EventTranslator:
    """Turns the events of one generation into chunks, and knows when it is complete.

    Samples of a batch may interleave, so preview numbering is kept per
    sample. Previews can be thinned to ``settings.preview_steps``
    (``partial_images``); finals are never dropped.

    Args:
        settings: The request's settings (step count, samples, seed).
        secret: The token, redacted from error messages.
    """

    def __init__(self, settings: Settings, secret: str | None = None) -> None:
        self._settings = settings
        self._secret = secret
        self._previews: dict[int, int] = {}
        self._finals: set[int] = set()
        self._last_step: dict[int, int] = {}

    @property
    def complete(self) -> bool:
        """True once every sample of the batch has its final image."""
        return len(self._finals) >= self._settings.n_samples

    def translate(self, event: object) -> Chunk | None:
        """The chunk for one event, or ``None`` for an event that makes none.

        Raises:
            ProviderError: A typed error for an error event.
            StreamDecodeError: The event is not a map, or lacks its image.
        """
        if not isinstance(event, Mapping):
            raise StreamDecodeError(f"stream event is a {type(event).__name__}, not a map")
        kind = str(event.get("event_type") or "").lower()
        if kind == "error" or (not kind and "image" not in event and ("error" in event or "message" in event)):
            raise error_from_event(event, self._secret)
        if kind not in ("intermediate", "final"):
            log.debug("novelai: skipping stream event of type %r", kind or None)
            return None
        sample = _int(event.get("samp_ix"))
        sample = sample if sample is not None and sample >= 0 else 0
        step = _int(event.get("step_ix"))
        step = step if step is not None and step >= 0 else None
        sigma = _float(event.get("sigma"))
        extra: dict[str, Any] = {}
        if event.get("gen_id") is not None:
            extra["gen_id"] = str(event["gen_id"])
        if kind == "intermediate":
            return self._preview(event, sample, step, sigma, extra)
        image, mime = _image(event.get("image"), "image/png", kind)
        if step is not None:
            extra["step"] = step
        if sigma is not None:
            extra["sigma"] = sigma
        self._finals.add(sample)
        return ImageFinal(
            image=image,
            sample=sample,
            mime_type=mime,
            # The seed sent with the request; for a batch, the batch's seed.
            seed=self._settings.seed,
            extra=extra,
        )

    def _preview(
        self, event: Mapping[str, Any], sample: int, step: int | None, sigma: float | None, extra: dict[str, Any]
    ) -> ImagePreview | None:
        if step is not None:
            self._last_step[sample] = step
        keep = self._settings.preview_steps
        if keep is not None and step is not None and step not in keep:
            return None
        total = _int(event.get("steps"))
        image, mime = _image(event.get("image"), "image/jpeg", "intermediate")
        index = self._previews.get(sample, 0)
        self._previews[sample] = index + 1
        return ImagePreview(
            image=image,
            index=index,
            sample=sample,
            step=step,
            total_steps=total if total is not None and total > 0 else self._settings.steps,
            sigma=sigma,
            mime_type=mime,
            extra=extra,
        )

    def interrupted(self, cause: str | None = None) -> StreamInterruptedError:
        """The error for a stream that ended before every final image arrived."""
        wanted = self._settings.n_samples
        progress = ", ".join(
            f"sample {sample} reached step {step + 1} of {self._settings.steps}"
            for sample, step in sorted(self._last_step.items())
            if sample not in self._finals
        )
        message = f"the stream ended after {len(self._finals)} of {wanted} final image(s)"
        if progress:
            message += f" ({progress})"
        if cause:
            message += f": {cause.removeprefix(f'{PROVIDER}: ')}"
        return StreamInterruptedError(
            message,
            provider=PROVIDER,
            hint="the previews that did arrive are in the error's partial result; try again",
        )
