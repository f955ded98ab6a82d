"""Reading the ZIP endpoint's archive safely, whatever is inside it."""

from __future__ import annotations

import io
import struct
import zipfile

import pytest

from imagestream import DecoderLimitError, StreamDecodeError
from imagestream.testing import make_png
from imagestream_novelai._zip import ZipLimits, read_zip_images


def archive(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def lie_about_size(data: bytes, declared: int) -> bytes:
    """The archive with its (single) entry's uncompressed size rewritten, as a bomb would."""
    patched = bytearray(data)
    local = patched.find(b"PK\x03\x04")
    central = patched.find(b"PK\x01\x02")
    struct.pack_into("<I", patched, local + 22, declared)
    struct.pack_into("<I", patched, central + 24, declared)
    return bytes(patched)


def test_images_come_out_by_sample() -> None:
    images = read_zip_images(
        archive({"image_1.png": make_png(4, 4, (0, 0, 1)), "image_0.png": make_png(4, 4, (0, 0, 0))})
    )
    assert [(image.sample, image.name) for image in images] == [(0, "image_0.png"), (1, "image_1.png")]
    assert images[0].data.startswith(b"\x89PNG")


def test_other_names_keep_archive_order() -> None:
    images = read_zip_images(archive({"first.png": make_png(), "second.png": make_png()}))
    assert [image.sample for image in images] == [0, 1]


def test_declared_size_over_the_cap_is_refused_before_inflating() -> None:
    bomb = archive({"image_0.png": b"\x00" * (3 * 2**20)})
    assert len(bomb) < 2**16  # small on the wire
    with pytest.raises(DecoderLimitError) as info:
        read_zip_images(bomb, ZipLimits(max_entry_bytes=2**20))
    assert info.value.limit == "max_entry_bytes" and "declares" in str(info.value)


def test_declared_total_over_the_cap() -> None:
    data = archive({f"image_{n}.png": b"\x00" * 2**19 for n in range(4)})
    with pytest.raises(DecoderLimitError) as info:
        read_zip_images(data, ZipLimits(max_total_bytes=2**20))
    assert info.value.limit == "max_total_bytes"


def test_an_entry_that_lies_about_its_size_is_an_error() -> None:
    # Declares 100 bytes, inflates to 1 MiB: never more than what was declared
    # is produced, and the mismatch is reported.
    liar = lie_about_size(archive({"image_0.png": b"\x00" * 2**20}), 100)
    with pytest.raises(StreamDecodeError):
        read_zip_images(liar, ZipLimits(max_entry_bytes=2**16))


def test_too_many_entries_is_refused_before_reading_any() -> None:
    data = archive({f"image_{n}.png": b"x" for n in range(10)})
    with pytest.raises(DecoderLimitError) as info:
        read_zip_images(data, ZipLimits(max_entries=8))
    assert info.value.limit == "max_entries"


def test_not_a_zip() -> None:
    with pytest.raises(StreamDecodeError, match="not a ZIP"):
        read_zip_images(b'{"statusCode": 500, "message": "oops"}')


def test_empty_archive() -> None:
    with pytest.raises(StreamDecodeError, match="no image"):
        read_zip_images(archive({}))
