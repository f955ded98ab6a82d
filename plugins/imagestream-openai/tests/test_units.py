"""The pure parts: event state machines, error mapping, fast codecs, pricing helpers."""

from __future__ import annotations

import base64
import pickle
from typing import Any

import pytest
from _openai_server import b64_image, make_image
from hypothesis import given, settings
from hypothesis import strategies as st

from imagestream import ImageData, ImageFinal, ImagePreview, Secret, Usage
from imagestream import _base64 as core_base64
from imagestream.errors import (
    ContentPolicyError,
    ImageValidationError,
    InvalidRequestError,
    ProviderError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    StreamInterruptedError,
)
from imagestream_openai import _base64, _json
from imagestream_openai._errors import error_from_event, http_error_parser, redact
from imagestream_openai._events import ImagesEvents, ResponsesEvents, images_usage
from imagestream_openai._pricing import dalle_image_price, text_model_price


def test_images_events_ignore_what_they_do_not_know() -> None:
    machine = ImagesEvents(1)
    assert machine.handle({"type": "image_generation.partial_image"}) == []  # no payload
    assert machine.handle({"type": "something.new", "b64_json": "AAAA"}) == []
    assert machine.handle({}, "keepalive") == []
    preview = machine.handle({"type": "image_edit.partial_image", "b64_json": b64_image("png", 1)})
    assert (
        isinstance(preview[0], ImagePreview) and preview[0].index == 0
    )  # index defaults to arrival order
    with pytest.raises(StreamInterruptedError):
        machine.finish()
    (final,) = machine.handle(
        {"type": "image_edit.completed", "b64_json": b64_image("png", 2), "size": "auto"}
    )
    assert isinstance(final, ImageFinal) and (final.width, final.height) == (None, None)
    machine.finish()


def test_responses_events_ignore_foreign_items_and_empty_text() -> None:
    machine = ResponsesEvents("gpt-image-1", "gpt-5")
    assert (
        machine.handle(
            {"type": "response.output_item.done", "item": {"type": "reasoning", "id": "rs_1"}}
        )
        == []
    )
    assert (
        machine.handle(
            {
                "type": "response.output_item.done",
                "item": {
                    "type": "image_generation_call",
                    "id": "ig_1",
                    "status": "failed",
                    "result": None,
                },
            }
        )
        == []
    )
    assert machine.handle({"type": "response.output_text.delta", "delta": ""}) == []
    (text,) = machine.handle(
        {"type": "response.output_text.done", "item_id": "m", "content_index": 0, "text": "whole"}
    )
    assert text.text == "whole"
    assert machine.handle({"type": "response.completed", "response": {"status": "completed"}}) == []
    machine.finish()


def test_error_events_and_bodies_map_to_types() -> None:
    key = Secret("sk-unit-test-key-0001")
    cases: list[tuple[dict[str, Any], type[ProviderError]]] = [
        (
            {"type": "error", "code": "image_content_policy_violation", "message": "no"},
            ContentPolicyError,
        ),
        ({"type": "error", "code": "invalid_prompt", "message": "bad"}, InvalidRequestError),
        (
            {"type": "error", "error": {"type": "tokens", "code": "rate_limit_exceeded"}},
            RateLimitError,
        ),
        ({"type": "response.failed", "response": {"error": {"code": "server_error"}}}, ServerError),
        ({"type": "response.failed", "response": {}}, ProviderError),
        ({"error": "just a string"}, ProviderError),
    ]
    for payload, cls in cases:
        assert type(error_from_event(payload, key=key)) is cls
    flat = error_from_event(
        {"type": "error", "code": "server_error", "message": "x", "param": "size"}
    )
    assert flat.error_type is None and flat.code == "server_error" and "(param: size)" in str(flat)
    parse = http_error_parser(key)
    error = parse(
        429,
        b'{"error":{"message":"quota","type":"insufficient_quota","code":"insufficient_quota"}}',
        {"x-request-id": "req_1", "Retry-After": "2"},
    )
    assert isinstance(error, QuotaExceededError)
    assert (error.status, error.request_id, error.retry_after) == (429, "req_1", 2.0)
    assert isinstance(parse(500, b"", {}), ServerError)
    assert "HTTP 418" in str(parse(418, b"", {}))


def test_redact() -> None:
    key = Secret("plain-gateway-token-without-prefix")
    assert (
        redact("token plain-gateway-token-without-prefix refused", key)
        == "token [redacted] refused"
    )
    assert redact("Incorrect API key provided: sk-proj-abc*********xyz1.") == (
        "Incorrect API key provided: sk-[redacted]."
    )
    assert redact("nothing secret here") == "nothing secret here"


def test_usage_without_details() -> None:
    usage = images_usage({"input_tokens": 3, "output_tokens": 5, "total_tokens": 8})
    assert usage == Usage(
        input_tokens=3, output_tokens=5, total_tokens=8, output_image_tokens=5, raw=usage.raw
    )
    assert images_usage(None) is None


def test_fast_image_data_matches_the_core_class() -> None:
    b64 = b64_image("jpeg", 4)
    fast = _base64.image_from_base64(b64, "image/jpeg")
    plain = ImageData.from_base64(b64, "image/jpeg")
    assert fast.nbytes == len(make_image("jpeg", 4)) and fast.arrived_as_base64
    assert fast == plain and hash(fast) == hash(plain)
    assert fast.head(3) == b"\xff\xd8\xff" and fast.mime_type == "image/jpeg"
    assert fast.data == plain.data == make_image("jpeg", 4)
    assert repr(fast).startswith("ImageData(image/jpeg")
    again = pickle.loads(pickle.dumps(fast))
    assert again.data == fast.data
    for bad in ("not base64!", b64[:-1], b64 + "\n"):
        with pytest.raises(ImageValidationError):
            _ = _base64.image_from_base64(bad, None).data
        with pytest.raises(ImageValidationError):
            _ = ImageData.from_base64(bad).data


def test_fallbacks_without_the_fast_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core_base64, "_pybase64", None)
    image = _base64.image_from_base64(b64_image("png", 1), "image/png")
    assert image.data == make_image("png", 1)
    for bad in ("not base64!", b64_image("png", 1)[:-1], "QUJD\n", "QU=D", "QUJD===="):
        with pytest.raises(ImageValidationError):
            _ = _base64.image_from_base64(bad, None).data
    assert _base64.b64encode(b"\x00\x01\x02") == base64.b64encode(b"\x00\x01\x02").decode()
    assert _json._json_loads(_json._json_dumps({"a": "é", "b": [1, 2]})) == {"a": "é", "b": [1, 2]}
    assert _json._json_dumps({"a": 1}) == b'{"a":1}'


def _outcome(decode: Any, text: str) -> bytes | None:
    try:
        result: bytes = decode(text)
    except ValueError:  # binascii.Error is a ValueError
        return None
    return result


_ALPHABET = st.sampled_from([*"ABab09+/=", " ", "\n", "!", "-", "_", "é"])


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.lists(_ALPHABET, max_size=13).map("".join),
        st.binary(max_size=40).map(lambda raw: base64.b64encode(raw).decode()),
    )
)
def test_standard_library_decoding_is_as_strict_as_pybase64(text: str) -> None:
    pybase64 = pytest.importorskip("pybase64")
    saved = core_base64._pybase64
    core_base64._pybase64 = None
    try:
        ours = _outcome(_base64.decode_base64, text)
    finally:
        core_base64._pybase64 = saved
    assert ours == _outcome(lambda value: pybase64.b64decode(value, validate=True), text)
    if ours is not None:
        assert ours == base64.b64decode(text)


def test_price_helpers() -> None:
    assert dalle_image_price("dall-e-3", None, None) == 0.04
    assert dalle_image_price("dall-e-3", "hd", "1024x1792") == 0.12
    assert dalle_image_price("dall-e-2", "standard", "256x256") == 0.016
    assert dalle_image_price("gpt-image-1", None, None) is None
    assert text_model_price("gpt-5-2025-08-07") == (1.25, 10.00)
    assert text_model_price("gpt-4.1-mini-2025-04-14") == (0.40, 1.60)
    assert text_model_price("someone-elses-model") is None


_BIG = "QUJD" * 20_000  # 80 KB of base64: long enough to be lifted out


def _image_value() -> Any:
    return st.sampled_from(
        [
            _BIG,
            _BIG[:-4] + "QQ==",
            "",
            "short",
            _BIG[:5000] + "\\/" + _BIG[:5000],
            "\x00imagestream-image-0",
            "\x00imagestream-image-9",
            'quote"inside' + _BIG,
        ]
    )


_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20), _image_value()),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.sampled_from(
                [
                    "b64_json",
                    "partial_image_b64",
                    "result",
                    "type",
                    "item",
                    "output",
                    "revised_prompt",
                    'odd"key',
                ]
            ),
            children,
            max_size=5,
        ),
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(_JSON, st.booleans())
def test_loads_event_is_exactly_a_json_parse(document: Any, compact: bool) -> None:
    import json

    text = json.dumps(
        {"pad": _BIG if compact else "", "doc": document},
        separators=(",", ":") if compact else None,
    )
    assert _json.loads_event(text) == _json.loads(text)


def test_loads_event_lifts_every_image_out() -> None:
    import json

    document = {
        "type": "response.completed",
        "response": {
            "output": [
                {"type": "image_generation_call", "result": _BIG},
                {"type": "message", "content": [{"text": '"result":"' + _BIG[:10]}]},
                {"type": "image_generation_call", "result": _BIG[::-1]},
            ]
        },
        "b64_json": _BIG[:-4] + "QQ==",
    }
    text = json.dumps(document, separators=(",", ":"))
    parsed = _json.loads_event(text)
    assert parsed == document
    assert parsed["response"]["output"][2]["result"] == _BIG[::-1]
