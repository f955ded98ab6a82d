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
KEYS = (OPENAI_KEY, NOVELAI_KEY, GEMINI_KEY)
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
        assert isinstance(chunk, ImagePreview | ImageFinal | TextDelta | Usage), chunk
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
