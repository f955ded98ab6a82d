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

A provider that makes several requests (a key exchanged for a token, a job
started then polled, a result downloaded, a WebSocket beside its HTTP calls)
has one adapter per *leg*: the request the faults are played on, the other
requests answered well by routes of their own (:meth:`FaultServer.route
<imagestream.testing.FaultServer.route>`). Its WebSocket has cases of its own
(``ws_*``: closed, reset, a frame no server may send, one too large, a stall).

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
from collections.abc import Callable, Iterator, Mapping, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import attrs
import msgpack
import pytest

import imagestream
from imagestream import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    HttpClient,
    ImagestreamError,
    ImageValidationError,
    Pipeline,
    ProviderError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    StreamDecodeError,
    StreamInterruptedError,
    UnexpectedResponseError,
)
from imagestream.testing import (
    FaultServer,
    RecordedRequest,
    Reply,
    WebSocketReply,
    make_image,
    retry_after,
)

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
    binary: bool = False  # on a WebSocket: a binary message (else a text one)


@attrs.frozen
class Summary:
    """What a run produced, in the terms the matrix compares."""

    images: tuple[bytes, ...] = ()
    previews: tuple[bytes, ...] = ()
    text: str = ""

    @classmethod
    def of(
        cls, result: imagestream.GenerationResult, previews: Sequence[imagestream.ImagePreview]
    ) -> Summary:
        """A stream's result and the previews its loop was handed.

        The result keeps the latest preview only (each was yielded to the
        loop): checked here, so that what came is what was handed over.
        """
        assert result.previews == list(previews[-1:]) and result.preview_count == len(previews)
        return cls(
            tuple(final.image.data for final in result.images),
            tuple(preview.image.data for preview in previews),
            result.text,
        )

    @classmethod
    def of_events(cls, events: tuple[Event, ...]) -> Summary:
        return cls(
            tuple(image for e in events for image in e.images),
            tuple(image for e in events for image in e.previews),
            "".join(e.text for e in events),
        )

    def __add__(self, other: Summary) -> Summary:
        return Summary(
            self.images + other.images, self.previews + other.previews, self.text + other.text
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
        leg: For a provider that makes several requests: the path (or
            ``path?query``) of the request the faults are played on (``None``:
            every request); the requests counted are its.
        routes: ``routes(url, received, replies)``: the other paths' scripts,
            ``{path: (replies, default)}``, given the server's URL, the
            requests it has received so far and how many replies the leg is given.
        leg_default: The leg's reply once its script is used up (a poll's).
        at: ``at(url)``: the events, when they name the server's URL.
        prior: What the run yields before the leg's request (from other legs).
        after: What the run yields after the leg's answer (from other legs).
        secrets: More credentials that no error or log may quote (the key
            exchanged for the token the leg carries, ``user:password``).
        reconnects: A connection lost (or silent) before the leg's answer is retried.
        bad_bytes: The error for a whole body that is not its format.
        websocket: The leg is a WebSocket; its events are its messages.
        expect_hook: ``hook(adapter, case, expected)``: the expectation where
            the provider's documented behaviour differs from the rule.
        skip: Cases that do not apply to the leg, and why.
    """

    name: str
    events: tuple[Event, ...]
    content_type: str
    params: Callable[[str], dict[str, Any]]
    key: str | None
    streams: bool = True
    cut_events: int = 0
    retried: frozenset[int] = ALL_RETRIED
    only: frozenset[str] | None = None
    leg: str | None = None
    routes: Callable[[str, int, int], Mapping[str, Route]] | None = None
    leg_default: Reply | None = None
    at: Callable[[str], tuple[Event, ...]] | None = None
    prior: Summary = EMPTY
    after: Summary = EMPTY
    secrets: tuple[str, ...] = ()
    reconnects: bool = True
    bad_bytes: type[ImagestreamError] = StreamDecodeError
    websocket: bool = False
    expect_hook: Callable[[Adapter, Case, Expect], Expect] | None = None
    skip: Mapping[str, str] = attrs.field(factory=dict)

    def bind(self, url: str) -> Adapter:
        """This adapter for a server at ``url`` (its events may name it)."""
        return self if self.at is None else attrs.evolve(self, events=self.at(url))

    @property
    def never_quoted(self) -> tuple[str, ...]:
        return tuple(secret for secret in (self.key, *self.secrets) if secret)

    def on_leg(self, request: RecordedRequest) -> bool:
        if self.leg is None:
            return True
        path, _, query = self.leg.partition("?")
        return request.path == path and (not query or request.query == query)

    @property
    def body(self) -> bytes:
        return b"".join(event.data for event in self.events)

    @property
    def good(self) -> Reply:
        """The good reply, chunked as streams are."""
        return Reply(body=self.body, content_type=self.content_type, chunked=self.streams)

    @property
    def good_websocket(self) -> WebSocketReply:
        """The good WebSocket: one message per event."""
        return WebSocketReply(
            messages=tuple(e.data if e.binary else e.data.decode() for e in self.events)
        )

    @property
    def good_reply(self) -> Reply | WebSocketReply:
        return self.good_websocket if self.websocket else self.good

    @property
    def cut(self) -> int:
        """A byte offset in the middle of the event after the first ``cut_events``."""
        before = sum(len(event.data) for event in self.events[: self.cut_events])
        return before + len(self.events[self.cut_events].data) // 2

    @property
    def before_cut(self) -> Summary:
        """What a fault at :attr:`cut` leaves in the error's ``partial``."""
        came = Summary.of_events(self.events[: self.cut_events]) if self.streams else EMPTY
        return self.prior + came

    @property
    def whole(self) -> Summary:
        return self.prior + Summary.of_events(self.events) + self.after


Route = tuple[Sequence[Reply | WebSocketReply], Reply | WebSocketReply | None]
"""A path's script and its default (:meth:`FaultServer.route`)."""


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


def _novelai_yield(fields: dict[str, Any]) -> dict[str, Any]:
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


# Animus ----------------------------------------------------------------------

ANIMUS_KEY = "animus-matrix-key-0123456789abcdef"
ANIMUS_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDB9.fault-matrix-animus-signature"
"""What the key is exchanged for (a JWT that expires in 2100): every API call carries it."""
_ANIMUS_PNG = _png(14)


def _animus_params(model: str) -> Callable[[str], dict[str, Any]]:
    def params(url: str) -> dict[str, Any]:
        from imagestream_animus import AnimusAuth, AnimusProvider
        from imagestream_animus._provider import CREATE_RETRY

        # Animus's own policy for starting a generation (which statuses), with quick timing.
        fast = attrs.evolve(
            CREATE_RETRY,
            initial=FAST.initial,
            maximum=FAST.maximum,
            retry_after_max=FAST.retry_after_max,
        )
        return {
            # A token cache of its own: each run exchanges the key.
            "provider": AnimusProvider(auth=AnimusAuth(), retry=fast),
            "base_url": f"{url}/v3",
            "api_key": ANIMUS_KEY,
            "timeout": STALL,
            "model": model,
            "options": {"poll_interval": 0.01, "max_poll_interval": 0.02},
        }

    return params


def _animus_result(url: str) -> str:
    return f"{url}/files/result.png"


def _animus_done(url: str) -> dict[str, Any]:
    return {
        "generation_id": "gen_1",
        "status": "completed",
        "progress": 100,
        "result_urls": [_animus_result(url)],
        "error": None,
    }


def _animus_routes(url: str, received: int, replies: int) -> dict[str, Route]:
    created = {"generation_id": "gen_1", "status": "queued", "estimated_time": 1}
    return {
        "/auth/generate-token": ((), Reply.json({"accessToken": ANIMUS_TOKEN, "expiresIn": 900})),
        "/v3/generate/image": ((), Reply.json({"output": [_animus_result(url)]})),
        "/v3/generation/create": ((), Reply.json(created)),
        "/v3/generation/status/gen_1": ((), Reply.json(_animus_done(url))),
        "/files/result.png": ((), Reply(body=_ANIMUS_PNG, content_type="image/png")),
    }


def _animus_refreshes(adapter: Adapter, case: Case, expected: Expect) -> Expect:
    """A 401 from the API exchanges the key again and retries once (the token may have expired)."""
    if case.name == "unauthorized_echoing_the_key":
        return ok(2)
    return expected


def _animus(name: str, leg: str, model: str, **fields: Any) -> Adapter:
    return Adapter(
        name,
        (),
        "application/json",
        _animus_params(model),
        ANIMUS_TOKEN,
        streams=False,
        leg=leg,
        routes=_animus_routes,
        secrets=(ANIMUS_KEY,),
        **fields,
    ).bind("http://127.0.0.1:1")


def animus_image() -> Adapter:
    """The generate-image endpoint: its answer names the picture to download."""
    return _animus(
        "animus-image",
        "/v3/generate/image",
        "generate-image",
        at=lambda url: (Event(json.dumps({"output": [_animus_result(url)]}).encode()),),
        retried=frozenset({408, 429, 502, 503, 504}),
        after=Summary(images=(_ANIMUS_PNG,)),
        expect_hook=_animus_refreshes,
    )


def animus_status() -> Adapter:
    """The generation endpoint's status poll, which ends with the result's URL."""
    return _animus(
        "animus-status",
        "/v3/generation/status/gen_1",
        "generation",
        at=lambda url: (Event(json.dumps(_animus_done(url)).encode()),),
        after=Summary(images=(_ANIMUS_PNG,)),
        expect_hook=_animus_refreshes,
    )


def animus_download() -> Adapter:
    """The result's download (on the API's own origin: it carries the token)."""
    return attrs.evolve(
        _animus(
            "animus-download",
            "/files/result.png",
            "generate-image",
            at=lambda url: (Event(_ANIMUS_PNG, images=(_ANIMUS_PNG,)),),
            bad_bytes=ImageValidationError,
        ),
        content_type="image/png",
    )


# AUTOMATIC1111 ---------------------------------------------------------------

A1111_LOGIN = "matrix:a1111-matrix-password-0123"
"""``--api-auth``'s ``user:password``: sent as basic authentication."""
A1111_TOKEN = base64.b64encode(A1111_LOGIN.encode()).decode()
_A1111_PNG = _png(15)
_A1111_JPEG = _jpeg(16)
_A1111_IDLE = {
    "progress": 0,
    "eta_relative": 0,
    "state": {"job": "", "job_count": 0, "job_no": 0, "job_timestamp": "0", "sampling_step": 0},
    "current_image": None,
    "textinfo": None,
}
_A1111_BUSY = {
    "progress": 0.5,
    "eta_relative": 1.0,
    "state": {
        "job": "scripts_txt2img",
        "job_count": 1,
        "job_no": 0,
        "job_timestamp": "20300101120001",
        "sampling_step": 1,
        "sampling_steps": 2,
    },
    "current_image": _b64(_A1111_JPEG),
    "textinfo": None,
}
_A1111_ANSWER = {
    "images": [_b64(_A1111_PNG)],
    "parameters": {},
    "info": json.dumps(
        {"seed": 5, "all_seeds": [5], "index_of_first_image": 0, "infotexts": ["a red fox"]}
    ),
}
_A1111_POLL = "/sdapi/v1/progress?skip_current_image=false"


def _a1111_params(url: str) -> dict[str, Any]:
    return {
        "provider": "a1111",
        "base_url": url,
        "api_key": A1111_LOGIN,
        "timeout": STALL,
        "size": "64x64",
        "steps": 2,
        "seed": 5,
        "options": {"poll_interval": 0.01},
    }


def _a1111_routes(url: str, received: int, replies: int) -> dict[str, Route]:
    # The generation answers when the leg's replies have been polled, and one poll more
    # (its answer, which comes only after the last one was read, lets the images in).
    held = Reply.json(_A1111_ANSWER).but(after_requests=received + 2 + replies + 1)
    return {
        "/sdapi/v1/progress?skip_current_image=true": ((), Reply.json(_A1111_IDLE)),
        _A1111_POLL: ((), Reply.json(_A1111_IDLE)),
        "/sdapi/v1/txt2img": ((held,), None),
        "/sdapi/v1/interrupt": ((), Reply.json({})),
    }


def a1111_txt2img() -> Adapter:
    """The generation: one request that answers when the images are done."""

    def routes(url: str, received: int, replies: int) -> dict[str, Route]:
        return {**_a1111_routes(url, received, replies), "/sdapi/v1/txt2img": ((), None)}

    return Adapter(
        "a1111-txt2img",
        (Event(json.dumps(_A1111_ANSWER).encode(), images=(_A1111_PNG,)),),
        "application/json",
        _a1111_params,
        A1111_TOKEN,
        streams=False,
        retried=frozenset(),  # a generation is never sent twice
        leg="/sdapi/v1/txt2img",
        routes=routes,
        secrets=(A1111_LOGIN,),
        reconnects=False,
        skip={
            "stall_before_headers": "the generation answers only when its images are done: "
            "its liveness is the progress polled meanwhile (a1111-progress)",
        },
    )


_POLL_STALLED = frozenset(
    {
        "stall_before_headers",
        "stall_mid_body",
        "trickle_longer_than_the_stall_timeout",
        "trickle_past_the_deadline",
    }
)


def _poll_tolerated(adapter: Adapter, case: Case, expected: Expect) -> Expect:
    """A failed poll is no reason to give up a generation: the next one is made.

    A poll that does not answer within the stall timeout (however slowly it
    sends) ends the run: the progress answers are the generation's heartbeat.
    """
    if case.cancel or case.stop_after_first_chunk:
        return expected
    if case.name in _POLL_STALLED:
        return Expect(APITimeoutError, 1, partial=adapter.prior, client_closed=(0,))
    return ok(len(case.replies(adapter)) + 1, at_least=True)


def a1111_progress() -> Adapter:
    """The progress polled while the generation runs: a new picture is a preview."""
    return Adapter(
        "a1111-progress",
        (Event(json.dumps(_A1111_BUSY).encode(), previews=(_A1111_JPEG,)),),
        "application/json",
        _a1111_params,
        A1111_TOKEN,
        streams=False,
        retried=frozenset(),
        leg=_A1111_POLL,
        routes=_a1111_routes,
        leg_default=Reply.json(_A1111_BUSY),  # the same picture: nothing new
        after=Summary(images=(_A1111_PNG,)),
        secrets=(A1111_LOGIN,),
        reconnects=False,
        expect_hook=_poll_tolerated,
    )


# ComfyUI ---------------------------------------------------------------------

COMFY_PASSWORD = "comfy-matrix-password-0123456789"
"""The password of a ComfyUI behind a proxy with basic authentication (``user:password@`` in its URL)."""
COMFY_TOKEN = base64.b64encode(f"matrix:{COMFY_PASSWORD}".encode()).decode()
COMFY_PROMPT = "matrix-prompt-0001"
_COMFY_JPEGS = (_jpeg(17), _jpeg(18))
_COMFY_PNG = _png(19)


def _comfy_params(url: str) -> dict[str, Any]:
    return {
        "provider": "comfyui",
        "base_url": url.replace("http://", f"http://matrix:{COMFY_PASSWORD}@"),
        "timeout": STALL,
        "size": "64x64",
        "steps": 2,
        "seed": 5,
        "model": "matrix.safetensors",
    }


def _comfy_events() -> tuple[Event, ...]:
    def text(kind: str, **data: Any) -> bytes:
        return json.dumps({"type": kind, "data": data}).encode()

    first, second = _COMFY_JPEGS
    meta = json.dumps({"node_id": "3", "prompt_id": COMFY_PROMPT, "image_type": "image/jpeg"})
    saved = {"images": [{"filename": "matrix_00001_.png", "subfolder": "", "type": "output"}]}
    return (
        Event(text("status", status={"exec_info": {"queue_remaining": 1}}, sid="matrix")),
        Event(text("execution_start", prompt_id=COMFY_PROMPT, timestamp=1)),
        Event(text("executing", node="3", display_node="3", prompt_id=COMFY_PROMPT)),
        Event(text("progress", value=1, max=2, prompt_id=COMFY_PROMPT, node="3")),
        Event(
            struct.pack(">II", 4, len(meta)) + meta.encode() + first,
            previews=(first,),
            binary=True,
        ),
        Event(text("progress", value=2, max=2, prompt_id=COMFY_PROMPT, node="3")),
        Event(struct.pack(">II", 1, 1) + second, previews=(second,), binary=True),
        Event(text("executed", node="9", display_node="9", output=saved, prompt_id=COMFY_PROMPT)),
        Event(text("execution_success", prompt_id=COMFY_PROMPT, timestamp=2)),
        Event(text("executing", node=None, prompt_id=COMFY_PROMPT)),
    )


_COMFY_QUEUED = {"prompt_id": COMFY_PROMPT, "number": 1, "node_errors": {}}


def _comfy_routes(url: str, received: int, replies: int) -> dict[str, Route]:
    checkpoints = {"input": {"required": {"ckpt_name": [["matrix.safetensors"]]}}}
    messages = tuple(e.data if e.binary else e.data.decode() for e in _comfy_events())
    return {
        "/ws": ((), WebSocketReply(messages=messages)),
        "/object_info/CheckpointLoaderSimple": (
            (),
            Reply.json({"CheckpointLoaderSimple": checkpoints}),
        ),
        "/prompt": ((), Reply.json(_COMFY_QUEUED)),
        "/view": ((), Reply(body=_COMFY_PNG, content_type="image/png")),
        "/queue": ((), Reply(content_type=None)),
        "/interrupt": ((), Reply(content_type=None)),
        f"/history/{COMFY_PROMPT}": ((), Reply.json({})),
    }


def _comfy(name: str, leg: str, events: tuple[Event, ...], **fields: Any) -> Adapter:
    fields.setdefault("streams", False)
    return Adapter(
        name,
        events,
        "application/json",
        _comfy_params,
        COMFY_TOKEN,
        leg=leg,
        routes=_comfy_routes,
        secrets=(COMFY_PASSWORD,),
        **fields,
    )


def comfyui_prompt() -> Adapter:
    """The workflow queued (never sent twice); the run is read from the WebSocket after."""
    return _comfy(
        "comfyui-prompt",
        "/prompt",
        (Event(json.dumps(_COMFY_QUEUED).encode()),),
        retried=frozenset(),
        reconnects=False,
        after=Summary(images=(_COMFY_PNG,), previews=_COMFY_JPEGS),
    )


def comfyui_view() -> Adapter:
    """A saved image fetched once the WebSocket names it (its previews came before)."""
    return attrs.evolve(
        _comfy(
            "comfyui-view",
            "/view",
            (Event(_COMFY_PNG, images=(_COMFY_PNG,)),),
            prior=Summary(previews=_COMFY_JPEGS),
            bad_bytes=ImageValidationError,
        ),
        content_type="image/png",
    )


def _handshake_reopened(adapter: Adapter, case: Case, expected: Expect) -> Expect:
    """aiohttp sends a GET once more when its connection drops before any answer (RFC 9112 9.3.1)."""
    if case.name == "drop_before_headers":
        return ok(2)
    return expected


def comfyui_websocket() -> Adapter:
    """The WebSocket that reports the run: progress, binary previews, the saved images."""
    return _comfy(
        "comfyui-ws",
        "/ws",
        _comfy_events(),
        streams=True,
        websocket=True,
        cut_events=5,  # after the first preview
        retried=frozenset(),  # opened once
        reconnects=False,
        after=Summary(images=(_COMFY_PNG,)),
        expect_hook=_handshake_reopened,
    )


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
    animus_image(),
    animus_status(),
    animus_download(),
    a1111_txt2img(),
    a1111_progress(),
    comfyui_prompt(),
    comfyui_view(),
    comfyui_websocket(),
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
        at_least: ``requests`` is a minimum (a leg that is polled until the job ends).
    """

    error: type[ImagestreamError] | None
    requests: int
    partial: Summary | None = None
    client_closed: tuple[int, ...] = ()
    retry_after: float | None = None
    min_seconds: float = 0.0
    exact: bool = True
    at_least: bool = False


def ok(requests: int = 1, **kwargs: Any) -> Expect:
    return Expect(None, requests, **kwargs)


def _status_then_good(status: int) -> Callable[[Adapter], Expect]:
    def expect(adapter: Adapter) -> Expect:
        if status in adapter.retried:
            return ok(2)
        error = RateLimitError if status == 429 else ServerError
        return Expect(error, 1, partial=adapter.prior)

    return expect


def _rate_limited(seconds: float | None, form: str) -> Callable[[Adapter], Expect]:
    def expect(adapter: Adapter) -> Expect:
        if 429 in adapter.retried:
            return ok(2, min_seconds=max(0.0, seconds or 0.0) if form == "ms" else 0.0)
        return Expect(RateLimitError, 1, partial=adapter.prior)

    return expect


def _asks_too_long(seconds: float) -> Callable[[Adapter], Expect]:
    def expect(adapter: Adapter) -> Expect:
        return Expect(RateLimitError, 1, partial=adapter.prior, retry_after=seconds)

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
    # A whole body that is complete as HTTP but not as JSON, ZIP or an image: bad bytes.
    return Expect(adapter.bad_bytes, 1, partial=adapter.prior)


def _empty_body(adapter: Adapter) -> Expect:
    if adapter.streams:
        return Expect(StreamInterruptedError, 1, partial=adapter.prior)
    return Expect(adapter.bad_bytes, 1, partial=adapter.prior)


def _lost_before_the_answer(
    error: type[ImagestreamError], **kwargs: Any
) -> Callable[[Adapter], Expect]:
    def expect(adapter: Adapter) -> Expect:
        if adapter.reconnects:
            return ok(2, **kwargs)
        return Expect(error, 1, partial=adapter.prior, **kwargs)

    return expect


@attrs.frozen
class Case:
    """One fault: the replies it scripts from an adapter, and what must happen."""

    name: str
    replies: Callable[[Adapter], Sequence[Reply | WebSocketReply]]
    expect: Callable[[Adapter], Expect]
    streams_only: bool = False
    sse_only: bool = False
    stop_after_first_chunk: bool = False
    cancel: str | None = None  # "while_stalled" or "after_first_chunk"
    params: Mapping[str, Any] = attrs.field(factory=dict)  # more request fields
    websocket: bool = False  # a case of a WebSocket leg (and only of one)


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


def _key_echo(adapter: Adapter) -> list[Reply | WebSocketReply]:
    quoted = " / ".join(adapter.never_quoted) or "(none)"
    message = f"Incorrect API key provided: {quoted}. Check your key."
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
    return [Reply.error(401, body), adapter.good_reply]


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
    # Nothing of the response arrived: retried (where the leg's policy retries it).
    Case(
        "drop_before_headers",
        lambda a: [Reply(drop=True), a.good_reply],
        _lost_before_the_answer(APIConnectionError),
    ),
    Case(
        "stall_before_headers",
        lambda a: [a.good.but(stall=math.inf), a.good_reply],
        _lost_before_the_answer(APITimeoutError, client_closed=(0,)),
    ),
    Case(
        "status_503_then_success",
        lambda a: [Reply.error(503, _error_body(503, "overloaded")), a.good_reply],
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
        lambda a: Expect(ServerError, 3 if 502 in a.retried else 1, partial=a.prior),
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
        lambda a: Expect(AuthenticationError, 1, partial=a.prior),
    ),
    Case(
        "html_page_with_status_200",
        lambda a: [Reply.html(), a.good_reply],
        lambda a: Expect(UnexpectedResponseError, 1, partial=a.prior),
    ),
    Case(
        "json_error_with_status_200",
        lambda a: [Reply.json(_error_body(500, "the model is overloaded")), a.good],
        lambda a: Expect(ProviderError, 1, partial=a.prior, exact=False),
    ),
    Case("empty_body_with_status_200", lambda a: [a.good.but(body=b"")], _empty_body),
    # The body started: never retried, what came is kept.
    Case(
        "reset_right_after_headers",
        lambda a: [a.good.but(reset_after=0), a.good],
        lambda a: Expect(StreamInterruptedError, 1, partial=a.prior),
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


def _with_junk(adapter: Adapter) -> WebSocketReply:
    """The good messages with junk between them: not JSON, an unknown binary type, a bad event."""
    junk: tuple[str | bytes, ...] = (
        "not JSON {",
        b"\x00\x00\x00\x03\x00\x00\x00\x01" + b"node text",
        b"\x00\x01",
        '{"type": "progress", "data": {"value": "x", "max": null}}',
        '["a", "list"]',
    )
    messages = adapter.good_websocket.messages
    cut = adapter.cut_events
    return adapter.good_websocket.but(messages=messages[:cut] + junk + messages[cut:])


def _ws_fault(**fault: Any) -> Callable[[Adapter], list[Reply | WebSocketReply]]:
    """The good WebSocket, with a fault after the first ``cut_events`` messages."""

    def replies(adapter: Adapter) -> list[Reply | WebSocketReply]:
        at = {name: adapter.cut_events for name, value in fault.items() if value is None}
        changes = {**fault, **at}
        return [adapter.good_websocket.but(**changes), adapter.good_websocket]

    return replies


CASES += [
    # The WebSocket of a provider that reports its run on one.
    Case("ws_messages", lambda a: [a.good_websocket], lambda a: ok(), websocket=True),
    Case("ws_junk_between_messages", lambda a: [_with_junk(a)], lambda a: ok(), websocket=True),
    Case(
        "ws_short_stall_mid_run",
        _ws_fault(stall=STALL / 3, stall_after=None),
        lambda a: ok(),
        websocket=True,
    ),
    Case("ws_closed_mid_run", _ws_fault(close_after=None), _interrupted(), websocket=True),
    Case(
        "ws_closed_normally_mid_run",
        _ws_fault(close_after=None, close_code=1000),
        _interrupted(),
        websocket=True,
    ),
    Case("ws_reset_mid_run", _ws_fault(reset_after=None), _interrupted(), websocket=True),
    Case("ws_garbage_frame_mid_run", _ws_fault(garbage_after=None), _interrupted(), websocket=True),
    Case(
        "ws_oversized_frame_mid_run",
        _ws_fault(oversized_after=None),
        _interrupted(ProviderError),
        websocket=True,
    ),
    Case(
        "ws_stall_mid_run",
        _ws_fault(stall=math.inf, stall_after=None),
        lambda a: attrs.evolve(_interrupted(APITimeoutError)(a), client_closed=(0,)),
        websocket=True,
    ),
    Case(
        "ws_cancelled_mid_run",
        _ws_fault(stall=math.inf, stall_after=None),
        lambda a: ok(client_closed=(0,)),
        cancel="after_first_chunk",
        websocket=True,
    ),
    Case(
        "ws_consumer_stops_during_a_stall",
        _ws_fault(stall=math.inf, stall_after=None),
        lambda a: ok(client_closed=(0,)),
        stop_after_first_chunk=True,
        websocket=True,
    ),
]

HANDSHAKE_CASES = frozenset(
    {
        "drop_before_headers",
        "status_503_then_success",
        "unauthorized_echoing_the_key",
        "html_page_with_status_200",
        "cancelled_while_waiting_for_headers",
    }
)
"""The HTTP cases that a WebSocket's opening handshake is put through."""

KNOWN_HOLES: dict[tuple[str, str], str] = {}
"""``(adapter, case)`` → why the case fails today (run as a strict xfail)."""


def _matrix() -> Iterator[Any]:
    names = {case.name for case in CASES}
    for adapter in ADAPTERS:
        assert adapter.only is None or adapter.only <= names, adapter.only - names
        assert set(adapter.skip) <= names, set(adapter.skip) - names
        for case in CASES:
            if case.streams_only and not adapter.streams:
                continue
            if case.sse_only and adapter.content_type != "text/event-stream":
                continue
            if case.websocket and not adapter.websocket:
                continue
            if adapter.websocket and not case.websocket and case.name not in HANDSHAKE_CASES:
                continue
            if adapter.only is not None and case.name not in adapter.only:
                continue
            if case.name in adapter.skip:
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
            ("OPENAI_", "NOVELAI_", "NAI_", "GEMINI_", "GOOGLE_", "ANIMUS_", "A1111_", "COMFYUI_")
        ):
            monkeypatch.delenv(name)
    for name, plugin in _plugins().items():
        imagestream_plugins.register(plugin, name)
    return imagestream_plugins


@functools.cache
def _plugins() -> dict[str, object]:
    found = {entry.name: entry for entry in entry_points(group="imagestream")}
    names = ("sse", "msgpack", "openai", "novelai", "google", "animus", "a1111", "comfyui")
    return {name: found[name].load() for name in names}


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


def _install(
    server: FaultServer,
    adapter: Adapter,
    replies: Sequence[Reply | WebSocketReply],
    *,
    again: bool = False,
) -> None:
    """Script ``server`` for one run: the leg's replies, and the other legs' routes.

    ``again``: for the run after a case's, whose replies left unused are dropped.
    """
    if adapter.routes is not None:
        routes = adapter.routes(server.url, len(server.requests), len(replies))
        for path, (script, default) in routes.items():
            if path != adapter.leg:
                server.route(path, *script, default=default)
    if adapter.leg is None:
        if again:
            server.script.clear()
        server.add(*replies)
    else:
        server.route(adapter.leg, *replies, default=adapter.leg_default, replace=again)


def _expected(adapter: Adapter, case: Case) -> Expect:
    expected = case.expect(adapter)
    if adapter.expect_hook is not None:
        expected = adapter.expect_hook(adapter, case, expected)
    return expected


async def _settle() -> None:
    # Closed transports give their sockets back on the next turns of the loop.
    for _ in range(3):
        await asyncio.sleep(0)


@attrs.define
class Outcome:
    error: ImagestreamError | None
    result: imagestream.GenerationResult
    seconds: float
    previews: list[imagestream.ImagePreview]  # every preview the loop was handed


async def _run(pipeline: Pipeline, adapter: Adapter, case: Case, server: FaultServer) -> Outcome:
    loop = asyncio.get_running_loop()
    started = loop.time()
    stream = pipeline.stream(PROMPT, **{**adapter.params(server.url), **case.params})
    error: ImagestreamError | None = None
    first_chunk = asyncio.Event()
    previews: list[imagestream.ImagePreview] = []

    async def consume() -> None:
        async with stream:
            async for chunk in stream:
                first_chunk.set()
                if isinstance(chunk, imagestream.ImagePreview):
                    previews.append(chunk)
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
    return Outcome(error, stream.result, loop.time() - started, previews)


@pytest.mark.parametrize(("adapter", "case"), list(_matrix()))
async def test_fault(
    providers: Any, adapter: Adapter, case: Case, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fds_before = _open_fds()
    http = HttpClient(retry=FAST, stall_timeout=STALL)
    pipeline = Pipeline(manager=imagestream.get_plugin_manager(), http=http)
    try:
        async with FaultServer(seed=7) as server:
            adapter = adapter.bind(server.url)
            expected = _expected(adapter, case)
            _install(server, adapter, case.replies(adapter))
            outcome = await _run(pipeline, adapter, case, server)
            # Nothing held: every response was released or closed by the run itself.
            assert _held_connections(http) == 0, "a response was left unreleased"
            # Replies the client gave up on were closed by the client, promptly.
            assert await server.wait_idle(2.0), "a reply is still being played to a client"
            requests = [r for r in server.requests if adapter.on_leg(r)]
            closed = tuple(number for number, r in enumerate(requests) if r.client_closed)
            assert set(expected.client_closed) <= set(closed), server.requests
            if outcome.error is not None or case.cancel or case.stop_after_first_chunk:
                # Whatever went wrong, the client stays usable: the next run succeeds.
                _install(server, adapter, [adapter.good_reply], again=True)
                again = await _run(
                    pipeline, adapter, Case("again", lambda a: [], lambda a: ok()), server
                )
                assert again.error is None, f"the next run failed: {again.error}"
                assert Summary.of(again.result, again.previews) == adapter.whole
            await http.close()
            assert await server.wait_idle(2.0, connections=True), "a connection stayed open"
    finally:
        await http.close()
    await _settle()

    error = outcome.error
    if expected.error is None:
        assert error is None, f"expected success, got {type(error).__name__}: {error}"
        if not case.stop_after_first_chunk and case.cancel is None:
            assert Summary.of(outcome.result, outcome.previews) == adapter.whole
    else:
        wrong = f"expected {expected.error.__name__}, got {type(error).__name__}: {error}"
        assert error is not None, wrong
        if expected.exact:
            assert type(error) is expected.error, wrong
        else:
            assert isinstance(error, expected.error), wrong
        assert error.partial is not None, "the error carries no partial result"
        if expected.partial is not None:
            assert Summary.of(error.partial, outcome.previews) == expected.partial
        if expected.retry_after is not None:
            assert isinstance(error, imagestream.ProviderError)
            assert error.retry_after == pytest.approx(expected.retry_after, abs=1.5)
        for text in (str(error), repr(error), error.message, str(error.hint)):
            for secret in adapter.never_quoted:
                assert secret not in text, "a credential is quoted in the error"
    counted = [(r.number, r.path, r.reply.status) for r in requests]
    if expected.at_least:
        assert len(requests) >= expected.requests, counted
    else:
        assert len(requests) == expected.requests, counted
    if adapter.key is not None:
        assert all(r.carried(adapter.key) for r in requests), "a request went without its key"
    # A retry sends the same request again.
    assert len({_canonical(r) for r in requests}) == 1
    for secret in adapter.never_quoted:
        assert secret not in caplog.text, "a credential is in the logs"
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
        async with FaultServer() as elsewhere, FaultServer() as server:
            adapter = adapter.bind(server.url)
            # Another port: another origin, which answers as the leg would.
            elsewhere.default = adapter.good_reply
            location = elsewhere.url + "/elsewhere"
            redirect = Reply(status=307, headers={"Location": location}, content_type=None)
            _install(server, adapter, [redirect, adapter.good_reply])
            stream = pipeline.stream(PROMPT, **adapter.params(server.url))
            with contextlib.suppress(ImagestreamError):
                async with asyncio.timeout(RUN_LIMIT), stream:
                    async for _chunk in stream:
                        pass
            redirected = next(r for r in server.requests if adapter.on_leg(r))
            assert redirected.reply is redirect
            for secret in adapter.never_quoted:
                assert not any(r.carried(secret) for r in elsewhere.requests), (
                    "a credential was sent to another origin"
                )
            if adapter.key is not None:
                assert redirected.carried(adapter.key)
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


async def test_fault_server_routes_paths_to_scripts_of_their_own() -> None:
    import aiohttp

    async with FaultServer(Reply(body=b"main")) as server, aiohttp.ClientSession() as session:
        server.route("/token", default=Reply(body=b"token"))
        server.route("/status", Reply(body=b"first"))
        server.route("/status?full=1", Reply(body=b"full"))
        for path, said in [
            ("/token", b"token"),
            ("/status", b"first"),
            ("/status?full=1", b"full"),
            ("/other", b"main"),
            ("/token", b"token"),
            ("/status", b"no reply scripted"),
        ]:
            async with session.get(server.url + path) as response:
                assert said in await response.read()
    assert [r.path for r in server.requests] == [
        "/token",
        "/status",
        "/status",
        "/other",
        "/token",
        "/status",
    ]


async def test_fault_server_holds_a_reply_until_enough_requests_arrived() -> None:
    import aiohttp

    held = Reply(body=b"held", after_requests=3)
    async with (
        FaultServer(held, Reply(body=b"a"), Reply(body=b"b")) as server,
        aiohttp.ClientSession() as session,
    ):

        async def get() -> bytes:
            async with session.get(server.url) as response:
                return await response.read()

        first = asyncio.ensure_future(get())
        assert await server.wait_requests(1)
        await asyncio.sleep(0.05)
        assert not first.done()
        assert await get() == b"a"
        assert not first.done()
        assert await get() == b"b"
        async with asyncio.timeout(2):
            assert await first == b"held"


async def test_fault_server_plays_websockets_and_their_faults() -> None:
    import aiohttp

    good = WebSocketReply(messages=("one", b"\x00two", "three"))
    cases: list[tuple[WebSocketReply, list[Any], str]] = [
        (good, ["one", b"\x00two", "three"], "open"),
        (
            good.but(close_after=2, close_code=1011, close_reason="bye"),
            ["one", b"\x00two"],
            "close",
        ),
        (good.but(reset_after=1), ["one"], "broken"),
        (good.but(garbage_after=1), ["one"], "error"),
        (good.but(oversized_after=2), ["one", b"\x00two"], "error"),
        (good.but(stall=math.inf, stall_after=1), ["one"], "silent"),
    ]
    async with FaultServer(*(reply for reply, _, _ in cases)) as server:
        async with aiohttp.ClientSession() as session:
            for _reply, expected, ending in cases:
                async with session.ws_connect(server.url + "/ws", max_msg_size=2**20) as ws:
                    await ws.send_str("hello")
                    got: list[Any] = []
                    while len(got) < len(expected):
                        message = await ws.receive(timeout=2)
                        got.append(message.data)
                    assert got == expected
                    if ending in ("open", "silent"):
                        with pytest.raises(TimeoutError):
                            await ws.receive(timeout=0.2)
                        continue
                    last = await ws.receive(timeout=2)
                    if ending == "close":
                        assert last.type is aiohttp.WSMsgType.CLOSE
                        assert (last.data, last.extra) == (1011, "bye")
                    elif ending == "error":
                        assert last.type is aiohttp.WSMsgType.ERROR
                    else:
                        assert last.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
        assert await server.wait_idle(2)
    assert server.requests[0].messages == server.requests[5].messages == ["hello"]
    assert server.requests[0].completed and not server.requests[0].client_closed
    assert server.requests[5].client_closed and not server.requests[5].completed
    assert all(r.reply.status == 101 for r in server.requests)
