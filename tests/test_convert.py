"""Tests for ``imagestream._convert``: chunks to and from plain dicts (JSON and msgpack)."""

from __future__ import annotations

import base64
import json
from typing import Any

import cattrs
import msgpack  # type: ignore[import-untyped]
import pytest

from imagestream._chunks import Chunk, ImageFinal, ImagePreview, TextDelta, Usage
from imagestream._convert import chunk_from_dict, chunk_to_dict, converter
from imagestream._image import ImageData
from imagestream.errors import ValidationError
from imagestream.testing import make_png

PNG = make_png(4, 2)
PNG_B64 = base64.b64encode(PNG).decode()


def _chunks() -> list[Chunk]:
    """One fully populated and one minimal chunk of every type, payload in both forms."""
    return [
        TextDelta("hello "),
        TextDelta("wörld ✓", synthetic=True),
        ImagePreview(ImageData.from_bytes(PNG), index=0),
        ImagePreview(
            ImageData.from_base64(PNG_B64, "image/png"),
            index=3,
            sample=1,
            step=7,
            total_steps=28,
            sigma=1.25,
            mime_type="image/png",
            width=4,
            height=2,
            synthetic=True,
            extra={"quality": "low", "nested": {"a": [1, 2]}},
        ),
        ImageFinal(ImageData.from_base64(PNG_B64)),
        ImageFinal(
            ImageData.from_bytes(PNG, "image/png"),
            sample=2,
            mime_type="image/png",
            width=4,
            height=2,
            revised_prompt="a red square",
            seed=123456789,
            synthetic=True,
            extra={"background": "opaque"},
        ),
        Usage(),
        Usage(
            input_tokens=10,
            output_tokens=20,
            total_tokens=30,
            input_text_tokens=9,
            input_image_tokens=1,
            output_text_tokens=4,
            output_image_tokens=16,
            cost_usd=0.042,
            synthetic=True,
            raw={"input_tokens": 10, "details": {"cached": 0}},
        ),
    ]


CHUNKS = _chunks()
IDS = [f"{type(c).__name__}-{i}" for i, c in enumerate(CHUNKS)]
TAGS = {
    TextDelta: "text_delta",
    ImagePreview: "image_preview",
    ImageFinal: "image_final",
    Usage: "usage",
}


@pytest.mark.parametrize("chunk", CHUNKS, ids=IDS)
@pytest.mark.parametrize("flavor", ["json", "msgpack"])
def test_round_trip_in_memory(chunk: Chunk, flavor: Any) -> None:
    data = chunk_to_dict(chunk, flavor=flavor)
    assert data["type"] == TAGS[type(chunk)] == type(chunk).kind
    back = chunk_from_dict(data, flavor=flavor)
    assert type(back) is type(chunk)
    assert back == chunk


@pytest.mark.parametrize("chunk", CHUNKS, ids=IDS)
def test_round_trip_through_json_text(chunk: Chunk) -> None:
    text = json.dumps(chunk_to_dict(chunk, flavor="json"))
    back = chunk_from_dict(json.loads(text), flavor="json")
    assert back == chunk
    if isinstance(back, ImagePreview | ImageFinal):
        assert back.image.data == PNG


@pytest.mark.parametrize("chunk", CHUNKS, ids=IDS)
def test_round_trip_through_msgpack(chunk: Chunk) -> None:
    packed = msgpack.packb(chunk_to_dict(chunk, flavor="msgpack"), use_bin_type=True)
    back = chunk_from_dict(msgpack.unpackb(packed, raw=False), flavor="msgpack")
    assert back == chunk
    if isinstance(back, ImagePreview | ImageFinal):
        assert back.image.data == PNG


def test_json_flavor_writes_base64_text() -> None:
    data = chunk_to_dict(ImageFinal(ImageData.from_bytes(PNG)), flavor="json")
    assert data["image"] == {"mime_type": "image/png", "b64": PNG_B64}


def test_msgpack_flavor_writes_raw_bytes() -> None:
    data = chunk_to_dict(ImageFinal(ImageData.from_base64(PNG_B64)), flavor="msgpack")
    assert data["image"] == {"mime_type": "image/png", "bytes": PNG}
    assert type(data["image"]["bytes"]) is bytes


def test_json_flavor_relays_base64_without_decoding() -> None:
    """A base64 payload that is only relayed as JSON is never decoded."""
    image = ImageData.from_base64(PNG_B64)
    data = chunk_to_dict(ImagePreview(image, index=0))
    assert data["image"]["b64"] is PNG_B64
    assert image.arrived_as_base64


def test_default_flavor_is_json() -> None:
    chunk = ImageFinal(ImageData.from_bytes(PNG))
    assert chunk_to_dict(chunk) == chunk_to_dict(chunk, flavor="json")
    assert converter("json") is converter("json"), "converters are built once and cached"
    assert converter("json") is not converter("msgpack")


def test_image_mime_type_written_is_the_sniffed_one() -> None:
    data = chunk_to_dict(ImageFinal(ImageData.from_bytes(PNG, "image/jpeg")))
    assert data["image"]["mime_type"] == "image/png"
    opaque = chunk_to_dict(ImageFinal(ImageData.from_bytes(b"opaque", "image/webp")))
    assert opaque["image"]["mime_type"] == "image/webp"


def test_declared_mime_type_survives_round_trip() -> None:
    chunk = ImageFinal(ImageData.from_bytes(b"\x00\x01", "image/gif"))
    back = chunk_from_dict(chunk_to_dict(chunk))
    assert isinstance(back, ImageFinal)
    assert back.image.declared_mime_type == "image/gif"


def test_text_delta_dict_shape() -> None:
    expected = {"type": "text_delta", "text": "hi", "synthetic": False, "thought": False}
    assert chunk_to_dict(TextDelta("hi")) == expected


def test_unknown_keys_are_ignored() -> None:
    data = chunk_to_dict(ImagePreview(ImageData.from_bytes(PNG), index=1))
    data["added_in_a_later_version"] = {"x": 1}
    data["image"]["thumbnail_url"] = "https://example.invalid/t.png"
    back = chunk_from_dict(data)
    assert back == ImagePreview(ImageData.from_bytes(PNG), index=1)
    assert chunk_from_dict({"type": "text_delta", "text": "x", "colour": "red"}) == TextDelta("x")


def test_missing_optional_fields_take_defaults() -> None:
    back = chunk_from_dict({"type": "image_final", "image": {"b64": PNG_B64}})
    assert back == ImageFinal(ImageData.from_bytes(PNG))
    assert isinstance(back, ImageFinal)
    assert back.sample == 0
    assert back.extra == {}
    assert chunk_from_dict({"type": "usage"}) == Usage()


def test_either_image_key_is_accepted_by_either_flavor() -> None:
    """A JSON-shaped image dict can be read by the msgpack converter and vice versa."""
    as_json = chunk_to_dict(ImageFinal(ImageData.from_bytes(PNG)), flavor="json")
    as_msgpack = chunk_to_dict(ImageFinal(ImageData.from_bytes(PNG)), flavor="msgpack")
    assert chunk_from_dict(as_json, flavor="msgpack") == chunk_from_dict(as_msgpack, flavor="json")


@pytest.mark.parametrize(
    "image",
    [
        {"mime_type": "image/png"},
        {},
        "iVBORw0KGgo=",
        None,
    ],
)
def test_bad_image_dict_raises(image: object) -> None:
    with pytest.raises(ValidationError, match="malformed image_final chunk") as info:
        chunk_from_dict({"type": "image_final", "image": image})
    assert isinstance(info.value.__cause__, cattrs.ClassValidationError)


def test_bad_image_dict_names_the_problem() -> None:
    with pytest.raises(ValidationError) as info:
        chunk_from_dict({"type": "image_preview", "index": 0, "image": {"mime_type": "image/png"}})
    cause = info.value.__cause__
    assert isinstance(cause, cattrs.ClassValidationError)
    assert any("'b64' or 'bytes'" in str(e) for e in cause.exceptions)


def test_missing_required_field_raises() -> None:
    with pytest.raises(ValidationError, match="malformed image_preview"):
        chunk_from_dict({"type": "image_preview", "image": {"b64": PNG_B64}})


@pytest.mark.parametrize("data", [{"type": "video_frame"}, {"text": "no tag"}])
def test_unknown_or_missing_type_tag_raises(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="unknown chunk type"):
        chunk_from_dict(data)


@pytest.mark.parametrize("value", [{"type": "text_delta", "text": "x"}, "text", None, 3])
def test_to_dict_refuses_non_chunks(value: object) -> None:
    with pytest.raises(TypeError, match="not a chunk"):
        chunk_to_dict(value)  # type: ignore[arg-type]


def test_extra_mapping_is_copied_not_shared() -> None:
    extra = {"quality": "high"}
    data = chunk_to_dict(ImageFinal(ImageData.from_bytes(PNG), extra=extra))
    data["extra"]["quality"] = "changed"
    assert extra == {"quality": "high"}
