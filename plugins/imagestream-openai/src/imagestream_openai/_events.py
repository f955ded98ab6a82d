"""Decoded stream events to imagestream chunks: one small state machine per API.

Both machines are pure (no I/O): feed each event's parsed JSON to
:meth:`handle`, which returns the chunks it produced (often none) or raises
the typed error an error event carries, then call :meth:`finish` at the end of
the stream, which raises if the stream stopped before it was complete.

Events are dispatched on the ``type`` inside the JSON, as the official SDK
does, and unknown types and fields are ignored so that new events
(``sequence_number``, ``obfuscation``, ``content_filters``...) pass through.
Image payloads are wrapped as they arrived, never decoded here: a ``str``
from a parsed event, or the pieces of the stream a large image string was
read from (:class:`~imagestream_openai._json.LiftedBase64`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import attrs

from imagestream import Chunk, ImageData, ImageFinal, ImagePreview, Secret, TextDelta, Usage
from imagestream.errors import NoImageError, StreamDecodeError, StreamInterruptedError

from ._errors import error_from_event
from ._json import LiftedBase64
from ._models import pricing_for
from ._pricing import text_model_price

__all__ = [
    "ImagesEvents",
    "ResponsesEvents",
    "final_from_item",
    "images_usage",
    "mime_for",
    "no_image_error",
    "payload_image",
    "responses_usage",
]

log = logging.getLogger("imagestream.openai")

_MIME = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
}
# Facts about an image worth keeping on its chunk, as the server named them.
_IMAGE_FACTS = ("size", "quality", "background", "output_format", "created_at")


def mime_for(output_format: Any) -> str | None:
    """``"webp"`` → ``"image/webp"``; ``None`` for formats imagestream does not sniff."""
    return _MIME.get(output_format) if isinstance(output_format, str) else None


def payload_image(value: Any, mime_type: str | None) -> ImageData | None:
    """The image an image field holds (base64 text, or lifted pieces of it); ``None`` if none."""
    if isinstance(value, LiftedBase64):
        return value.image(mime_type)
    if isinstance(value, str) and value:
        return ImageData.from_base64(value, mime_type)
    return None


def _dimensions(size: Any) -> tuple[int | None, int | None]:
    if isinstance(size, str):
        width, sep, height = size.partition("x")
        if sep and width.isdigit() and height.isdigit():
            return int(width), int(height)
    return None, None


def _facts(source: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {name: source[name] for name in (*_IMAGE_FACTS, *names) if source.get(name) is not None}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _details(usage: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    details = usage.get(name)
    return details if isinstance(details, Mapping) else {}


def images_usage(usage: Any) -> Usage | None:
    """Usage of the Images API (or the Responses API's ``tool_usage.image_gen``).

    Output tokens of an image model are image tokens unless the server itemises them.
    """
    if not isinstance(usage, Mapping):
        return None
    input_details = _details(usage, "input_tokens_details")
    output_details = _details(usage, "output_tokens_details")
    output_tokens = _int(usage.get("output_tokens"))
    output_image = _int(output_details.get("image_tokens")) if output_details else output_tokens
    return Usage(
        input_tokens=_int(usage.get("input_tokens")),
        output_tokens=output_tokens,
        total_tokens=_int(usage.get("total_tokens")),
        input_text_tokens=_int(input_details.get("text_tokens")),
        input_image_tokens=_int(input_details.get("image_tokens")),
        output_text_tokens=_int(output_details.get("text_tokens")),
        output_image_tokens=output_image,
        raw=usage,
    )


def responses_usage(response: Mapping[str, Any], image_model: str, text_model: str) -> Usage | None:
    """Usage of a Responses API call: the image tool's tokens, plus the text model's cost.

    When the server reports ``tool_usage.image_gen`` the token fields are the
    image model's (priced per image token by the analytics); otherwise they
    are the controlling model's text tokens. ``cost_usd`` adds both parts when
    both prices are known, since the two models have different rates.
    """
    usage = response.get("usage")
    tool_usage = response.get("tool_usage")
    image_gen = tool_usage.get("image_gen") if isinstance(tool_usage, Mapping) else None
    if not isinstance(usage, Mapping) and not isinstance(image_gen, Mapping):
        return None
    raw = {name: value for name, value in (("usage", usage), ("tool_usage", tool_usage)) if value}
    text_cost = None
    if isinstance(usage, Mapping):
        served = response.get("model")
        price = text_model_price(
            served if isinstance(served, str) else text_model
        ) or text_model_price(text_model)
        tokens_in, tokens_out = _int(usage.get("input_tokens")), _int(usage.get("output_tokens"))
        if price is not None and tokens_in is not None and tokens_out is not None:
            text_cost = (tokens_in * price[0] + tokens_out * price[1]) / 1_000_000
    image = images_usage(image_gen)
    if image is not None:
        pricing = pricing_for(image_model)
        image_cost = pricing.cost(image) if pricing is not None else None
        total = image_cost + text_cost if image_cost is not None and text_cost is not None else None
        return attrs.evolve(image, raw=raw, cost_usd=total)
    assert isinstance(usage, Mapping)
    return Usage(
        input_tokens=_int(usage.get("input_tokens")),
        output_tokens=_int(usage.get("output_tokens")),
        total_tokens=_int(usage.get("total_tokens")),
        input_text_tokens=_int(usage.get("input_tokens")),
        output_text_tokens=_int(usage.get("output_tokens")),
        cost_usd=text_cost,
        raw=raw,
    )


def final_from_item(item: Mapping[str, Any], sample: int) -> ImageFinal | None:
    """The final image of a Responses API ``image_generation_call`` item, if it has one.

    The item's status is not checked: Azure leaves it at ``"generating"``
    even when the result is there.
    """
    mime = mime_for(item.get("output_format"))
    image = payload_image(item.get("result"), mime)
    if image is None:
        return None
    width, height = _dimensions(item.get("size"))
    revised = item.get("revised_prompt")
    return ImageFinal(
        image=image,
        sample=sample,
        mime_type=mime,
        width=width,
        height=height,
        revised_prompt=revised if isinstance(revised, str) else None,
        extra=_facts(item, "id", "status"),
    )


def call_failure(item: Mapping[str, Any]) -> tuple[str | None, str] | None:
    """``(code, reason)`` of an ``image_generation_call`` item that failed, else ``None``.

    A failed call has ``status: "failed"`` and no result; the reason, when
    the server gives one, is in its ``error`` (an object or a string).
    """
    if item.get("type") != "image_generation_call" or item.get("status") != "failed":
        return None
    error = item.get("error")
    code = None
    reason = None
    if isinstance(error, Mapping):
        code = error.get("code") if isinstance(error.get("code"), str) else None
        message = error.get("message")
        reason = message if isinstance(message, str) and message else code
    elif isinstance(error, str) and error:
        reason = error
    return code, reason or "the server gave no reason"


def refusal_parts(item: Mapping[str, Any]) -> list[str]:
    """The refusal texts of a ``message`` output item (``{"type": "refusal", "refusal": ...}`` parts)."""
    if item.get("type") != "message":
        return []
    content = item.get("content")
    return [
        part["refusal"]
        for part in (content if isinstance(content, list) else ())
        if isinstance(part, Mapping)
        and part.get("type") == "refusal"
        and isinstance(part.get("refusal"), str)
        and part["refusal"]
    ]


def no_image_error(
    *,
    refusal: str,
    failures: list[tuple[str | None, str]],
    said: str,
    headers: Mapping[str, str] | None = None,
) -> NoImageError | None:
    """The error of a Responses API answer without an image, when it says why.

    A refusal (the model declined in words) or a failed
    ``image_generation_call`` is named in the error, its text kept in
    :attr:`~imagestream.NoImageError.text`. ``None`` when neither happened:
    the pipeline then reports the missing image with what the model said.
    """
    refusal, said = refusal.strip(), said.strip()
    request_id = next(
        (value for name, value in (headers or {}).items() if name.lower() == "x-request-id"), None
    )
    if refusal:
        return NoImageError(
            f'the model refused to draw: "{refusal[:300]}"',
            provider="openai",
            code="refusal",
            text=refusal,
            finish_reason="refusal",
            request_id=request_id,
            hint="rephrase the prompt",
        )
    if failures:
        code, reason = failures[0]
        quoted = f'; the model said: "{said[:300]}"' if said else ""
        return NoImageError(
            f"the image_generation_call failed: {reason}{quoted}",
            provider="openai",
            code=code,
            text=said,
            finish_reason="failed",
            request_id=request_id,
            hint="try again, or rephrase the prompt",
        )
    return None


def _event_object(
    payload: object, event: str, key: Secret | None, headers: Mapping[str, str] | None
) -> Mapping[str, Any]:
    """An event's parsed data, which must be a JSON object (``data: null`` or ``[1]`` is not).

    Raises:
        ProviderError: An ``error`` event whose data is a bare value.
        StreamDecodeError: Any other event whose data is not an object.
    """
    if isinstance(payload, Mapping):
        return payload
    if event == "error":
        raise error_from_event({"error": {"message": str(payload)[:500]}}, key=key, headers=headers)
    raise StreamDecodeError(
        f"openai: a {event!r} event's data is a JSON {type(payload).__name__}, not an object"
    )


def _part_key(payload: Mapping[str, Any]) -> tuple[str, str]:
    """Which text part an event is about (as text: the ids may be any JSON value)."""
    return str(payload.get("item_id")), str(payload.get("content_index"))


def _raise_if_error(
    payload: Mapping[str, Any], kind: Any, key: Secret | None, headers: Mapping[str, str] | None
) -> None:
    # An "error" event, or any payload with an error object at the top, is a
    # failure: that is how the SDK reads an Images API stream too.
    if kind in ("error", "response.failed", "response.incomplete") or isinstance(
        payload.get("error"), Mapping
    ):
        raise error_from_event(payload, key=key, headers=headers)


class ImagesEvents:
    """Images API stream events (``image_generation.*`` / ``image_edit.*``) to chunks.

    ``*.partial_image`` → :class:`ImagePreview`; ``*.completed`` →
    :class:`ImageFinal` and :class:`Usage`. The server may finish an image
    before sending every partial it announced; a partial that arrives after
    its image is final is dropped (a preview must never replace the final).

    With ``n > 1`` the events carry no image number, so images are numbered
    in the order they complete and a partial belongs to the next image to
    complete.

    Args:
        n: Images requested.
        key: The API key, to mask it in error messages.
        headers: Response headers (for the request id of errors).
    """

    def __init__(
        self, n: int = 1, *, key: Secret | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        self.n = n
        self.finals = 0
        self._key = key
        self._headers = headers
        self._previews = 0

    @property
    def complete(self) -> bool:
        """True once every requested image has arrived."""
        return self.finals >= self.n

    def handle(self, payload: Mapping[str, Any], event: str = "message") -> list[Chunk]:
        """The chunks of one event."""
        payload = _event_object(payload, event, self._key, self._headers)
        kind = payload.get("type") or event
        _raise_if_error(payload, kind, self._key, self._headers)
        if not isinstance(kind, str):
            return []
        if kind.endswith(".partial_image"):
            return self._partial(payload)
        if kind.endswith(".completed"):
            return self._completed(payload)
        log.debug("openai: ignoring a %r event", kind)
        return []

    def _partial(self, payload: Mapping[str, Any]) -> list[Chunk]:
        if self.complete:
            return []
        mime = mime_for(payload.get("output_format"))
        image = payload_image(payload.get("b64_json"), mime)
        if image is None:
            return []
        width, height = _dimensions(payload.get("size"))
        index = _int(payload.get("partial_image_index"))
        preview = ImagePreview(
            image=image,
            index=index if index is not None else self._previews,
            sample=self.finals,
            mime_type=mime,
            width=width,
            height=height,
            extra=_facts(payload, "partial_image_index"),
        )
        self._previews += 1
        return [preview]

    def _completed(self, payload: Mapping[str, Any]) -> list[Chunk]:
        mime = mime_for(payload.get("output_format"))
        image = payload_image(payload.get("b64_json"), mime)
        if image is None:
            return []
        width, height = _dimensions(payload.get("size"))
        revised = payload.get("revised_prompt")
        chunks: list[Chunk] = [
            ImageFinal(
                image=image,
                sample=self.finals,
                mime_type=mime,
                width=width,
                height=height,
                revised_prompt=revised if isinstance(revised, str) else None,
                extra=_facts(payload),
            )
        ]
        self.finals += 1
        usage = images_usage(payload.get("usage"))
        if usage is not None:
            chunks.append(usage)
        return chunks

    def finish(self) -> None:
        """Check the stream was complete.

        Raises:
            StreamInterruptedError: Fewer images completed than were requested.
        """
        if not self.complete:
            raise StreamInterruptedError(
                f"the stream ended after {self.finals} of {self.n} image(s) were completed",
                provider="openai",
                hint="the previews that did arrive are in the error's .partial",
            )


class ResponsesEvents:
    """Responses API stream events (with the ``image_generation`` tool) to chunks.

    ``response.output_text.delta`` → :class:`TextDelta`;
    ``response.image_generation_call.partial_image`` → :class:`ImagePreview`;
    ``response.output_item.done`` with an ``image_generation_call`` item →
    :class:`ImageFinal` (with the revised prompt); ``response.completed`` →
    :class:`Usage`. The final image arrives twice (in the item and again in
    ``response.completed``): it is emitted once, from whichever comes first.
    A refusal (``response.refusal.delta``) is text too; an answer that ends
    refused, or with a failed ``image_generation_call``, and no image raises
    :class:`~imagestream.NoImageError` saying so (:meth:`finish`).

    Args:
        image_model: The tool's image model (for pricing the usage).
        text_model: The controlling model (for pricing the usage).
        key: The API key, to mask it in error messages.
        headers: Response headers (for the request id of errors).
    """

    def __init__(
        self,
        image_model: str,
        text_model: str,
        *,
        key: Secret | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.image_model = image_model
        self.text_model = text_model
        self.complete = False
        self._key = key
        self._headers = headers
        self._samples: dict[str, int] = {}
        self._finished_items: set[str] = set()
        self._text_parts: set[tuple[str, str]] = set()
        # What the error of an answer without an image quotes.
        self._said: list[str] = []
        self._refusal: list[str] = []
        self._refusal_parts: set[tuple[str, str]] = set()
        self._failures: dict[str, tuple[str | None, str]] = {}

    def _sample(self, item_id: Any) -> int:
        key = str(item_id)
        if key not in self._samples:
            self._samples[key] = len(self._samples)
        return self._samples[key]

    def handle(self, payload: Mapping[str, Any], event: str = "message") -> list[Chunk]:
        """The chunks of one event."""
        payload = _event_object(payload, event, self._key, self._headers)
        kind = payload.get("type") or event
        _raise_if_error(payload, kind, self._key, self._headers)
        if kind == "response.output_text.delta":
            delta = payload.get("delta")
            self._text_parts.add(_part_key(payload))
            return self._text(delta, self._said)
        if kind == "response.output_text.done":
            # Text that came whole, with no deltas before it.
            text = payload.get("text")
            part = _part_key(payload)
            if part in self._text_parts:
                return []
            self._text_parts.add(part)
            return self._text(text, self._said)
        if kind == "response.refusal.delta":
            # The model declined in words: text like any other, kept for the error.
            self._refusal_parts.add(_part_key(payload))
            return self._text(payload.get("delta"), self._refusal)
        if kind == "response.refusal.done":
            part = _part_key(payload)
            if part in self._refusal_parts:
                return []
            self._refusal_parts.add(part)
            return self._text(payload.get("refusal"), self._refusal)
        if kind == "response.image_generation_call.partial_image":
            return self._partial(payload)
        if kind == "response.output_item.done":
            item = payload.get("item")
            return self._final(item) if isinstance(item, Mapping) else []
        if kind == "response.completed":
            return self._completed(payload)
        return []

    def _partial(self, payload: Mapping[str, Any]) -> list[Chunk]:
        item_id = payload.get("item_id")
        if str(item_id) in self._finished_items:
            return []
        mime = mime_for(payload.get("output_format"))
        image = payload_image(payload.get("partial_image_b64"), mime)
        if image is None:
            return []
        width, height = _dimensions(payload.get("size"))
        index = _int(payload.get("partial_image_index"))
        return [
            ImagePreview(
                image=image,
                index=index if index is not None else 0,
                sample=self._sample(item_id),
                mime_type=mime,
                width=width,
                height=height,
                extra=_facts(payload, "partial_image_index", "item_id", "output_index"),
            )
        ]

    @staticmethod
    def _text(text: Any, kept: list[str]) -> list[Chunk]:
        if not isinstance(text, str) or not text:
            return []
        kept.append(text)
        return [TextDelta(text)]

    def _final(self, item: Mapping[str, Any]) -> list[Chunk]:
        if item.get("type") != "image_generation_call":
            return []
        item_id = str(item.get("id"))
        if item_id in self._finished_items:
            return []
        final = final_from_item(item, self._sample(item_id))
        if final is None:
            failure = call_failure(item)
            if failure is not None:
                self._failures[item_id] = failure
            return []
        self._finished_items.add(item_id)
        return [final]

    def _completed(self, payload: Mapping[str, Any]) -> list[Chunk]:
        self.complete = True
        response = payload.get("response")
        if not isinstance(response, Mapping):
            return []
        chunks: list[Chunk] = []
        output = response.get("output")
        # Images whose output_item.done never came (a proxy may drop events),
        # and a refusal whose events did not either.
        refused = bool(self._refusal)
        for item in output if isinstance(output, list) else ():
            if isinstance(item, Mapping):
                chunks.extend(self._final(item))
                if not refused:
                    for text in refusal_parts(item):
                        chunks.extend(self._text(text, self._refusal))
        usage = responses_usage(response, self.image_model, self.text_model)
        if usage is not None:
            chunks.append(usage)
        return chunks

    def finish(self) -> None:
        """Check the stream was complete, and that a missing image is explained.

        Raises:
            StreamInterruptedError: The stream ended without ``response.completed``.
            NoImageError: No image, because the model refused (the error's
                ``text`` is the refusal) or the ``image_generation_call``
                failed (its reason in the message).
        """
        if not self.complete:
            raise StreamInterruptedError(
                "the stream ended before response.completed",
                provider="openai",
                hint="what arrived (previews, text, images) is in the error's .partial",
            )
        if not self._finished_items:
            error = no_image_error(
                refusal="".join(self._refusal),
                failures=list(self._failures.values()),
                said="".join(self._said),
                headers=self._headers,
            )
            if error is not None:
                raise error
