"""Tests for ``imagestream._image.ImageData``: lazy, strict, cheap to inspect."""

from __future__ import annotations

import base64
import hashlib
import os
import pickle
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagestream._image import ImageData
from imagestream.errors import ImageValidationError
from imagestream.testing import make_png

PNG = make_png(5, 3)
PNG_B64 = base64.b64encode(PNG).decode("ascii")


def test_base64_is_decoded_once_and_cached() -> None:
    image = ImageData.from_base64(PNG_B64)
    first = image.data
    assert first == PNG
    assert image.data is first


def test_bytes_are_encoded_once_and_cached() -> None:
    image = ImageData.from_bytes(PNG)
    first = image.b64
    assert first == PNG_B64
    assert image.b64 is first


def test_forms_that_arrived_are_returned_untouched() -> None:
    """The payload as it came is handed back as the same object, with no copy."""
    assert ImageData.from_bytes(PNG).data is PNG
    assert ImageData.from_base64(PNG_B64).b64 is PNG_B64


def test_from_bytes_accepts_bytearray_and_memoryview() -> None:
    for source in (bytearray(PNG), memoryview(PNG)):
        image = ImageData.from_bytes(source)
        assert type(image.data) is bytes
        assert image.data == PNG


def test_from_base64_accepts_ascii_bytes() -> None:
    assert ImageData.from_base64(PNG_B64.encode("ascii")).data == PNG


def test_from_base64_does_not_decode_until_asked() -> None:
    """Wrapping invalid base64 is fine; the error comes on first access to ``data``."""
    image = ImageData.from_base64("not base64 at all!")
    assert image.arrived_as_base64
    with pytest.raises(ImageValidationError, match="not valid base64"):
        _ = image.data


@pytest.mark.parametrize(
    "payload",
    [
        # Line breaks, the URL-safe alphabet and missing padding are accepted
        # (tests/test_payload_integrity.py); spaces inside the data are not.
        "QU JD",
        "QU\tJD",
        "QQ===",  # too much padding
        "=QUJ",  # leading padding
        "QQ==QQ==",  # data after padding
        "QU*D",  # outside the alphabet
        "QU-/",  # both alphabets at once
        "QUJDé",  # non-ASCII text
        "Q",
    ],
)
def test_strict_base64_rejects(payload: str) -> None:
    with pytest.raises(ImageValidationError):
        _ = ImageData.from_base64(payload).data


def test_non_ascii_bytes_payload_is_rejected_not_crashing() -> None:
    image = ImageData.from_base64(b"QUJD\xff\xfe")
    with pytest.raises(ImageValidationError):
        _ = image.data


def test_validation_error_does_not_echo_the_payload() -> None:
    payload = "A" * 4001 + "!"
    with pytest.raises(ImageValidationError) as info:
        _ = ImageData.from_base64(payload).data
    assert "AAAAAAAA" not in str(info.value)


@pytest.mark.parametrize("length", [0, 1, 2, 3, 4, 5, 6, 100, 101, 102])
def test_nbytes_for_every_padding_case(length: int) -> None:
    raw = os.urandom(length)
    image = ImageData.from_base64(base64.b64encode(raw).decode())
    assert image.nbytes == length
    assert image.arrived_as_base64, "nbytes must not decode the payload"


@settings(deadline=None)  # a noisy machine must not turn slowness into failures
@given(st.binary(max_size=300))
def test_nbytes_without_decoding_matches_data_length(raw: bytes) -> None:
    image = ImageData.from_base64(base64.b64encode(raw).decode())
    assert image.nbytes == len(raw)
    assert image.arrived_as_base64
    assert image.nbytes == len(image.data)
    assert ImageData.from_bytes(raw).nbytes == len(raw)


@settings(deadline=None)
@given(st.binary(max_size=100), st.integers(min_value=0, max_value=120))
def test_head_matches_prefix_of_data(raw: bytes, n: int) -> None:
    from_b64 = ImageData.from_base64(base64.b64encode(raw).decode())
    assert from_b64.head(n) == raw[:n]
    assert from_b64.arrived_as_base64, "head() must not decode (and cache) the whole payload"
    assert ImageData.from_bytes(raw).head(n) == raw[:n]


def test_head_default_is_32_bytes() -> None:
    assert ImageData.from_base64(PNG_B64).head() == PNG[:32]


def test_head_of_garbage_base64_does_not_raise() -> None:
    assert isinstance(ImageData.from_base64("%%%%%%%%").head(), bytes)
    assert isinstance(ImageData.from_base64("QUJDé").head(), bytes)


def test_mime_type_is_sniffed_before_declared() -> None:
    lying = ImageData.from_bytes(PNG, "image/jpeg")
    assert lying.mime_type == "image/png"
    assert lying.declared_mime_type == "image/jpeg"
    assert ImageData.from_base64(PNG_B64).mime_type == "image/png"


def test_mime_type_falls_back_to_declared_then_none() -> None:
    assert ImageData.from_bytes(b"opaque", "image/webp").mime_type == "image/webp"
    assert ImageData.from_bytes(b"opaque").mime_type is None


def test_size_and_sha256() -> None:
    image = ImageData.from_base64(PNG_B64)
    assert image.size == (5, 3)
    assert image.sha256 == hashlib.sha256(PNG).hexdigest()
    assert ImageData.from_bytes(b"opaque").size is None


def test_equality_and_hash_across_forms() -> None:
    as_bytes = ImageData.from_bytes(PNG)
    as_b64 = ImageData.from_base64(PNG_B64)
    assert as_bytes == as_b64
    assert as_b64 == as_bytes
    assert hash(as_bytes) == hash(as_b64)
    assert len({as_bytes, as_b64, ImageData.from_base64(PNG_B64)}) == 1


def test_equality_ignores_declared_type_but_not_content() -> None:
    assert ImageData.from_bytes(PNG, "image/png") == ImageData.from_bytes(PNG, None)
    assert ImageData.from_bytes(PNG) != ImageData.from_bytes(make_png(5, 4))
    assert ImageData.from_base64("QUJD") != ImageData.from_base64("QUJE")
    assert ImageData.from_bytes(b"ABC") != ImageData.from_base64("QUJE")


def test_equality_with_other_types() -> None:
    image = ImageData.from_bytes(PNG)
    assert image != PNG
    assert image != PNG_B64
    assert image.__eq__(PNG) is NotImplemented


def test_equality_is_by_bytes_for_non_canonical_base64() -> None:
    canonical = ImageData.from_base64("QQ==")  # b"A"
    other_bits = ImageData.from_base64("QR==")  # also b"A": unused bits set
    assert canonical.data == other_bits.data == b"A"
    assert ImageData.from_bytes(b"A") == canonical
    assert ImageData.from_bytes(b"A") == other_bits
    assert canonical == other_bits


def test_repr_never_dumps_payload() -> None:
    raw = make_png(64, 64)
    b64 = base64.b64encode(raw).decode()
    for image in (ImageData.from_bytes(raw), ImageData.from_base64(b64)):
        text = repr(image)
        assert len(text) < 80
        assert b64[20:40] not in text
        assert "image/png" in text
        assert f"{len(raw)} bytes" in text


def test_repr_names_the_arrival_form() -> None:
    assert "as base64" in repr(ImageData.from_base64(PNG_B64))
    assert "as bytes" in repr(ImageData.from_bytes(PNG))
    assert "unknown type" in repr(ImageData.from_bytes(b"opaque"))


def test_repr_of_bad_base64_does_not_raise() -> None:
    assert "ImageData(" in repr(ImageData.from_base64("@@@@"))


@pytest.mark.parametrize(
    "image",
    [
        ImageData.from_bytes(PNG, "image/png"),
        ImageData.from_base64(PNG_B64, "image/x-custom"),
        ImageData.from_bytes(b""),
    ],
    ids=["bytes", "base64", "empty"],
)
def test_pickle_round_trip(image: ImageData) -> None:
    clone = pickle.loads(pickle.dumps(image))
    assert clone == image
    assert clone.declared_mime_type == image.declared_mime_type
    assert clone.arrived_as_base64 == image.arrived_as_base64
    assert clone.data == image.data


def test_pickle_after_lazy_conversion() -> None:
    image = ImageData.from_base64(PNG_B64)
    _ = image.data
    clone = pickle.loads(pickle.dumps(image))
    assert clone.data == PNG
    assert clone.b64 == PNG_B64


def test_is_frozen() -> None:
    image = ImageData.from_bytes(PNG)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        image.declared_mime_type = "image/gif"  # type: ignore[misc]


def test_to_pil_opens_the_image() -> None:
    pil = ImageData.from_base64(PNG_B64).to_pil()
    assert pil.size == (5, 3)
    assert pil.format == "PNG"


def test_save_writes_bytes(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "out.png"
    written = ImageData.from_base64(PNG_B64).save(target)
    assert written == target
    assert target.read_bytes() == PNG
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.png"]


def test_save_never_overwrites_by_default(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"precious")
    written = ImageData.from_bytes(PNG).save(str(target))
    assert written == tmp_path / "out-1.png"
    assert target.read_bytes() == b"precious"
    assert written.read_bytes() == PNG


def test_save_overwrite_replaces(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    assert ImageData.from_bytes(PNG).save(target, overwrite=True) == target
    assert target.read_bytes() == PNG
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
