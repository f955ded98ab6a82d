"""The pure parts: event state machines, error mapping, fast codecs, pricing helpers."""

from __future__ import annotations

import pickle
import subprocess
import sys
from typing import Any

import pytest
from _openai_server import b64_image, make_image
from hypothesis import given, settings
from hypothesis import strategies as st

from imagestream import ImageData, ImageFinal, ImagePreview, Secret, Usage
from imagestream.errors import (
    ContentPolicyError,
    ImageValidationError,
    InvalidRequestError,
    NoImageError,
    ProviderError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    StreamInterruptedError,
)
from imagestream.provider import MASK, redact
from imagestream_openai import _json
from imagestream_openai._errors import KEY_PATTERNS, error_from_event, http_error_parser
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
    # The failed image call is the reason there is no image.
    with pytest.raises(NoImageError, match="image_generation_call failed") as info:
        machine.finish()
    assert info.value.text == "whole"


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
        redact("token plain-gateway-token-without-prefix refused", (key,), patterns=KEY_PATTERNS)
        == f"token {MASK} refused"
    )
    # OpenAI's own 401 quotes a partly masked key: the kit's one mask replaces it whole.
    quoted = "Incorrect API key provided: sk-proj-abc*********xyz1."
    assert redact(quoted, patterns=KEY_PATTERNS) == "Incorrect API key provided: [redacted]."
    assert redact("nothing secret here", (key,), patterns=KEY_PATTERNS) == "nothing secret here"
    error = error_from_event({"type": "error", "message": "bad key sk-live-0123456789"})
    assert str(error).endswith("bad key [redacted]")


def test_usage_without_details() -> None:
    usage = images_usage({"input_tokens": 3, "output_tokens": 5, "total_tokens": 8})
    assert usage == Usage(
        input_tokens=3, output_tokens=5, total_tokens=8, output_image_tokens=5, raw=usage.raw
    )
    assert images_usage(None) is None


def test_event_images_are_the_core_image_data() -> None:
    b64 = b64_image("jpeg", 4)
    (final,) = ImagesEvents(1).handle(
        {"type": "image_generation.completed", "b64_json": b64, "output_format": "jpeg"}
    )
    fast = final.image
    plain = ImageData.from_base64(b64, "image/jpeg")
    assert fast.nbytes == len(make_image("jpeg", 4)) and fast.arrived_as_base64
    assert fast == plain and hash(fast) == hash(plain)
    assert fast.head(3) == b"\xff\xd8\xff" and fast.mime_type == "image/jpeg"
    assert fast.data == plain.data == make_image("jpeg", 4)
    assert repr(fast).startswith("ImageData(image/jpeg")
    again = pickle.loads(pickle.dumps(fast))
    assert again.data == fast.data
    for bad in ("not base64!", b64 + "A", b64[:8] + "*" + b64[9:]):
        (preview,) = ImagesEvents(1).handle(
            {"type": "image_generation.partial_image", "b64_json": bad}
        )
        with pytest.raises(ImageValidationError):
            _ = preview.image.data


# Run in a fresh interpreter where orjson and pybase64 cannot be imported: the
# plugin and the core must then fall back to the standard library, as strictly.
_WITHOUT_FAST_EXTRA = """
import base64, sys
sys.modules["orjson"] = None
sys.modules["pybase64"] = None
from imagestream import ImageData
from imagestream.errors import ImageValidationError
from imagestream.provider import encode_base64
from imagestream.testing import make_png
from imagestream_openai import _json
from imagestream_openai._events import ImagesEvents

assert not _json.FAST_JSON
png = make_png(5, 3)
b64 = base64.b64encode(png).decode()
(final,) = ImagesEvents(1).handle(_json.loads_event(
    _json.dumps({"type": "image_generation.completed", "b64_json": b64}).decode()
))
assert final.image.data == png
for bad in ("not base64!", b64 + "A", "QU JD", "QU=D", "QUJD===="):
    try:
        ImageData.from_base64(bad).data
    except ImageValidationError:
        pass
    else:
        raise AssertionError(bad)
assert encode_base64(b"\\x00\\x01\\x02") == base64.b64encode(b"\\x00\\x01\\x02").decode()
assert _json.loads(_json.dumps({"a": "\u00e9", "b": [1, 2]})) == {"a": "\u00e9", "b": [1, 2]}
assert _json.dumps({"a": 1}) == b'{"a":1}'
print("ok")
"""


def test_fallbacks_without_the_fast_extra() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_FAST_EXTRA],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


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


def test_loads_event_parses_the_text_without_its_images(monkeypatch: pytest.MonkeyPatch) -> None:
    # The images are lifted out before the JSON parser runs: it never sees them.
    import json

    parsed_sizes: list[int] = []
    parse = _json.loads

    def recording(text: str) -> Any:
        parsed_sizes.append(len(text))
        return parse(text)

    monkeypatch.setattr(_json, "loads", recording)
    document = {"type": "image_generation.completed", "b64_json": _BIG, "size": "1024x1024"}
    assert _json.loads_event(json.dumps(document, separators=(",", ":"))) == document
    assert parsed_sizes and max(parsed_sizes) < 200


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
