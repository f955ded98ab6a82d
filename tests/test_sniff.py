"""Tests for ``imagestream._sniff``: MIME sniffing and header-only dimensions."""

from __future__ import annotations

import io
import struct
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, features

from imagestream._sniff import (
    EXTENSIONS,
    MAX_JPEG_PADDING,
    TAIL_BYTES,
    image_size,
    incompleteness,
    is_complete,
    sniff_mime,
)
from imagestream.testing import make_image, make_png

WIDTH, HEIGHT = 37, 23

needs_webp = pytest.mark.skipif(not features.check("webp"), reason="Pillow built without WebP")


def _encode(
    mode: str, fmt: str, size: tuple[int, int] = (WIDTH, HEIGHT), **params: object
) -> bytes:
    """Encode a small noisy image (so encoders cannot collapse it) with Pillow."""
    image = Image.frombytes(
        mode, size, bytes((i * 7 + 13) % 256 for i in range(size[0] * size[1] * len(mode)))
    )
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def png() -> bytes:
    return _encode("RGB", "PNG")


def jpeg_baseline() -> bytes:
    return _encode("RGB", "JPEG", quality=80)


def jpeg_progressive() -> bytes:
    return _encode("RGB", "JPEG", progressive=True, quality=80)


def jpeg_big_exif() -> bytes:
    exif = Image.Exif()
    exif[0x010E] = "x" * 60_000  # ImageDescription: a ~60 KB APP1 segment
    return _encode("RGB", "JPEG", exif=exif.tobytes())


def webp_lossy() -> bytes:
    return _encode("RGB", "WEBP", quality=70)


def webp_lossless() -> bytes:
    return _encode("RGB", "WEBP", lossless=True)


def webp_extended_alpha() -> bytes:
    return _encode("RGBA", "WEBP", quality=70)


def webp_extended_exif() -> bytes:
    exif = Image.Exif()
    exif[0x010E] = "made for a test"
    return _encode("RGB", "WEBP", quality=70, exif=exif.tobytes())


def gif() -> bytes:
    return _encode("L", "GIF")


FORMATS: dict[str, tuple[Callable[[], bytes], str]] = {
    "png": (png, "image/png"),
    "jpeg-baseline": (jpeg_baseline, "image/jpeg"),
    "jpeg-progressive": (jpeg_progressive, "image/jpeg"),
    "jpeg-big-exif": (jpeg_big_exif, "image/jpeg"),
    "webp-lossy": (webp_lossy, "image/webp"),
    "webp-lossless": (webp_lossless, "image/webp"),
    "webp-alpha": (webp_extended_alpha, "image/webp"),
    "webp-exif": (webp_extended_exif, "image/webp"),
    "gif": (gif, "image/gif"),
}


def _params() -> list[object]:
    return [
        pytest.param(name, marks=needs_webp) if name.startswith("webp") else name
        for name in FORMATS
    ]


@pytest.mark.parametrize("name", _params())
def test_sniff_and_size_of_real_images(name: str) -> None:
    """Real encoder output at an odd size is recognised and measured from its header."""
    make, mime = FORMATS[name]
    data = make()
    assert sniff_mime(data) == mime
    assert image_size(data) == (WIDTH, HEIGHT)
    assert image_size(data, mime) == (WIDTH, HEIGHT)


def test_generated_variants_are_what_they_claim() -> None:
    """Guard the fixtures themselves: each JPEG/WebP variant has the intended structure."""
    assert b"\xff\xc0" in jpeg_baseline()
    assert b"\xff\xc2" in jpeg_progressive()
    big = jpeg_big_exif()
    app1 = big.find(b"\xff\xe1")
    assert 0 < app1 < big.find(b"\xff\xc0")
    assert struct.unpack(">H", big[app1 + 2 : app1 + 4])[0] > 50_000
    if features.check("webp"):
        assert webp_lossy()[12:16] == b"VP8 "
        assert webp_lossless()[12:16] == b"VP8L"
        assert webp_extended_alpha()[12:16] == b"VP8X"
        assert webp_extended_exif()[12:16] == b"VP8X"


@pytest.mark.parametrize(("width", "height"), [(1, 1), (37, 23), (300, 2), (1000, 999)])
def test_png_sizes_from_make_png(width: int, height: int) -> None:
    assert image_size(make_png(width, height)) == (width, height)


@pytest.mark.parametrize(
    ("fmt", "mode", "size"),
    [("PNG", "RGB", (4097, 3)), ("JPEG", "L", (3, 5000)), ("GIF", "L", (640, 1))],
)
def test_sizes_beyond_one_byte(fmt: str, mode: str, size: tuple[int, int]) -> None:
    """Multi-byte dimension fields are read with the right byte order."""
    assert image_size(_encode(mode, fmt, size)) == size


@needs_webp
@pytest.mark.parametrize("size", [(16383, 1), (1, 300), (1000, 7)])
def test_webp_lossless_dimension_bits(size: tuple[int, int]) -> None:
    """VP8L packs width-1 and height-1 into 14-bit fields; large values use all bits."""
    assert image_size(_encode("L", "WEBP", size, lossless=True)) == size


def test_sniff_accepts_memoryview() -> None:
    data = make_png(3, 3)
    assert sniff_mime(memoryview(data)) == "image/png"
    assert sniff_mime(memoryview(data)[:8]) == "image/png"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff\xe0", "image/jpeg"),
        (b"RIFF\x00\x00\x00\x00WEBP", "image/webp"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"", None),
        (b"\x89PNG\r\n\x1a", None),  # one byte short of the signature
        (b"\xff\xd8", None),
        (b"RIFF\x00\x00\x00\x00WAVE", None),  # RIFF, but audio
        (b"GIF88a", None),
        (b"<svg xmlns=", None),
        (b"BM\x00\x00", None),  # BMP is not supported
        (b"\x00\x00\x00\x0cjP  ", None),
    ],
)
def test_sniff_magic_bytes(head: bytes, expected: str | None) -> None:
    assert sniff_mime(head) == expected


def test_extensions_cover_every_sniffed_type() -> None:
    assert EXTENSIONS == {
        "image/png": "png",
        "image/jpeg": "jpg",
        "image/webp": "webp",
        "image/gif": "gif",
    }


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello world, not an image",
        b"\x89PNG\r\n\x1a\n",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00",  # IHDR cut inside the width
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIDAT" + b"\x00" * 16,  # first chunk is not IHDR
        b"\xff\xd8\xff",
        b"\xff\xd8\xff\xe0\x00\x10JFIF",  # APP0 cut short, no SOF ever
        b"\xff\xd8\x00\x00\x00\x00\x00\x00",  # not a marker after SOI
        b"\xff\xd8\xff\xc0\x00\x11\x08\x00",  # SOF cut inside the height
        b"RIFF\x00\x00\x00\x00WEBP",
        b"RIFF\x00\x00\x00\x00WEBPVP8 \x00\x00",
        b"RIFF\x00\x00\x00\x00WEBPALPH" + b"\x00" * 20,  # unknown first chunk
        b"GIF89a\x01",
    ],
)
def test_garbage_and_truncated_headers_give_none(data: bytes) -> None:
    assert image_size(data) is None


def test_jpeg_dht_marker_is_not_a_frame() -> None:
    """C4 (DHT) lies in the SOF range but carries no size; its bytes must be skipped."""
    dht = b"\xff\xc4\x00\x0b" + b"\x00\x77\x77\x66\x66" + b"\x00" * 4  # would read 0x6666 x 0x7777
    sof = b"\xff\xc0\x00\x11\x08\x00\x17\x00\x25\x03" + b"\x00" * 9
    data = b"\xff\xd8" + dht + sof
    assert image_size(data) == (37, 23)


def test_jpeg_fill_bytes_and_standalone_markers_are_skipped() -> None:
    """0xFF fill bytes and length-less markers (RSTn, TEM) before the frame are tolerated."""
    sof = b"\xff\xc1\x00\x11\x08\x00\x17\x00\x25\x03" + b"\x00" * 9
    data = b"\xff\xd8" + b"\xff\xff\xff" + b"\xff\x01" + b"\xff\xd3" + sof
    assert image_size(data) == (37, 23)


def test_jpeg_zero_length_segments_terminate() -> None:
    """A corrupt segment length of 0 must not loop forever."""
    data = b"\xff\xd8" + b"\xff\xe0\x00\x00" * 50
    assert image_size(data) is None


def test_png_header_with_huge_dimensions_is_read_not_decoded() -> None:
    data = bytearray(make_png(1, 1))
    data[16:24] = struct.pack(">II", 100_000, 100_000)
    assert image_size(bytes(data)) == (100_000, 100_000)


def test_explicit_mime_that_is_not_an_image_type() -> None:
    assert image_size(make_png(2, 2), "image/bmp") is None
    assert image_size(make_png(2, 2), "text/plain") is None


def test_explicit_mime_mismatch_does_not_raise() -> None:
    assert image_size(make_png(2, 2), "image/jpeg") is None


@pytest.mark.parametrize("name", _params())
def test_every_prefix_is_safe(name: str) -> None:
    """Any truncation of a real file never raises and never yields a wrong size.

    WebP lossless/extended are checked separately (truncated-header test below).
    """
    make, _ = FORMATS[name]
    data = make()
    for cut in range(0, min(len(data), 200)):
        result = image_size(data[:cut])
        if name in ("webp-lossless", "webp-alpha", "webp-exif"):
            assert result is None or isinstance(result, tuple)
        else:
            assert result in (None, (WIDTH, HEIGHT)), cut


@pytest.mark.parametrize(
    "data",
    [
        b"RIFF\x00\x00\x00\x00WEBPVP8L",
        b"RIFF\x00\x00\x00\x00WEBPVP8L\x00\x00\x00\x00\x2f",
        b"RIFF\x00\x00\x00\x00WEBPVP8X",
        b"RIFF\x00\x00\x00\x00WEBPVP8X\x00\x00\x00\x00\x10\x00\x00\x00\x24\x00\x00",
    ],
)
def test_truncated_webp_lossless_or_extended_gives_none(data: bytes) -> None:
    assert image_size(data) is None


@settings(deadline=None)  # a noisy machine must not turn slowness into failures
@given(st.binary(max_size=64))
def test_random_bytes_never_raise(data: bytes) -> None:
    mime = sniff_mime(data)
    assert mime is None or mime in EXTENSIONS
    size = image_size(data)
    assert size is None or (isinstance(size, tuple) and len(size) == 2)


MAGICS = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF\x00\x00\x00\x00WEBP", b"GIF89a"]


@settings(deadline=None)
@given(st.sampled_from(MAGICS), st.binary(max_size=80))
def test_random_bytes_after_magic_never_raise(magic: bytes, tail: bytes) -> None:
    """Past the signature the parsers see arbitrary data; they must return, not raise."""
    data = magic + tail
    assert sniff_mime(data) is not None
    size = image_size(data)
    assert size is None or all(isinstance(v, int) and v >= 0 for v in size)


def test_only_the_header_is_read() -> None:
    """Only the header is read: a PNG with a corrupt IDAT still reports its size."""
    data = bytearray(make_png(9, 4))
    idat = data.find(b"IDAT")
    data[idat + 4 : idat + 8] = b"\x00\x00\x00\x00"
    assert image_size(bytes(data)) == (9, 4)


# --- whole or cut short -------------------------------------------------------------------


@pytest.mark.parametrize("name", _params())
def test_real_images_are_complete(name: str) -> None:
    make, mime = FORMATS[name]
    data = make()
    assert is_complete(data)
    assert is_complete(data, mime)
    assert is_complete(memoryview(data))


@pytest.mark.parametrize("kind", ["png", "jpeg", pytest.param("webp", marks=needs_webp)])
def test_testing_images_are_complete(kind: str) -> None:
    assert is_complete(make_image(kind))
    assert is_complete(make_png(3, 2))


@pytest.mark.parametrize("name", _params())
@pytest.mark.parametrize("cut", [1, 2, 3, 12, 100])
def test_truncated_images_are_not_complete(name: str, cut: int) -> None:
    make, mime = FORMATS[name]
    data = make()
    if mime == "image/gif" and data[:-cut].endswith(b";"):
        pytest.skip("this cut happens to end on a 3b byte, which only a parser could tell apart")
    assert not is_complete(data[:-cut])
    assert incompleteness(data[:16], data[:-cut][-TAIL_BYTES:], len(data) - cut, mime)


@settings(max_examples=200, deadline=None)
@given(keep=st.floats(min_value=0.0, max_value=0.999))
def test_no_prefix_of_a_png_or_jpeg_is_complete(keep: float) -> None:
    for data in (png(), jpeg_progressive()):
        assert not is_complete(data[: int(len(data) * keep)])


@pytest.mark.parametrize(
    "padding",
    [b"\x00", b"\n", b"\r\n", b" \t", b"\x00" * MAX_JPEG_PADDING],
    ids=["zero", "lf", "crlf", "spaces", "most"],
)
def test_jpeg_padding_after_eoi_is_accepted(padding: bytes) -> None:
    assert is_complete(jpeg_baseline() + padding)


@pytest.mark.parametrize(
    "tail",
    [b"\x00" * (MAX_JPEG_PADDING + 1), b"junk", b"\x00\x01", b"\xff\xd9\x00x"],
    ids=["too-much-padding", "junk", "not-padding", "junk-after-a-second-eoi"],
)
def test_jpeg_with_more_than_padding_after_eoi_is_not_complete(tail: bytes) -> None:
    assert not is_complete(jpeg_baseline() + tail)


@needs_webp
def test_webp_riff_length() -> None:
    data = webp_lossy()
    assert is_complete(data + b"\x00"), "one padding byte after the RIFF length"
    assert not is_complete(data + b"\x00\x00")
    assert not is_complete(data[:-1])
    riff = int.from_bytes(data[4:8], "little")
    lying = data[:4] + (riff + 2).to_bytes(4, "little") + data[8:]
    assert "RIFF header gives" in (incompleteness(lying[:16], b"", len(lying), "image/webp") or "")


def test_png_and_gif_end_markers() -> None:
    data = png()
    assert not is_complete(data + b"\x00"), "nothing may follow IEND"
    assert not is_complete(data[:-4] + b"\x00\x00\x00\x00"), "IEND with a wrong CRC"
    assert is_complete(gif())
    assert not is_complete(gif() + b"\x00")


@pytest.mark.parametrize("data", [b"", b"<html></html>", b"\x89PNG\r\n\x1a\n"])
def test_not_an_image_is_not_complete(data: bytes) -> None:
    assert not is_complete(data)


def test_types_without_a_check_have_no_fault() -> None:
    assert incompleteness(b"", b"", 0, "image/avif") is None
