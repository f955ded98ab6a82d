"""The fault matrix: every network failure a :class:`~imagestream.testing.FaultServer` plays,
against every provider of this repository that talks HTTP.

Each provider has an :class:`Adapter`: the good body it expects (as the events
it is made of, and what each event yields), the request that reaches the
server, and which statuses its retry policy retries. Each :class:`Case`
scripts the server's replies from the good one and says what must happen:
a typed error (the right :class:`~imagestream.ImagestreamError` subclass)
or success, how many requests were sent, and what the error's ``partial``
result holds. Every case also checks that no connection is left held by
the client, that replies the client gave up on were closed by the client,
that no file descriptor is left open, and that no key is quoted.

Timeouts are short (the request's ``timeout=``, the stall timeout, is
:data:`STALL` seconds) and bodies small, so the whole matrix runs in seconds.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import functools
import io
import json
import logging
import math
import os
import struct
import sys
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import attrs
import msgpack
import pytest

import imagestream
from imagestream import (
    APITimeoutError,
    AuthenticationError,
    HttpClient,
    ImagestreamError,
    Pipeline,
    ProviderError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    StreamDecodeError,
    StreamInterruptedError,
    UnexpectedResponseError,
)
from imagestream.testing import FaultServer, RecordedRequest, Reply, make_image, retry_after

STALL = 0.25
"""The stall timeout of every run (the request's ``timeout=``), in seconds."""

RETRY_AFTER_MAX = 1.0
"""Waits a server asks for beyond this are raised, not waited out."""

FAST = RetryPolicy(max_retries=2, initial=0.01, maximum=0.02, retry_after_max=RETRY_AFTER_MAX)
"""Quick retries: the matrix checks how many, not how long."""

RUN_LIMIT = 10.0
"""Seconds any one run may take before the test fails (nothing here should come close)."""

PROMPT = "a red fox in the snow"


# -- what a provider sends ------------------------------------------------------


@attrs.frozen
class Event:
    """One event of a good body, and what it yields once it has arrived whole."""

    data: bytes
    previews: tuple[bytes, ...] = ()
    text: str = ""
    images: tuple[bytes, ...] = ()


@attrs.frozen
class Summary:
    """What a run produced, in the terms the matrix compares."""

    images: tuple[bytes, ...] = ()
    previews: tuple[bytes, ...] = ()
    text: str = ""

    @classmethod
    def of(cls, result: imagestream.GenerationResult) -> Summary:
        return cls(
            tuple(final.image.data for final in result.images),
            tuple(preview.image.data for preview in result.previews),
            result.text,
        )

    @classmethod
    def of_events(cls, events: tuple[Event, ...]) -> Summary:
        return cls(
            tuple(image for e in events for image in e.images),
            tuple(image for e in events for image in e.previews),
            "".join(e.text for e in events),
        )


EMPTY = Summary()

ALL_RETRIED = frozenset({429, 500, 502, 503, 504})


@attrs.frozen
class Adapter:
    """One provider (and one way of calling it) as the matrix drives it.

    Attributes:
        name: The test id.
        events: The good body, event by event (a whole body is one event).
        content_type: The good body's media type.
        params: ``params(server_url)``: the keyword arguments of ``Pipeline.stream``.
        key: The credential it sends (checked never to be quoted).
        streams: The body is a stream whose events are handed out as they
            arrive (else a whole body, read before anything is yielded).
        cut_events: Events that arrive whole before a mid-body fault.
        retried: The statuses its retry policy retries.
        only: The cases worth running (``None``: all); for a variant that
            shares all but its addressing with another adapter.
    """

    name: str
    events: tuple[Event, ...]
    content_type: str
    params: Callable[[str], dict[str, Any]]
    key: str
    streams: bool = True
    cut_events: int = 0
    retried: frozenset[int] = ALL_RETRIED
    only: frozenset[str] | None = None

    @property
    def body(self) -> bytes:
        return b"".join(event.data for event in self.events)

    @property
    def good(self) -> Reply:
        """The good reply, chunked as streams are."""
        return Reply(body=self.body, content_type=self.content_type, chunked=self.streams)

    @property
    def cut(self) -> int:
        """A byte offset in the middle of the event after the first ``cut_events``."""
        before = sum(len(event.data) for event in self.events[: self.cut_events])
        return before + len(self.events[self.cut_events].data) // 2

    @property
    def before_cut(self) -> Summary:
        """What a fault at :attr:`cut` leaves in the error's ``partial``."""
        return Summary.of_events(self.events[: self.cut_events]) if self.streams else EMPTY

    @property
    def whole(self) -> Summary:
        return Summary.of_events(self.events)


def _png(variant: int) -> bytes:
    return make_image("png", variant, 24, 16)


def _jpeg(variant: int) -> bytes:
    return make_image("jpeg", variant, 24, 16)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _sse(data: Any, event: str | None = None, *, crlf: bool = False) -> bytes:
    line = "\r\n" if crlf else "\n"
    text = json.dumps(data, separators=(",", ":"))
    head = f"event: {event}{line}" if event else ""
    return f"{head}data: {text}{line}{line}".encode()


# OpenAI ----------------------------------------------------------------------

OPENAI_KEY = "sk-fault-matrix-openai-0123456789"
_OPENAI_USAGE = {
    "input_tokens": 16,
    "input_tokens_details": {"image_tokens": 0, "text_tokens": 16},
    "output_tokens": 272,
    "total_tokens": 288,
}


def _openai_params(**extra: Any) -> Callable[[str], dict[str, Any]]:
    def params(url: str) -> dict[str, Any]:
        return {
            "provider": "openai",  # its default model
            "base_url": f"{url}/v1",
            "api_key": OPENAI_KEY,
            "timeout": STALL,
            **extra,
        }

    return params


def _openai_image_event(kind: str, image: bytes, **fields: Any) -> bytes:
    payload = {
        "type": f"image_generation.{kind}",
        "b64_json": _b64(image),
        "output_format": "png",
        "size": "1024x1024",
        "quality": "low",
        "background": "opaque",
        "created_at": 1760000000,
        **fields,
    }
    return _sse(payload, f"image_generation.{kind}")


def openai_images_stream() -> Adapter:
    events = (
        Event(
            _openai_image_event("partial_image", _png(1), partial_image_index=0),
            previews=(_png(1),),
        ),
        Event(
            _openai_image_event("partial_image", _png(2), partial_image_index=1),
            previews=(_png(2),),
        ),
        Event(_openai_image_event("completed", _png(3), usage=_OPENAI_USAGE), images=(_png(3),)),
    )
    return Adapter(
        "openai-images-stream",
        events,
        "text/event-stream",
        _openai_params(partial_images=2),
        OPENAI_KEY,
        cut_events=2,
    )


def openai_edits_stream() -> Adapter:
    """An edit: a multipart form, which must be built afresh for each attempt."""

    def event(kind: str, image: bytes, **fields: Any) -> bytes:
        payload = {"type": f"image_edit.{kind}", "b64_json": _b64(image), **fields}
        return _sse(payload, f"image_edit.{kind}")

    events = (
        Event(event("partial_image", _png(12), partial_image_index=0), previews=(_png(12),)),
        Event(event("completed", _png(13), usage=_OPENAI_USAGE), images=(_png(13),)),
    )
    # The cases that send and resend the request; the answer is read as the generation's.
    only = {
        "random_pieces",
        "drop_before_headers",
        "stall_before_headers",
        "status_503_then_success",
        "status_502_three_times",
        "rate_limited_retry_after_ms",
        "unauthorized_echoing_the_key",
        "reset_mid_event",
    }
    return Adapter(
        "openai-edits-stream",
        events,
        "text/event-stream",
        _openai_params(partial_images=1, image=make_image("png", 11)),
        OPENAI_KEY,
        cut_events=1,
        only=frozenset(only),
    )


def openai_images_whole() -> Adapter:
    body = {
        "created": 1760000000,
        "data": [{"b64_json": _b64(_png(4))}],
        "output_format": "png",
        "usage": _OPENAI_USAGE,
    }
    return Adapter(
        "openai-images-whole",
        (Event(json.dumps(body).encode(), images=(_png(4),)),),
        "application/json",
        _openai_params(options={"stream": False}),
        OPENAI_KEY,
        streams=False,
    )


def openai_responses_stream() -> Adapter:
    item = {
        "id": "ig_1",
        "type": "image_generation_call",
        "status": "completed",
        "output_format": "png",
        "size": "1024x1024",
        "result": _b64(_png(6)),
        "revised_prompt": "A red fox standing in fresh snow.",
    }
    completed = {
        "id": "resp_1",
        "object": "response",
        "status": "completed",
        "model": "gpt-5",
        "output": [item],
        "usage": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15},
    }

    def event(payload: dict[str, Any]) -> bytes:
        return _sse(payload, payload["type"])

    events = (
        Event(event({"type": "response.created", "response": {**completed, "output": []}})),
        Event(
            event({"type": "response.output_text.delta", "item_id": "m", "delta": "Here is"}),
            text="Here is",
        ),
        Event(
            event({"type": "response.output_text.delta", "item_id": "m", "delta": " a fox."}),
            text=" a fox.",
        ),
        Event(
            event(
                {
                    "type": "response.image_generation_call.partial_image",
                    "item_id": "ig_1",
                    "output_index": 0,
                    "partial_image_index": 0,
                    "partial_image_b64": _b64(_png(5)),
                    "output_format": "png",
                }
            ),
            previews=(_png(5),),
        ),
        Event(
            event({"type": "response.output_item.done", "output_index": 0, "item": item}),
            images=(_png(6),),
        ),
        Event(event({"type": "response.completed", "response": completed})),
    )
    return Adapter(
        "openai-responses-stream",
        events,
        "text/event-stream",
        _openai_params(partial_images=1, options={"api": "responses"}),
        OPENAI_KEY,
        cut_events=4,
    )


# NovelAI ---------------------------------------------------------------------

NOVELAI_KEY = "pst-faultmatrix0123456789abcdefABCDEF"


def _novelai_provider() -> imagestream.Provider:
    from imagestream_novelai import NovelAIProvider
    from imagestream_novelai._provider import DEFAULT_RETRY

    # NovelAI's own policy (which statuses), with the matrix's quick timing.
    fast = attrs.evolve(
        DEFAULT_RETRY,
        initial=FAST.initial,
        maximum=FAST.maximum,
        retry_after_max=FAST.retry_after_max,
    )
    return NovelAIProvider(retry=fast)


def _novelai_params(**options: Any) -> Callable[[str], dict[str, Any]]:
    def params(url: str) -> dict[str, Any]:
        return {
            "provider": _novelai_provider(),
            "base_url": url,
            "api_key": NOVELAI_KEY,
            "timeout": STALL,
            "steps": 2,
            "seed": 42,
            "options": options,
        }

    return params


def _novelai_events() -> list[dict[str, Any]]:
    return [
        {
            "event_type": "intermediate",
            "samp_ix": 0,
            "step_ix": 0,
            "gen_id": 7,
            "sigma": 9.1,
            "image": _jpeg(1),
        },
        {
            "event_type": "intermediate",
            "samp_ix": 0,
            "step_ix": 1,
            "gen_id": 7,
            "sigma": 2.4,
            "image": _jpeg(2),
        },
        {
            "event_type": "final",
            "samp_ix": 0,
            "step_ix": 1,
            "gen_id": 7,
            "sigma": 0.0,
            "image": _png(7),
        },
    ]


def _novelai_yield(fields: dict[str, Any]) -> dict[str, tuple[bytes, ...]]:
    kind = "previews" if fields["event_type"] == "intermediate" else "images"
    return {kind: (fields["image"],)}


def novelai_msgpack() -> Adapter:
    events = []
    for fields in _novelai_events():
        packed = msgpack.packb(fields, use_bin_type=True)
        events.append(Event(struct.pack(">I", len(packed)) + packed, **_novelai_yield(fields)))
    return Adapter(
        "novelai-msgpack",
        tuple(events),
        "application/msgpack",
        _novelai_params(),
        NOVELAI_KEY,
        cut_events=2,
        retried=frozenset({502, 503, 504}),
    )


def novelai_sse() -> Adapter:
    events = []
    for fields in _novelai_events():
        data = {**fields, "image": _b64(fields["image"])}
        events.append(Event(_sse(data, fields["event_type"]), **_novelai_yield(fields)))
    return Adapter(
        "novelai-sse",
        tuple(events),
        "text/event-stream",
        _novelai_params(stream="sse"),
        NOVELAI_KEY,
        cut_events=2,
        retried=frozenset({502, 503, 504}),
    )


def novelai_zip() -> Adapter:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("image_0.png", _png(8))
    return Adapter(
        "novelai-zip",
        (Event(buffer.getvalue(), images=(_png(8),)),),
        "application/x-zip-compressed",
        _novelai_params(stream="none"),
        NOVELAI_KEY,
        streams=False,
        retried=frozenset({502, 503, 504}),
    )


# Google ----------------------------------------------------------------------

GEMINI_KEY = "AIzaFaultMatrixGeminiKey0123456789"
VERTEX_TOKEN = "ya29.fault-matrix-vertex-token-0123456789"
_GOOGLE_USAGE = {"promptTokenCount": 9, "candidatesTokenCount": 1300, "totalTokenCount": 1309}


def _google_response(*parts: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": list(parts), "role": "model"}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    return {
        "candidates": [candidate],
        "usageMetadata": _GOOGLE_USAGE,
        "modelVersion": "gemini-2.5-flash-image",
        "responseId": "fault-matrix",
    }


def _google_parts() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    # (a part, what it yields)
    return [
        ({"text": "Here is a fox."}, {"text": "Here is a fox."}),
        (
            {"inlineData": {"mimeType": "image/png", "data": _b64(_png(9))}, "thought": True},
            {"previews": (_png(9),)},
        ),
        (
            {"inlineData": {"mimeType": "image/png", "data": _b64(_png(10))}},
            {"images": (_png(10),)},
        ),
    ]


def _google_stream(name: str, params: Callable[[str], dict[str, Any]], key: str) -> Adapter:
    events = [
        Event(_sse(_google_response(part), crlf=True), **yields) for part, yields in _google_parts()
    ]
    events.append(Event(_sse(_google_response({"text": ""}, finish="STOP"), crlf=True)))
    return Adapter(name, tuple(events), "text/event-stream", params, key, cut_events=2)


def _gemini_params(**extra: Any) -> Callable[[str], dict[str, Any]]:
    def params(url: str) -> dict[str, Any]:
        return {
            "provider": "gemini",
            "base_url": url,
            "api_key": GEMINI_KEY,
            "timeout": STALL,
            **extra,
        }

    return params


def gemini_stream() -> Adapter:
    return _google_stream("gemini-stream", _gemini_params(), GEMINI_KEY)


def gemini_whole() -> Adapter:
    parts = _google_parts()
    body = _google_response(*(part for part, _ in parts), finish="STOP")
    return Adapter(
        "gemini-whole",
        (
            Event(
                json.dumps(body).encode(),
                previews=(_png(9),),
                images=(_png(10),),
                text="Here is a fox.",
            ),
        ),
        "application/json",
        _gemini_params(options={"stream": False}),
        GEMINI_KEY,
        streams=False,
    )


def vertex_stream() -> Adapter:
    def params(url: str) -> dict[str, Any]:
        return {
            "provider": "vertex",
            "base_url": url,
            "timeout": STALL,
            "options": {
                "access_token": VERTEX_TOKEN,
                "project": "fault-matrix",
                "location": "us-central1",
            },
        }

    # Vertex AI differs from the Gemini API only in its URL and credential:
    # the cases that send, resend and refuse requests.
    only = {
        "random_pieces",
        "status_503_then_success",
        "rate_limited_retry_after_ms",
        "unauthorized_echoing_the_key",
        "reset_mid_event",
        "stall_mid_body",
    }
    return attrs.evolve(_google_stream("vertex-stream", params, VERTEX_TOKEN), only=frozenset(only))


ADAPTERS = [
    openai_images_stream(),
    openai_images_whole(),
    openai_edits_stream(),
    openai_responses_stream(),
    novelai_msgpack(),
    novelai_sse(),
    novelai_zip(),
    gemini_stream(),
    gemini_whole(),
    vertex_stream(),
]


# -- the faults ------------------------------------------------------------------


@attrs.frozen
class Expect:
    """What a case must end with.

    Attributes:
        error: The error class (exactly), or ``None`` for success.
        requests: Requests the server must have received.
        partial: What the error's ``partial`` must hold (``None``: not checked).
        client_closed: Numbers of the requests whose connection the client must have closed.
        retry_after: The error's ``retry_after`` (to within a second and a half).
        min_seconds: The run may not end sooner (a wait the server asked for).
        exact: ``error`` is the exact class (else any subclass will do).
    """

    error: type[ImagestreamError] | None
    requests: int
    partial: Summary | None = None
    client_closed: tuple[int, ...] = ()
    retry_after: float | None = None
    min_seconds: float = 0.0
    exact: bool = True


def ok(requests: int = 1, **kwargs: Any) -> Expect:
    return Expect(None, requests, **kwargs)


def _status_then_good(status: int) -> Callable[[Adapter], Expect]:
    def expect(adapter: Adapter) -> Expect:
        if status in adapter.retried:
            return ok(2)
        error = RateLimitError if status == 429 else ServerError
        return Expect(error, 1, partial=EMPTY)

    return expect


def _rate_limited(seconds: float | None, form: str) -> Callable[[Adapter], Expect]:
    def expect(adapter: Adapter) -> Expect:
        if 429 in adapter.retried:
            return ok(2, min_seconds=max(0.0, seconds or 0.0) if form == "ms" else 0.0)
        return Expect(RateLimitError, 1, partial=EMPTY)

    return expect


def _asks_too_long(seconds: float) -> Callable[[Adapter], Expect]:
    def expect(adapter: Adapter) -> Expect:
        return Expect(RateLimitError, 1, partial=EMPTY, retry_after=seconds)

    return expect


def _interrupted(
    error: type[ImagestreamError] = StreamInterruptedError,
) -> Callable[[Adapter], Expect]:
    def expect(adapter: Adapter) -> Expect:
        return Expect(error, 1, partial=adapter.before_cut)

    return expect


def _ends_mid_event(adapter: Adapter) -> Expect:
    if adapter.streams:
        return Expect(StreamInterruptedError, 1, partial=adapter.before_cut)
    # A whole body that is complete as HTTP but not as JSON or ZIP: bad bytes.
    return Expect(StreamDecodeError, 1, partial=EMPTY)


def _empty_body(adapter: Adapter) -> Expect:
    if adapter.streams:
        return Expect(StreamInterruptedError, 1, partial=EMPTY)
    return Expect(StreamDecodeError, 1, partial=EMPTY)


@attrs.frozen
class Case:
    """One fault: the replies it scripts from an adapter, and what must happen."""

    name: str
    replies: Callable[[Adapter], list[Reply]]
    expect: Callable[[Adapter], Expect]
    streams_only: bool = False
    sse_only: bool = False
    stop_after_first_chunk: bool = False
    cancel: str | None = None  # "while_stalled" or "after_first_chunk"
    params: Mapping[str, Any] = attrs.field(factory=dict)  # more request fields


def _with_retry_after(seconds: float | None, form: str) -> Callable[[Adapter], list[Reply]]:
    def replies(adapter: Adapter) -> list[Reply]:
        headers = retry_after(seconds, form) if seconds is not None else {}  # type: ignore[arg-type]
        limited = Reply.error(
            429,
            {
                "error": {"message": "Rate limit reached", "code": 429},
                "statusCode": 429,
                "message": "Rate limit reached",
            },
            headers=headers,
        )
        return [limited, adapter.good]

    return replies


def _error_body(status: int, message: str) -> dict[str, Any]:
    # Understood by each provider's error parser: OpenAI's and Google's
    # {"error": {...}}, NovelAI's {"statusCode", "message"}.
    return {
        "error": {
            "code": status,
            "message": message,
            "status": "UNAVAILABLE",
            "type": "server_error",
        },
        "statusCode": status,
        "message": message,
    }


def _key_echo(adapter: Adapter) -> list[Reply]:
    message = f"Incorrect API key provided: {adapter.key}. Check your key."
    body = {
        "error": {
            "code": 401,
            "message": message,
            "status": "UNAUTHENTICATED",
            "type": "invalid_request_error",
        },
        "statusCode": 401,
        "message": message,
    }
    return [Reply.error(401, body), adapter.good]


CASES = [
    # Bodies that arrive whole, however slowly or oddly cut: success, one request.
    Case("random_pieces", lambda a: [a.good.but(max_piece=37)], lambda a: ok()),
    Case("one_byte_pieces", lambda a: [a.good.but(max_piece=1)], lambda a: ok()),
    Case(
        "content_length_framing",
        lambda a: [a.good.but(chunked=False, max_piece=500)],
        lambda a: ok(),
    ),
    Case(
        "trickle_longer_than_the_stall_timeout",
        lambda a: [a.good.but(trickle=STALL / 8, trickle_bytes=10)],
        lambda a: ok(),
    ),
    Case(
        "short_stall_mid_body",
        lambda a: [a.good.but(stall=STALL / 3, stall_after=a.cut)],
        lambda a: ok(),
    ),
    # Nothing of the response arrived: retried.
    Case("drop_before_headers", lambda a: [Reply(drop=True), a.good], lambda a: ok(2)),
    Case(
        "stall_before_headers",
        lambda a: [a.good.but(stall=math.inf), a.good],
        lambda a: ok(2, client_closed=(0,)),
    ),
    Case(
        "status_503_then_success",
        lambda a: [Reply.error(503, _error_body(503, "overloaded")), a.good],
        _status_then_good(503),
    ),
    Case(
        "status_500_then_success",
        lambda a: [Reply.error(500, _error_body(500, "internal")), a.good],
        _status_then_good(500),
    ),
    Case(
        "proxy_html_page_with_status_502",
        lambda a: [Reply.html(502), a.good],
        _status_then_good(502),
    ),
    Case(
        "status_502_three_times",
        lambda a: [Reply.error(502, _error_body(502, "bad gateway"))] * 3 + [a.good],
        lambda a: Expect(ServerError, 3, partial=EMPTY),
    ),
    Case(
        "rate_limited_retry_after_seconds",
        _with_retry_after(0, "seconds"),
        _rate_limited(0, "seconds"),
    ),
    Case("rate_limited_retry_after_date", _with_retry_after(-5, "date"), _rate_limited(0, "date")),
    Case("rate_limited_retry_after_ms", _with_retry_after(0.15, "ms"), _rate_limited(0.15, "ms")),
    Case(
        "rate_limited_no_retry_after",
        _with_retry_after(None, "seconds"),
        _rate_limited(None, "seconds"),
    ),
    Case("rate_limited_seconds_too_long", _with_retry_after(30, "seconds"), _asks_too_long(30)),
    Case("rate_limited_date_too_long", _with_retry_after(30, "date"), _asks_too_long(30)),
    Case("rate_limited_ms_too_long", _with_retry_after(30, "ms"), _asks_too_long(30)),
    # Refused outright: never retried.
    Case(
        "unauthorized_echoing_the_key",
        _key_echo,
        lambda a: Expect(AuthenticationError, 1, partial=EMPTY),
    ),
    Case(
        "html_page_with_status_200",
        lambda a: [Reply.html(), a.good],
        lambda a: Expect(UnexpectedResponseError, 1, partial=EMPTY),
    ),
    Case(
        "json_error_with_status_200",
        lambda a: [Reply.json(_error_body(500, "the model is overloaded")), a.good],
        lambda a: Expect(ProviderError, 1, partial=EMPTY, exact=False),
    ),
    Case("empty_body_with_status_200", lambda a: [a.good.but(body=b"")], _empty_body),
    # The body started: never retried, what came is kept.
    Case(
        "reset_right_after_headers",
        lambda a: [a.good.but(reset_after=0), a.good],
        lambda a: Expect(StreamInterruptedError, 1, partial=EMPTY),
    ),
    Case("reset_mid_event", lambda a: [a.good.but(reset_after=a.cut), a.good], _interrupted()),
    Case(
        "content_length_longer_than_the_body",
        lambda a: [a.good.but(chunked=False, truncate_after=a.cut), a.good],
        _interrupted(),
    ),
    Case(
        "error_after_first_bytes_chunked_unterminated",
        lambda a: [a.good.but(chunked=True, truncate_after=a.cut), a.good],
        _interrupted(),
    ),
    Case(
        "stall_mid_body",
        lambda a: [a.good.but(stall=math.inf, stall_after=a.cut), a.good],
        lambda a: attrs.evolve(_interrupted(APITimeoutError)(a), client_closed=(0,)),
    ),
    Case(
        "body_ends_cleanly_mid_event", lambda a: [a.good.but(body=a.body[: a.cut])], _ends_mid_event
    ),
    Case(
        "trickle_past_the_deadline",
        lambda a: [a.good.but(trickle=STALL / 5, trickle_after=a.cut), a.good],
        lambda a: attrs.evolve(_interrupted(APITimeoutError)(a), client_closed=(0,)),
        params={"deadline": 0.35},
    ),
    Case(
        "event_that_is_not_json_quoting_the_key",
        lambda a: [
            a.good.but(
                body=b"".join(e.data for e in a.events[: a.cut_events])
                + f"data: Incorrect API key provided: {a.key}\n\n".encode()
                + b"".join(e.data for e in a.events[a.cut_events :])
            ),
            a.good,
        ],
        lambda a: Expect(StreamDecodeError, 1, partial=a.before_cut),
        sse_only=True,
    ),
    Case(
        "body_ends_cleanly_between_events",
        lambda a: [a.good.but(body=b"".join(e.data for e in a.events[: a.cut_events]))],
        _interrupted(),
        streams_only=True,
    ),
    # The consumer walks away: the connection is closed, not left to the pool.
    Case(
        "cancelled_while_waiting_for_headers",
        lambda a: [a.good.but(stall=math.inf)],
        lambda a: ok(client_closed=(0,)),
        cancel="while_stalled",
    ),
    Case(
        "cancelled_mid_body",
        lambda a: [a.good.but(stall=math.inf, stall_after=a.cut)],
        lambda a: ok(client_closed=(0,)),
        streams_only=True,
        cancel="after_first_chunk",
    ),
    Case(
        "consumer_stops_during_a_stall",
        lambda a: [a.good.but(stall=math.inf, stall_after=a.cut)],
        lambda a: ok(client_closed=(0,)),
        streams_only=True,
        stop_after_first_chunk=True,
    ),
]

KNOWN_HOLES: dict[tuple[str, str], str] = {}
"""``(adapter, case)`` → why the case fails today (run as a strict xfail)."""


def _matrix() -> Iterator[Any]:
    names = {case.name for case in CASES}
    for adapter in ADAPTERS:
        assert adapter.only is None or adapter.only <= names, adapter.only - names
        for case in CASES:
            if case.streams_only and not adapter.streams:
                continue
            if case.sse_only and adapter.content_type != "text/event-stream":
                continue
            if adapter.only is not None and case.name not in adapter.only:
                continue
            marks = []
            hole = KNOWN_HOLES.get((adapter.name, case.name))
            if hole is not None:
                marks.append(pytest.mark.xfail(strict=True, reason=hole))
            yield pytest.param(adapter, case, id=f"{adapter.name}-{case.name}", marks=marks)


# -- running one cell --------------------------------------------------------------


@pytest.fixture
def providers(imagestream_plugins: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Every provider that talks HTTP and both decoders, through their entry points; no real key."""
    for name in list(os.environ):
        upper = name.upper()
        if upper.endswith("_PROXY") or upper.startswith(
            ("OPENAI_", "NOVELAI_", "NAI_", "GEMINI_", "GOOGLE_")
        ):
            monkeypatch.delenv(name)
    for name, plugin in _plugins().items():
        imagestream_plugins.register(plugin, name)
    return imagestream_plugins


@functools.cache
def _plugins() -> dict[str, object]:
    found = {entry.name: entry for entry in entry_points(group="imagestream")}
    return {name: found[name].load() for name in ("sse", "msgpack", "openai", "novelai", "google")}


def _open_fds() -> int | None:
    folder = Path("/proc/self/fd")
    return len(os.listdir(folder)) if sys.platform.startswith("linux") and folder.is_dir() else None


def _held_connections(http: HttpClient) -> int:
    """Connections the client holds for a response nobody released (aiohttp's acquired set)."""
    session = http._session
    if session is None or session.closed or session.connector is None:
        return 0
    return len(getattr(session.connector, "_acquired", ()))


def _canonical(record: RecordedRequest) -> tuple[str, str, str, bytes]:
    """A request as sent, its multipart boundary (new for each attempt) replaced by a fixed one."""
    body = record.body
    _, _, boundary = record.headers.get("Content-Type", "").partition("boundary=")
    if boundary:
        body = body.replace(boundary.strip('"').encode(), b"BOUNDARY")
    return record.method, record.path, record.query, body


async def _settle() -> None:
    # Closed transports give their sockets back on the next turns of the loop.
    for _ in range(3):
        await asyncio.sleep(0)


@attrs.define
class Outcome:
    error: ImagestreamError | None
    result: imagestream.GenerationResult
    seconds: float


async def _run(pipeline: Pipeline, adapter: Adapter, case: Case, server: FaultServer) -> Outcome:
    loop = asyncio.get_running_loop()
    started = loop.time()
    stream = pipeline.stream(PROMPT, **{**adapter.params(server.url), **case.params})
    error: ImagestreamError | None = None
    first_chunk = asyncio.Event()

    async def consume() -> None:
        async with stream:
            async for _chunk in stream:
                first_chunk.set()
                if case.stop_after_first_chunk:
                    break

    async with asyncio.timeout(RUN_LIMIT):
        try:
            if case.cancel is None:
                await consume()
            else:
                task = asyncio.create_task(consume())
                if case.cancel == "after_first_chunk":
                    await first_chunk.wait()
                else:
                    assert await server.wait_requests(1)
                    await asyncio.sleep(STALL / 5)  # well inside the stall
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
        except ImagestreamError as caught:
            error = caught
    return Outcome(error, stream.result, loop.time() - started)


@pytest.mark.parametrize(("adapter", "case"), list(_matrix()))
async def test_fault(
    providers: Any, adapter: Adapter, case: Case, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    expected = case.expect(adapter)
    fds_before = _open_fds()
    http = HttpClient(retry=FAST, stall_timeout=STALL)
    pipeline = Pipeline(manager=imagestream.get_plugin_manager(), http=http)
    try:
        async with FaultServer(*case.replies(adapter), seed=7) as server:
            outcome = await _run(pipeline, adapter, case, server)
            # Nothing held: every response was released or closed by the run itself.
            assert _held_connections(http) == 0, "a response was left unreleased"
            # Replies the client gave up on were closed by the client, promptly.
            assert await server.wait_idle(2.0), "a reply is still being played to a client"
            closed = tuple(r.number for r in server.requests if r.client_closed)
            assert set(expected.client_closed) <= set(closed), server.requests
            requests = list(server.requests)
            if outcome.error is not None or case.cancel or case.stop_after_first_chunk:
                # Whatever went wrong, the client stays usable: the next run succeeds.
                server.add(adapter.good)
                again = await _run(pipeline, adapter, Case("again", list, ok), server)
                assert again.error is None, f"the next run failed: {again.error}"
                assert Summary.of(again.result) == adapter.whole
            await http.close()
            assert await server.wait_idle(2.0, connections=True), "a connection stayed open"
    finally:
        await http.close()
    await _settle()

    error = outcome.error
    if expected.error is None:
        assert error is None, f"expected success, got {type(error).__name__}: {error}"
        if not case.stop_after_first_chunk and case.cancel is None:
            assert Summary.of(outcome.result) == adapter.whole
    else:
        wrong = f"expected {expected.error.__name__}, got {type(error).__name__}: {error}"
        assert error is not None, wrong
        if expected.exact:
            assert type(error) is expected.error, wrong
        else:
            assert isinstance(error, expected.error), wrong
        assert error.partial is not None, "the error carries no partial result"
        if expected.partial is not None:
            assert Summary.of(error.partial) == expected.partial
        if expected.retry_after is not None:
            assert isinstance(error, imagestream.ProviderError)
            assert error.retry_after == pytest.approx(expected.retry_after, abs=1.5)
        for text in (str(error), repr(error), error.message, str(error.hint)):
            assert adapter.key not in text, "the key is quoted in the error"
    assert len(requests) == expected.requests, [(r.number, r.reply.status) for r in requests]
    assert all(r.carried(adapter.key) for r in requests), "a request went without its credential"
    # A retry sends the same request again.
    assert len({_canonical(r) for r in requests}) == 1
    assert adapter.key not in caplog.text, "the key is in the logs"
    assert outcome.seconds >= expected.min_seconds
    if fds_before is not None:
        assert _open_fds() == fds_before, "a file descriptor was left open"


# -- a redirect to another origin ------------------------------------------------

REDIRECT_HOLES: dict[str, str] = {}
"""Adapters whose credential a cross-origin redirect leaks today (run as a strict xfail)."""

AZURE_STYLE = attrs.evolve(
    openai_images_stream(),
    name="openai-api-key-header",
    params=_openai_params(partial_images=2, options={"auth_header": "api-key"}),
)
"""OpenAI with the key in an ``api-key`` header (Azure OpenAI's way)."""


def _redirect_matrix() -> Iterator[Any]:
    for adapter in [*ADAPTERS, AZURE_STYLE]:
        hole = REDIRECT_HOLES.get(adapter.name)
        marks = [pytest.mark.xfail(strict=True, reason=hole)] if hole else []
        yield pytest.param(adapter, id=adapter.name, marks=marks)


@pytest.mark.parametrize("adapter", list(_redirect_matrix()))
async def test_a_redirect_to_another_origin_never_carries_the_key(
    providers: Any, adapter: Adapter
) -> None:
    """A server (or a proxy) that redirects elsewhere must not receive the key there.

    Following the redirect without the credential, or refusing to follow it,
    are both fine: the run then succeeds or ends with a typed error.
    """
    http = HttpClient(retry=FAST, stall_timeout=STALL)
    pipeline = Pipeline(manager=imagestream.get_plugin_manager(), http=http)
    try:
        async with FaultServer(adapter.good) as elsewhere:
            # Another port: another origin.
            location = elsewhere.url + "/elsewhere"
            redirect = Reply(status=307, headers={"Location": location}, content_type=None)
            async with FaultServer(redirect, adapter.good) as server:
                stream = pipeline.stream(PROMPT, **adapter.params(server.url))
                with contextlib.suppress(ImagestreamError):
                    async with asyncio.timeout(RUN_LIMIT), stream:
                        async for _chunk in stream:
                            pass
            assert server.requests[0].carried(adapter.key)
            assert not any(r.carried(adapter.key) for r in elsewhere.requests), (
                "the key was sent to another origin"
            )
    finally:
        await http.close()


# -- the kit itself -------------------------------------------------------------------


async def test_fault_server_records_requests_with_credentials_masked() -> None:
    import aiohttp

    async with FaultServer(Reply.json({"ok": True})) as server, aiohttp.ClientSession() as session:
        headers = {"Authorization": "Bearer sk-secret-1", "x-goog-api-key": "AIza-secret-2"}
        async with session.put(f"{server.url}/a/b?c=1", data=b"body", headers=headers) as response:
            assert response.status == 200
            assert await response.json() == {"ok": True}
    (request,) = server.requests
    assert (request.method, request.path, request.query, request.body) == (
        "PUT",
        "/a/b",
        "c=1",
        b"body",
    )
    assert request.headers["Authorization"] == request.headers["x-goog-api-key"] == "<masked>"
    assert "secret" not in repr(request)
    assert request.carried("sk-secret-1") and request.carried("Bearer sk-secret-1")
    assert request.carried("AIza-secret-2") and not request.carried("sk-other")
    assert request.completed and not request.client_closed


async def test_fault_server_says_when_its_script_is_used_up() -> None:
    import aiohttp

    async with FaultServer(Reply(body=b"one")) as server, aiohttp.ClientSession() as session:
        for expected, said in ((200, b"one"), (500, b"no reply scripted")):
            async with session.get(server.url) as response:
                assert response.status == expected
                assert said in await response.read()
        server.default = Reply(body=b"again")
        server.add(Reply(body=b"added"))
        for expected_body in (b"added", b"again", b"again"):
            async with session.get(server.url) as response:
                assert await response.read() == expected_body
    assert len(server.requests) == 5


def test_retry_after_forms() -> None:
    assert retry_after(1.2) == {"Retry-After": "2"}
    assert retry_after(0.25, "ms") == {"retry-after-ms": "250"}
    date = retry_after(30, "date")["Retry-After"]
    assert date.endswith(" GMT")
    assert 28 <= email.utils.parsedate_to_datetime(date).timestamp() - time.time() <= 31
    assert Reply.rate_limited().headers == {}
    assert Reply.rate_limited(2, "ms").headers == {"retry-after-ms": "2000"}
    with pytest.raises(ValueError, match="form"):
        retry_after(1, "minutes")  # type: ignore[arg-type]
