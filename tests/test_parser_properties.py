"""Every provider's event parser, fed anything: chunks come out, or a typed error, never another exception.

A server, a proxy or a broken connection can put any value where an event
belongs. The parsers that turn one decoded event (an SSE event's JSON, a
msgpack frame) into chunks are fed arbitrary JSON values and msgpack
objects, built from each provider's own field names and event types so
that the deep branches are reached, and the decoders in front of them are
fed garbage bytes cut anywhere. Whatever comes in, the outcome is chunks
(whose images, asked for their bytes, give them or raise a typed error) or
an :class:`~imagestream.ImagestreamError`.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import itertools
import json
import math
import struct
from collections.abc import Callable, Iterable
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagestream import (
    ImageFinal,
    ImagePreview,
    ImageRequest,
    ImagestreamError,
    Progress,
    Secret,
    TextDelta,
    Usage,
)
from imagestream.testing import make_png

PROPERTIES = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

PNG = make_png(4, 3)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 12

IMAGE_STRINGS = [
    base64.b64encode(PNG).decode(),
    base64.b64encode(JPEG).decode(),
    base64.urlsafe_b64encode(PNG).decode().rstrip("="),
    "iVBORw0KGgo=",
    "not base64 at all!",
    "",
    "====",
    "a",
    "data:image/png;base64," + base64.b64encode(PNG).decode(),
]
"""Image payloads as text: good, unpadded, url-safe, cut, garbage, empty."""

OPENAI_KEY = "sk-proj-PropertyKey0123456789"
NOVELAI_KEY = "pst-PropertyToken0123456789abcdef"
GEMINI_KEY = "AIzaPropertyKey0123456789"
ANIMUS_KEY = "eyJhbGciOiJIUzI1NiJ9.animus-property-token-0123456789"
A1111_LOGIN = "matrix:a1111-property-password-0123"
KEYS = (OPENAI_KEY, NOVELAI_KEY, GEMINI_KEY, ANIMUS_KEY, A1111_LOGIN)
"""Credentials the parsers are given, and that the generated events quote: no error may."""

QUOTING = [f"Incorrect API key provided: {key}" for key in KEYS] + [f"Bearer {k}" for k in KEYS]
"""Strings that quote the credentials, as a careless server's error does."""

NUMBERISH = ["0", "1", "-1", "3", "²", "--5", "1e309", "nan", "inf", " 7 ", "0x10", "٣", ""]
"""Strings a lenient parser may read as numbers (``str.isdigit`` accepts ``"²"``, ``int`` does not)."""

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(NUMBERISH)
    | st.sampled_from(IMAGE_STRINGS)
    | st.sampled_from(QUOTING)
)

MSGPACK_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(NUMBERISH)
    | st.sampled_from(IMAGE_STRINGS)
    | st.sampled_from(QUOTING)
)


def json_values(keys: Iterable[str], words: Iterable[str]) -> st.SearchStrategy[Any]:
    """Arbitrary JSON values whose object keys and strings are often the provider's own."""
    key = st.sampled_from(sorted(keys)) | st.text(max_size=6)
    leaf = SCALARS | st.sampled_from(sorted(words))
    return st.recursive(
        leaf,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(key, inner, max_size=7),
        max_leaves=20,
    )


def msgpack_values(keys: Iterable[str], words: Iterable[str]) -> st.SearchStrategy[Any]:
    """What ``msgpack.unpackb(raw=False)`` can return: JSON's values plus bytes, bytes keys, ext types."""
    key = st.sampled_from(sorted(keys)) | st.text(max_size=6) | st.binary(max_size=6)
    leaf = (
        MSGPACK_SCALARS
        | st.sampled_from(sorted(words))
        | st.binary(max_size=24)
        | st.sampled_from([PNG, JPEG, b"", b"\x89PNG\r\n"])
        | st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=8))
    )
    return st.recursive(
        leaf,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(key, inner, max_size=7),
        max_leaves=20,
    )


def chunks_are_usable(chunks: Iterable[Any]) -> None:
    """Each chunk is one of the protocol's, and an image's bytes come out or raise a typed error."""
    for chunk in chunks:
        assert isinstance(chunk, ImagePreview | ImageFinal | TextDelta | Usage | Progress), chunk
        if isinstance(chunk, ImagePreview | ImageFinal):
            with contextlib.suppress(ImagestreamError):
                chunk.image.data  # noqa: B018 - decoding is what is checked


def typed(call: Callable[[], Any], key: str) -> Any:
    """``call()``'s value, or ``None`` when it raised an :class:`ImagestreamError` (anything else fails).

    The error may not quote ``key``, the parser's own credential, though the
    event it came from did.
    """
    try:
        return call()
    except ImagestreamError as error:
        caught = error
    assert key not in str(caught) and key not in repr(caught.args), caught
    return None


# -- OpenAI ----------------------------------------------------------------------

OPENAI_TYPES = {
    "error",
    "image_generation.partial_image",
    "image_generation.completed",
    "image_edit.partial_image",
    "image_edit.completed",
    "response.created",
    "response.output_text.delta",
    "response.output_text.done",
    "response.image_generation_call.partial_image",
    "response.output_item.done",
    "response.completed",
    "response.failed",
    "response.incomplete",
    "image_generation_call",
    "message",
    "output_text",
}
OPENAI_KEYS = {
    "type",
    "b64_json",
    "partial_image_b64",
    "result",
    "output_format",
    "size",
    "quality",
    "background",
    "created_at",
    "partial_image_index",
    "revised_prompt",
    "usage",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "input_tokens_details",
    "output_tokens_details",
    "text_tokens",
    "image_tokens",
    "tool_usage",
    "image_gen",
    "error",
    "message",
    "code",
    "param",
    "item",
    "item_id",
    "id",
    "status",
    "response",
    "output",
    "delta",
    "text",
    "content_index",
    "model",
    "incomplete_details",
    "reason",
    "content",
}
OPENAI_WORDS = OPENAI_TYPES | {"png", "jpeg", "webp", "gif", "1024x1024", "16x", "x", "gpt-image-1"}


def _openai_machines() -> list[Any]:
    from imagestream_openai._events import ImagesEvents, ResponsesEvents

    return [
        ImagesEvents(1, key=Secret(OPENAI_KEY)),
        ImagesEvents(2, key=Secret(OPENAI_KEY)),
        ResponsesEvents("gpt-image-1", "gpt-5", key=Secret(OPENAI_KEY)),
    ]


@PROPERTIES
@given(
    events=st.lists(
        st.tuples(
            st.sampled_from(sorted(OPENAI_TYPES | {"message"})),
            json_values(OPENAI_KEYS, OPENAI_WORDS),
        ),
        max_size=4,
    )
)
def test_openai_events_give_chunks_or_typed_errors(events: list[tuple[str, Any]]) -> None:
    """``ImagesEvents`` / ``ResponsesEvents``: any parsed event data, in any order, then ``finish``."""
    for machine in _openai_machines():
        for name, payload in events:
            chunks = typed(lambda m=machine, p=payload, n=name: m.handle(p, n), OPENAI_KEY)
            if chunks is None:
                break
            chunks_are_usable(chunks)
        else:
            typed(machine.finish, OPENAI_KEY)


@PROPERTIES
@given(value=json_values(OPENAI_KEYS, OPENAI_WORDS))
def test_openai_event_json_parses_as_the_standard_parser_does(value: Any) -> None:
    """``loads_event`` (images lifted out before parsing) returns what its parser returns.

    The reference is the plugin's own ``loads`` (orjson with the ``fast``
    extra, which reads integers beyond 64 bits as floats and refuses NaN).
    """
    from imagestream_openai._json import loads, loads_event

    # Long image fields take the fast path: make some.
    if isinstance(value, dict):
        value = {**value, "b64_json": "A" * 5000, "result": "B" * 4100 + "=="}
    for text in (json.dumps(value), json.dumps(value, separators=(",", ":"))):
        if len(text) < 16 * 1024:
            text = text + " " * (16 * 1024 - len(text))
        try:
            expected = loads(text)
        except ValueError:
            with pytest.raises(ValueError):  # noqa: PT011 - the parser's own error
                loads_event(text)
            continue
        got = loads_event(text)
        assert _same(got, expected)


@PROPERTIES
@given(text=st.text(max_size=64), image=st.sampled_from(["A" * 4096, "A" * 5000 + '\\"', ""]))
def test_openai_event_json_refuses_what_the_standard_parser_refuses(text: str, image: str) -> None:
    """Not JSON in, ``ValueError`` out (the stream turns it into a ``StreamDecodeError``)."""
    from imagestream_openai._json import loads, loads_event

    data = '{"b64_json":"' + image + '",' + text + " " * 16384
    try:
        expected: Any = loads(data)
    except ValueError:
        with pytest.raises(ValueError):  # noqa: PT011 - json's own error, whatever its text
            loads_event(data)
    else:
        assert _same(loads_event(data), expected)


def _same(a: Any, b: Any) -> bool:
    # NaN is not equal to itself; compare through JSON, which writes both alike.
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


# -- NovelAI ---------------------------------------------------------------------

NOVELAI_KEYS = {
    "event_type",
    "samp_ix",
    "step_ix",
    "gen_id",
    "sigma",
    "image",
    "steps",
    "message",
    "error",
    "detail",
    "statusCode",
    "status",
    "code",
}
NOVELAI_WORDS = {
    "intermediate",
    "final",
    "error",
    "INTERMEDIATE",
    "Final",
    "progress",
    "concurrent",
    "Anlas",
}


@functools.cache
def _novelai_settings() -> tuple[Any, ...]:
    from imagestream_novelai import NovelAIProvider

    return tuple(
        NovelAIProvider()
        .validate(ImageRequest("1girl", api_key="pst-properties", steps=6, seed=5, **fields))
        .settings
        for fields in ({}, {"n": 2}, {"partial_images": 2})
    )


def _translators() -> list[Any]:
    from imagestream_novelai._events import EventTranslator

    return [EventTranslator(settings, NOVELAI_KEY) for settings in _novelai_settings()]


def _translate_all(events: list[Any]) -> None:
    for translator in _translators():
        for event in events:
            chunk = typed(lambda t=translator, e=event: t.translate(e), NOVELAI_KEY)
            if chunk is not None:
                chunks_are_usable([chunk])
        if not translator.complete:
            assert isinstance(translator.interrupted("cut"), ImagestreamError)


@PROPERTIES
@given(events=st.lists(msgpack_values(NOVELAI_KEYS, NOVELAI_WORDS), max_size=4))
def test_novelai_msgpack_frames_give_chunks_or_typed_errors(events: list[Any]) -> None:
    """``EventTranslator.translate`` on any object a msgpack frame can decode to."""
    _translate_all(events)


@PROPERTIES
@given(
    events=st.lists(
        st.tuples(
            st.sampled_from(["message", "intermediate", "final", "error", ""]),
            json_values(NOVELAI_KEYS, NOVELAI_WORDS).map(json.dumps) | st.text(max_size=30),
        ),
        max_size=4,
    )
)
def test_novelai_sse_events_give_chunks_or_typed_errors(events: list[tuple[str, str]]) -> None:
    """``sse_payload`` then ``translate``, on any event name and data text."""
    from imagestream_novelai._events import sse_payload

    payloads = [
        typed(lambda n=name, d=data: sse_payload(n, d), NOVELAI_KEY) for name, data in events
    ]
    _translate_all([payload for payload in payloads if payload is not None])


@PROPERTIES
@given(
    frames=st.lists(msgpack_values(NOVELAI_KEYS, NOVELAI_WORDS), max_size=4),
    garbage=st.binary(max_size=40),
    cuts=st.lists(st.integers(min_value=0, max_value=4096), max_size=6),
)
def test_novelai_msgpack_stream_bytes_give_frames_or_typed_errors(
    frames: list[Any], garbage: bytes, cuts: list[int]
) -> None:
    """Length-prefixed frames with garbage after them, cut anywhere: frames, or a typed error."""
    from imagestream_msgpack import MsgpackDecoder

    body = b"".join(_frame(value) for value in frames) + garbage
    decoder = MsgpackDecoder(framing="length-prefixed")
    decoded: list[Any] = []
    for piece in _pieces(body, cuts):
        got = typed(lambda p=piece: decoder.feed(p), NOVELAI_KEY)
        if got is None:
            return
        decoded += got
    typed(decoder.close, NOVELAI_KEY)
    _translate_all(decoded)


def _frame(value: Any) -> bytes:
    packed = msgpack.packb(value, use_bin_type=True)
    return len(packed).to_bytes(4, "big") + packed


def _pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


# -- Google ----------------------------------------------------------------------

GOOGLE_KEYS = {
    "candidates",
    "content",
    "parts",
    "role",
    "text",
    "thought",
    "inlineData",
    "mimeType",
    "data",
    "finishReason",
    "finishMessage",
    "continuationToken",
    "index",
    "usageMetadata",
    "promptTokenCount",
    "candidatesTokenCount",
    "totalTokenCount",
    "thoughtsTokenCount",
    "promptTokensDetails",
    "candidatesTokensDetails",
    "modality",
    "tokenCount",
    "promptFeedback",
    "blockReason",
    "blockReasonMessage",
    "error",
    "code",
    "message",
    "status",
    "details",
    "@type",
    "retryDelay",
    "violations",
    "quotaId",
    "modelVersion",
    "responseId",
}
GOOGLE_WORDS = {
    "STOP",
    "SAFETY",
    "IMAGE_SAFETY",
    "NO_IMAGE",
    "CONTINUATION",
    "MAX_TOKENS",
    "OTHER",
    "IMAGE",
    "TEXT",
    "image/png",
    "image/jpeg",
    "image/svg",
    "RESOURCE_EXHAUSTED",
    "UNAUTHENTICATED",
    "type.googleapis.com/google.rpc.RetryInfo",
    "type.googleapis.com/google.rpc.QuotaFailure",
    "34.4s",
    "-1s",
    "1e400s",
    "GenerateRequestsPerDayPerProjectPerModel",
}


@PROPERTIES
@given(
    objects=st.lists(json_values(GOOGLE_KEYS, GOOGLE_WORDS), max_size=5),
    wants_image=st.booleans(),
)
def test_google_responses_give_chunks_or_typed_errors(
    objects: list[Any], wants_image: bool
) -> None:
    """``ResponseReader.read`` on any JSON value, in any order, then ``continuation`` and ``finish``."""
    from imagestream_google._events import ResponseReader

    reader = ResponseReader("gemini", wants_image=wants_image, secrets=[Secret(GEMINI_KEY)])
    for obj in objects:
        chunks = typed(lambda o=obj: reader.read(o), GEMINI_KEY)
        if chunks is None:
            return
        chunks_are_usable(chunks)
    typed(reader.continuation, GEMINI_KEY)
    finished = typed(reader.finish, GEMINI_KEY)
    if finished is not None:
        chunks_are_usable(finished)


@PROPERTIES
@given(error=json_values(GOOGLE_KEYS, GOOGLE_WORDS), status=st.none() | st.integers(100, 599))
def test_google_error_objects_give_typed_errors(error: Any, status: int | None) -> None:
    """An ``error`` object of any shape is a :class:`ProviderError` with a finite ``retry_after``."""
    from imagestream_google._errors import error_from_object, error_parser

    if isinstance(error, dict):
        built = error_from_object(
            error, provider="gemini", status=status, secrets=[Secret(GEMINI_KEY)]
        )
        assert isinstance(built, ImagestreamError)
        assert GEMINI_KEY not in str(built)
        assert built.retry_after is None or math.isfinite(built.retry_after)
    body = json.dumps({"error": error}).encode()
    parsed = error_parser("gemini", [Secret(GEMINI_KEY)])(status or 500, body, {})
    assert GEMINI_KEY not in str(parsed)
    assert isinstance(parsed, ImagestreamError)


@PROPERTIES
@given(
    events=st.lists(json_values(GOOGLE_KEYS, GOOGLE_WORDS), max_size=4),
    garbage=st.binary(max_size=40)
    | st.sampled_from([b"{\n", b'{\n  "error": {\n', b"}\n", b"]\n"]),
    cuts=st.lists(st.integers(min_value=0, max_value=4096), max_size=6),
)
def test_google_stream_bytes_give_events_or_typed_errors(
    events: list[Any], garbage: bytes, cuts: list[int]
) -> None:
    """``ErrorLines`` over the ``sse`` decoder: events and error lines with garbage, cut anywhere."""
    from imagestream_google._framing import ErrorLines
    from imagestream_sse import SSEDecoder

    body = b"".join(b"data: " + json.dumps(event).encode() + b"\r\n\r\n" for event in events)
    body += garbage
    decoder = ErrorLines(SSEDecoder())
    for piece in _pieces(body, cuts):
        if typed(lambda p=piece: decoder.feed(p), GEMINI_KEY) is None:
            return
    typed(decoder.close, GEMINI_KEY)


# -- Animus ----------------------------------------------------------------------

ANIMUS_KEYS = {
    "choices",
    "delta",
    "message",
    "content",
    "reasoning",
    "reasoning_content",
    "image_prompt",
    "finish_reason",
    "usage",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "error",
    "status",
    "code",
    "status_code",
    "detail",
    "msg",
    "compliance_violations",
    "turns",
    "next",
    "generation_id",
    "progress",
    "result_urls",
    "output",
    "outputs",
    "results",
    "credits_deducted",
    "remaining_balance",
}
ANIMUS_WORDS = {
    "[DONE]",
    "stop",
    "assistant",
    "content policy",
    "completed",
    "failed",
    "processing",
    "queued",
    "https://cdn.example/result.png",
    "gen_1",
}


def _animus_choice() -> st.SearchStrategy[Any]:
    """A choice: ``delta`` and ``message`` with the fields read from them, of any value."""
    anything = json_values(ANIMUS_KEYS, ANIMUS_WORDS)
    part = st.fixed_dictionaries(
        {},
        optional={
            name: SCALARS | anything
            for name in ("content", "reasoning", "reasoning_content", "image_prompt", "turns")
        },
    )
    return st.fixed_dictionaries(
        {},
        optional={
            "delta": part,
            "message": part,
            "finish_reason": SCALARS,
            "image_prompt": SCALARS,
        },
    )


def _animus_events() -> st.SearchStrategy[str]:
    """A chat event's data: a chunk's JSON, any JSON, text, the end marker, a quoted key."""
    choices = st.lists(_animus_choice() | json_values(ANIMUS_KEYS, ANIMUS_WORDS), max_size=2)
    chunk = st.fixed_dictionaries(
        {"choices": choices | SCALARS},
        optional={
            "usage": json_values(ANIMUS_KEYS, ANIMUS_WORDS),
            "error": json_values(ANIMUS_KEYS, ANIMUS_WORDS),
            "image_prompt": SCALARS,
        },
    )
    return (
        (chunk | json_values(ANIMUS_KEYS, ANIMUS_WORDS)).map(json.dumps)
        | st.text(max_size=20)
        | st.sampled_from(["[DONE]", " [DONE] ", *QUOTING])
    )


def _read_chat(events: Iterable[str]) -> None:
    from imagestream_animus import ChatEventReader

    reader = ChatEventReader((ANIMUS_KEY,))
    for data in events:
        deltas = typed(lambda d=data: reader.feed(d), ANIMUS_KEY)
        if deltas is None:
            return
        chunks_are_usable(deltas)
        if reader.done:
            break
    reply = reader.reply()
    assert isinstance(reply.text, str) and isinstance(reply.thoughts, str)


@PROPERTIES
@given(events=st.lists(_animus_events(), max_size=5))
def test_animus_chat_events_give_deltas_or_typed_errors(events: list[str]) -> None:
    """``ChatEventReader.feed`` on any event data, then ``reply``."""
    _read_chat(events)


@PROPERTIES
@given(answer=_animus_choice() | json_values(ANIMUS_KEYS, ANIMUS_WORDS))
def test_animus_chat_answers_give_deltas_or_typed_errors(answer: Any) -> None:
    """A whole (non-streamed) chat answer of any shape: deltas and a reply, or a typed error."""
    from imagestream_animus import ChatEventReader

    if not isinstance(answer, dict) or "choices" not in answer:
        answer = {"choices": [answer]}
    reader = ChatEventReader((ANIMUS_KEY,))
    deltas = typed(lambda: reader.read(answer, streamed=False), ANIMUS_KEY)
    if deltas is not None:
        chunks_are_usable(deltas)
        reader.reply()


@PROPERTIES
@given(
    events=st.lists(_animus_events(), max_size=4),
    garbage=st.binary(max_size=40) | st.sampled_from([b"data: {", b"data: [DO", b": ping\n"]),
    cuts=st.lists(st.integers(min_value=0, max_value=2048), max_size=6),
)
def test_animus_chat_stream_bytes_give_deltas_or_typed_errors(
    events: list[str], garbage: bytes, cuts: list[int]
) -> None:
    """The ``sse`` decoder in front of the reader: events and garbage, cut anywhere."""
    from imagestream_sse import SSEDecoder

    body = b"".join(f"data: {data}\n\n".encode() for data in events if "\n" not in data)
    decoder = SSEDecoder()
    decoded: list[str] = []
    for piece in _pieces(body + garbage, cuts):
        got = typed(lambda p=piece: decoder.feed(p), ANIMUS_KEY)
        if got is None:
            return
        decoded += [str(event.data) for event in got]
    tail = typed(decoder.close, ANIMUS_KEY)
    decoded += [str(event.data) for event in tail or ()]
    _read_chat(decoded)


def _animus_status() -> st.SearchStrategy[Any]:
    """A status (or creation, or generate-image) answer: its fields with any values, or any JSON."""
    fields = ("status", "progress", "result_urls", "error", "generation_id", "output", "results")
    anything = json_values(ANIMUS_KEYS, ANIMUS_WORDS)
    status = st.fixed_dictionaries({}, optional={name: SCALARS | anything for name in fields})
    return status | anything


@PROPERTIES
@given(answer=_animus_status())
def test_animus_status_and_creation_answers_are_read_or_refused(answer: Any) -> None:
    """A status, a creation and a generate-image answer of any shape: read, or a typed error."""
    from imagestream_animus import read_status
    from imagestream_animus._errors import failed_generation
    from imagestream_animus._provider import _generation_ids, _output_urls, _usage

    read = typed(lambda: read_status(answer), ANIMUS_KEY)
    if read is not None:
        state, fraction, said, error, urls = read
        assert state in {"done", "failed", "running"}
        assert fraction is None or 0.0 <= fraction <= 1.0
        assert all(isinstance(url, str) and url.strip() for url in urls)
        Progress(fraction=fraction, message=said)
        failure = failed_generation(error or said, "gen_1", (ANIMUS_KEY,))
        assert ANIMUS_KEY not in str(failure)
    assert all(isinstance(item, str) for item in _generation_ids(answer))
    assert all(isinstance(url, str) for url in _output_urls(answer))
    _usage(answer)


@PROPERTIES
@given(error=json_values(ANIMUS_KEYS, ANIMUS_WORDS), status=st.integers(100, 599))
def test_animus_error_bodies_give_typed_errors(error: Any, status: int) -> None:
    """An error body of any shape (JSON or not) is a :class:`ProviderError` that quotes no key."""
    from imagestream_animus._errors import error_parser

    for body in (json.dumps(error).encode(), str(error).encode()):
        parsed = error_parser((ANIMUS_KEY,))(status, body, {})
        assert isinstance(parsed, ImagestreamError)
        assert ANIMUS_KEY not in str(parsed)


# -- ComfyUI ---------------------------------------------------------------------

COMFY_PASSWORD = "comfy-property-password-0123"
"""ComfyUI's parsers hold no credential (a proxy's, in the URL, is masked by the HTTP client):
the messages generated never quote this one, and so no error may."""

COMFY_KEYS = {
    "type",
    "data",
    "status",
    "exec_info",
    "queue_remaining",
    "sid",
    "prompt_id",
    "node",
    "display_node",
    "value",
    "max",
    "output",
    "images",
    "filename",
    "subfolder",
    "nodes",
    "node_id",
    "node_type",
    "exception_message",
    "exception_type",
    "node_errors",
    "errors",
    "message",
    "details",
    "extra_info",
    "input_name",
    "class_type",
}
COMFY_WORDS = {
    "status",
    "execution_start",
    "execution_cached",
    "executing",
    "progress",
    "executed",
    "execution_success",
    "execution_error",
    "execution_interrupted",
    "prompt-1",
    "output",
    "temp",
    "torch.OutOfMemoryError",
    "image/png",
    "image/jpeg",
    "ckpt_name",
    "value_not_in_list",
}


def _comfy_output() -> st.SearchStrategy[Any]:
    """A node's output: ``images`` of any shape, the usual one often."""
    image = st.fixed_dictionaries(
        {"filename": st.just("x.png") | SCALARS},
        optional={"subfolder": SCALARS, "type": st.sampled_from(["output", "temp"]) | SCALARS},
    )
    images = st.lists(image | SCALARS, max_size=3) | SCALARS
    return st.fixed_dictionaries({"images": images})


COMFY_TYPES = sorted(
    {
        "status",
        "execution_start",
        "execution_cached",
        "executing",
        "progress",
        "executed",
        "execution_success",
        "execution_error",
        "execution_interrupted",
    }
)


def _comfy_text() -> st.SearchStrategy[str]:
    """A text message: mostly ``{"type", "data"}`` of a known type with any data, about the run's prompt."""
    anything = json_values(COMFY_KEYS, COMFY_WORDS)
    queue = st.fixed_dictionaries(
        {"exec_info": st.fixed_dictionaries({"queue_remaining": SCALARS})}
    )
    prompt = st.sampled_from(["prompt-1", "prompt-1", "prompt-1", "someone-else"])
    data = st.fixed_dictionaries(
        {"prompt_id": prompt | SCALARS},
        optional={
            "node": SCALARS,
            "value": SCALARS,
            "max": SCALARS,
            "output": _comfy_output(),
            "status": queue | anything,
            "exception_message": SCALARS,
            "exception_type": SCALARS,
            "node_id": SCALARS,
            "node_type": SCALARS,
        },
    )
    message = st.fixed_dictionaries(
        {"type": st.sampled_from(COMFY_TYPES), "data": data}
    ) | st.fixed_dictionaries({"type": SCALARS, "data": anything})
    return st.one_of(message, message, message, anything).map(json.dumps) | st.text(max_size=20)


def _comfy_binary() -> st.SearchStrategy[bytes]:
    """A binary message: a preview (type 1, or 4 with a JSON header of any length), or bytes."""
    image = st.sampled_from([PNG, JPEG, b"", b"\x89PNG\r\n"]) | st.binary(max_size=16)
    legacy = st.builds(
        lambda kind, form, data: struct.pack(">II", kind, form) + data,
        st.sampled_from([0, 1, 2, 3, 4, 2**32 - 1]),
        st.integers(0, 2**32 - 1),
        image,
    )
    header = json_values(COMFY_KEYS, COMFY_WORDS).map(lambda v: json.dumps(v).encode())
    with_header = st.builds(
        lambda meta, data, slack: struct.pack(">II", 4, max(0, len(meta) + slack)) + meta + data,
        header | st.binary(max_size=12),
        image,
        st.integers(-3, 3),
    )
    return legacy | with_header | st.binary(max_size=24)


@PROPERTIES
@given(
    messages=st.lists(_comfy_text() | _comfy_binary(), max_size=6),
    keep=st.none() | st.integers(0, 4),
    steps=st.none() | st.integers(1, 8),
)
def test_comfyui_messages_give_chunks_or_typed_errors(
    messages: list[str | bytes], keep: int | None, steps: int | None
) -> None:
    """``RunTranslator.text`` / ``binary`` on any message, in any order: chunks and images to fetch."""
    from imagestream_comfyui._events import ImageRef, RunTranslator

    translator = RunTranslator("prompt-1", total_steps=steps, keep_previews=keep)
    for message in messages:
        if isinstance(message, str):
            items = typed(lambda m=message: translator.text(m), COMFY_PASSWORD)
        else:
            items = typed(lambda m=message: translator.binary(m), COMFY_PASSWORD)
        if items is None:
            assert translator.ended  # an error ends the run
            return
        chunks_are_usable([item for item in items if not isinstance(item, ImageRef)])
        for ref in (item for item in items if isinstance(item, ImageRef)):
            assert all(isinstance(part, str) for part in (ref.filename, ref.subfolder, ref.type))


@PROPERTIES
@given(
    kind=st.sampled_from(COMFY_TYPES),
    data=st.fixed_dictionaries(
        {"prompt_id": st.just("prompt-1")},
        optional={
            "output": _comfy_output(),
            "node": SCALARS,
            "value": SCALARS,
            "max": SCALARS,
            "status": SCALARS | json_values(COMFY_KEYS, COMFY_WORDS),
            "exception_message": SCALARS,
            "exception_type": SCALARS,
            "node_id": SCALARS,
            "node_type": SCALARS,
        },
    ),
)
def test_comfyui_messages_about_the_run_give_chunks_or_typed_errors(
    kind: str, data: dict[str, Any]
) -> None:
    """Each message type about the run's own prompt, with any values in its fields."""
    from imagestream_comfyui._events import ImageRef, RunTranslator

    for started in (False, True):
        translator = RunTranslator("prompt-1", total_steps=3, keep_previews=2)
        if started:
            translator.text(
                json.dumps({"type": "execution_start", "data": {"prompt_id": "prompt-1"}})
            )
        message = json.dumps({"type": kind, "data": data})
        items = typed(lambda t=translator, m=message: t.text(m), COMFY_PASSWORD)
        if items is not None:
            chunks_are_usable([item for item in items if not isinstance(item, ImageRef)])


@PROPERTIES
@given(message=_comfy_binary())
def test_comfyui_binary_frames_give_a_preview_or_none(message: bytes) -> None:
    """``parse_binary``: a preview with bytes, or ``None``, whatever the frame holds."""
    from imagestream_comfyui._events import parse_binary

    preview = parse_binary(message)
    if preview is not None:
        assert isinstance(preview.data, bytes) and preview.mime_type.startswith("image/")
        assert preview.prompt_id is None or isinstance(preview.prompt_id, str)


@PROPERTIES
@given(body=json_values(COMFY_KEYS, COMFY_WORDS), status=st.integers(400, 599))
def test_comfyui_error_bodies_give_typed_errors(body: Any, status: int) -> None:
    """``parse_error`` on any body (a refused workflow's ``node_errors`` of any shape)."""
    from imagestream_comfyui._errors import parse_error

    entry = {"errors": [body, {"type": "value_not_in_list", "extra_info": body}], "class_type": 5}
    shapes = (
        body,
        {"node_errors": body},
        {"node_errors": {"1": {"errors": body}}},
        {"node_errors": {"7": entry}},
    )
    for raw in (json.dumps(shape).encode() for shape in shapes):
        assert isinstance(
            typed(lambda r=raw: parse_error(status, r, {}), COMFY_PASSWORD), ImagestreamError
        )


# -- AUTOMATIC1111 ---------------------------------------------------------------

A1111_KEYS = {
    "progress",
    "eta_relative",
    "state",
    "job",
    "job_count",
    "job_no",
    "job_timestamp",
    "sampling_step",
    "sampling_steps",
    "current_image",
    "textinfo",
    "images",
    "info",
    "parameters",
    "seed",
    "all_seeds",
    "index_of_first_image",
    "infotexts",
    "error",
    "detail",
    "body",
    "errors",
    "loc",
    "msg",
}
A1111_WORDS = {
    "scripts_txt2img",
    "20300101120001",
    "OutOfMemoryError",
    "HTTPException",
    "Not Found",
}


def _a1111_answer() -> st.SearchStrategy[Any]:
    """A progress answer: the usual fields with any values, or any JSON."""
    state = st.fixed_dictionaries(
        {},
        optional={
            name: SCALARS
            for name in ("job_count", "job_no", "job_timestamp", "sampling_step", "sampling_steps")
        },
    )
    answer = st.fixed_dictionaries(
        {"state": state | json_values(A1111_KEYS, A1111_WORDS)},
        optional={"progress": SCALARS, "current_image": SCALARS, "textinfo": SCALARS},
    )
    return answer | json_values(A1111_KEYS, A1111_WORDS)


@PROPERTIES
@given(
    answers=st.lists(_a1111_answer(), max_size=5),
    foreign=st.none() | st.sampled_from(["20300101120001", "0"]),
    previews=st.booleans(),
)
def test_a1111_progress_answers_give_chunks(
    answers: list[Any], foreign: str | None, previews: bool
) -> None:
    """``ProgressTracker.feed`` and ``job_of`` on any answer: chunks, never an error."""
    from imagestream_a1111._progress import ProgressTracker, job_of

    tracker = ProgressTracker(foreign_job=foreign, batch_size=2, previews=previews, steps=4)
    for answer in answers:
        busy, stamp = job_of(answer)
        assert isinstance(busy, bool) and (stamp is None or isinstance(stamp, str))
        chunks_are_usable(tracker.feed(answer))


@functools.cache
def _a1111_settings() -> tuple[Any, ...]:
    from imagestream_a1111 import A1111Provider

    return tuple(
        A1111Provider().validate(ImageRequest("a fox", base_url="http://127.0.0.1:9", **f)).settings
        for f in ({}, {"n": 2})
    )


def _a1111_info() -> st.SearchStrategy[Any]:
    """The answer's ``info``: a JSON text (or an object) with the fields read, of any value."""
    fields = ("seed", "all_seeds", "index_of_first_image", "infotexts")
    anything = json_values(A1111_KEYS, A1111_WORDS)
    info = st.fixed_dictionaries(
        {}, optional={name: SCALARS | st.lists(SCALARS, max_size=3) for name in fields}
    )
    return (info | anything).map(json.dumps) | info | anything


@PROPERTIES
@given(
    answer=st.fixed_dictionaries(
        {"images": st.lists(SCALARS, max_size=3) | SCALARS}, optional={"info": _a1111_info()}
    )
    | json_values(A1111_KEYS, A1111_WORDS)
)
def test_a1111_generation_answers_give_finals_or_typed_errors(answer: Any) -> None:
    """The answer's images (each with its seed, the grid left out): finals, or a typed error."""
    from imagestream_a1111 import A1111Provider

    provider = A1111Provider()
    for read in _a1111_settings():
        finals = typed(lambda s=read: provider._finals(answer, s), A1111_LOGIN)
        if finals is not None:
            chunks_are_usable(finals)


@PROPERTIES
@given(body=json_values(A1111_KEYS, A1111_WORDS), status=st.integers(400, 599))
def test_a1111_error_bodies_give_typed_errors(body: Any, status: int) -> None:
    """``error_parser`` on any body: a typed error that does not quote the login."""
    from imagestream_a1111._errors import error_parser

    parse = error_parser((A1111_LOGIN, A1111_LOGIN.partition(":")[2]))
    for raw in (json.dumps(body).encode(), str(body).encode()):
        error = typed(lambda r=raw: parse(status, r, {}), A1111_LOGIN)
        assert isinstance(error, ImagestreamError)
        assert A1111_LOGIN.partition(":")[2] not in str(error)
