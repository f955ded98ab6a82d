"""Tests for the built-in ``validation`` plugin: prompt rules and image payload checks."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from typing import Any

import pytest
from PIL import Image, features

from imagestream import _defaults, _sniff
from imagestream._builtins.validation import Validation
from imagestream._chunks import ImageFinal, ImagePreview, TextDelta, Usage
from imagestream._context import RunContext
from imagestream._image import ImageData
from imagestream._request import ImageRequest
from imagestream.errors import ImageValidationError, ValidationError
from imagestream.testing import ScriptedProvider, make_png


def _encode(fmt: str, size: tuple[int, int], mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, 128).save(buffer, fmt)
    return buffer.getvalue()


PNG = make_png(37, 23)
JPEG = _encode("JPEG", (31, 17))
GIF = _encode("GIF", (5, 9), "L")


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG signature, a valid IHDR claiming any size and the IEND chunk: no pixel data at all."""
    body = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    ihdr = (
        struct.pack(">I", len(body))
        + b"IHDR"
        + body
        + struct.pack(">I", zlib.crc32(b"IHDR" + body))
    )
    iend = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + ihdr + iend


def _context() -> RunContext:
    async def no_generate() -> Any:
        raise AssertionError("not used")

    return RunContext(
        ImageRequest("p"),
        ScriptedProvider(),
        decoders=lambda *a, **k: None,  # type: ignore[arg-type]
        http=lambda: None,  # type: ignore[arg-type, return-value]
        generate=no_generate,
    )


# --- prompts ------------------------------------------------------------------------------


@pytest.mark.parametrize("prompt", ["", " ", "\n\t  "])
def test_empty_prompt_is_refused(prompt: str) -> None:
    with pytest.raises(ValidationError, match="empty") as info:
        Validation().check_prompt(prompt)
    assert not isinstance(info.value, ImageValidationError)
    assert info.value.hint is not None


def test_prompt_length_cap_is_inclusive() -> None:
    validation = Validation(max_prompt_chars=10)
    validation.check_prompt("a" * 10)
    with pytest.raises(ValidationError, match="11 characters long; the limit is 10"):
        validation.check_prompt("a" * 11)


def test_default_prompt_cap() -> None:
    validation = Validation()
    validation.check_prompt("x" * _defaults.MAX_PROMPT_CHARS)
    with pytest.raises(ValidationError):
        validation.check_prompt("x" * (_defaults.MAX_PROMPT_CHARS + 1))


@pytest.mark.parametrize(
    "prompt",
    [
        "an ass in a field",
        "An ASS in a field",
        "ass",
        "look: ass!",
        "(ass)",
        "a Blood moon",
        "the red button, pressed",
    ],
)
def test_blocklisted_words_are_refused(prompt: str) -> None:
    validation = Validation(blocklist=["ass", " Blood ", "red button"])
    with pytest.raises(ValidationError, match="blocked word"):
        validation.check_prompt(prompt)


@pytest.mark.parametrize(
    "prompt",
    [
        "a class photo",
        "passport on a table",
        "assassin's creed fan art",
        "bloodhound puppy",
        "bloody mary",
        "a red-buttoned coat",
        "grass",
    ],
)
def test_blocklist_has_no_substring_false_positives(prompt: str) -> None:
    Validation(blocklist=["ass", "blood", "red button"]).check_prompt(prompt)


def test_blocked_word_is_named_in_lower_case() -> None:
    with pytest.raises(ValidationError) as info:
        Validation(blocklist=["Gore"]).check_prompt("lots of GORE here")
    assert "'gore'" in str(info.value)


def test_blocklist_entries_are_literal_not_regex() -> None:
    validation = Validation(blocklist=["a.b", "x|y"])
    validation.check_prompt("axb and x or y")
    with pytest.raises(ValidationError):
        validation.check_prompt("see a.b now")
    with pytest.raises(ValidationError):
        validation.check_prompt("x|y")


def test_blank_blocklist_entries_are_dropped() -> None:
    validation = Validation(blocklist=["", "  ", "ok"])
    assert validation.blocklist == ("ok",)
    validation.check_prompt("anything at all")


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGESTREAM_MAX_PROMPT_CHARS", "12")
    monkeypatch.setenv("IMAGESTREAM_BLOCKLIST", " Foo, bar ,,baz qux")
    monkeypatch.setenv("IMAGESTREAM_MAX_IMAGE_PIXELS", "400")
    validation = Validation.from_env()
    assert validation.max_prompt_chars == 12
    assert validation.blocklist == ("foo", "bar", "baz qux")
    assert validation.max_image_pixels == 400
    with pytest.raises(ValidationError, match="blocked word 'foo'"):
        validation.check_prompt("FOO fighters")
    with pytest.raises(ValidationError, match="limit is 12"):
        validation.check_prompt("a perfectly fine prompt")
    with pytest.raises(ImageValidationError, match="over the cap of 400"):
        validation.check_image(ImageFinal(ImageData.from_bytes(PNG)))


def test_from_env_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "IMAGESTREAM_MAX_PROMPT_CHARS",
        "IMAGESTREAM_BLOCKLIST",
        "IMAGESTREAM_MAX_IMAGE_PIXELS",
    ):
        monkeypatch.delenv(name, raising=False)
    validation = Validation.from_env()
    assert validation.max_prompt_chars == _defaults.MAX_PROMPT_CHARS
    assert validation.blocklist == ()
    assert validation.max_image_pixels == _defaults.MAX_IMAGE_PIXELS
    assert validation.check_previews


def test_on_request_checks_the_prompt() -> None:
    validation = Validation(blocklist=["forbidden"])
    context = _context()
    validation.on_request(ImageRequest("a calm lake"), context)
    with pytest.raises(ValidationError):
        validation.on_request(ImageRequest("something forbidden"), context)


# --- images -------------------------------------------------------------------------------


GOOD = [
    pytest.param(PNG, "image/png", (37, 23), id="png"),
    pytest.param(JPEG, "image/jpeg", (31, 17), id="jpeg"),
    pytest.param(GIF, "image/gif", (5, 9), id="gif"),
    pytest.param(
        _encode("WEBP", (19, 7)) if features.check("webp") else b"",
        "image/webp",
        (19, 7),
        id="webp",
        marks=pytest.mark.skipif(not features.check("webp"), reason="Pillow built without WebP"),
    ),
]


@pytest.mark.parametrize(("data", "mime", "size"), GOOD)
def test_good_final_images_get_type_and_size(data: bytes, mime: str, size: tuple[int, int]) -> None:
    chunk = ImageFinal(ImageData.from_base64(base64.b64encode(data).decode()), sample=2, seed=7)
    checked = Validation().check_image(chunk)
    assert isinstance(checked, ImageFinal)
    assert (checked.mime_type, checked.width, checked.height) == (mime, *size)
    assert (checked.sample, checked.seed) == (2, 7), "other fields are kept"
    assert checked.image == chunk.image


@pytest.mark.parametrize(("data", "mime", "size"), GOOD)
def test_good_previews_get_type_and_size(data: bytes, mime: str, size: tuple[int, int]) -> None:
    chunk = ImagePreview(ImageData.from_bytes(data), index=4, step=3, total_steps=10)
    checked = Validation().on_chunk(chunk, _context())
    assert isinstance(checked, ImagePreview)
    assert (checked.mime_type, checked.width, checked.height) == (mime, *size)
    assert (checked.index, checked.step) == (4, 3)


def test_already_complete_chunk_is_returned_as_is() -> None:
    chunk = ImageFinal(ImageData.from_bytes(PNG), mime_type="image/png", width=37, height=23)
    assert Validation().check_image(chunk) is chunk


def test_wrong_declared_size_is_corrected_from_header() -> None:
    chunk = ImageFinal(ImageData.from_bytes(PNG), mime_type="image/png", width=1024, height=1024)
    checked = Validation().check_image(chunk)
    assert (checked.width, checked.height) == (37, 23)


@pytest.mark.parametrize("declared", ["image/jpg", "JPEG", "jpg", " image/jpeg "])
def test_jpeg_aliases_are_accepted(declared: str) -> None:
    chunk = ImageFinal(ImageData.from_bytes(JPEG), mime_type=declared)
    assert Validation().check_image(chunk).mime_type == "image/jpeg"


@pytest.mark.parametrize(
    ("payload", "offset"),
    [("iVBORw0KGgo==", 11), ("iVBO Rw0KGgo=", 4), ("!!!!", 0), ("iVBO-w0K+Ggo=", 8)],
)
@pytest.mark.parametrize("full", [True, False])
def test_bad_base64_is_refused(payload: str, offset: int, full: bool) -> None:
    with pytest.raises(ImageValidationError, match=f"not valid base64: .* at offset {offset}"):
        Validation().check_image(ImageFinal(ImageData.from_base64(payload)), full=full)


def test_non_image_bytes_are_refused() -> None:
    chunk = ImageFinal(ImageData.from_bytes(b"<html>error page</html>"))
    with pytest.raises(ImageValidationError, match="not a PNG, JPEG, WebP or GIF") as info:
        Validation().check_image(chunk)
    assert "3c 68 74 6d" in str(info.value)


@pytest.mark.parametrize("image", [ImageData.from_bytes(b""), ImageData.from_base64("")])
def test_empty_payload_is_refused(image: ImageData) -> None:
    with pytest.raises(ImageValidationError, match="image payload is empty"):
        Validation().check_image(ImageFinal(image), full=False)


def test_declared_jpeg_with_png_bytes_is_refused() -> None:
    chunk = ImageFinal(ImageData.from_bytes(PNG), mime_type="image/jpeg")
    with pytest.raises(
        ImageValidationError, match="declared as image/jpeg but its bytes are image/png"
    ):
        Validation().check_image(chunk)


def test_declared_type_on_the_payload_is_checked_too() -> None:
    chunk = ImagePreview(ImageData.from_bytes(PNG, "image/webp"), index=0)
    with pytest.raises(ImageValidationError, match="preview declared as image/webp"):
        Validation().check_image(chunk)


def test_pixel_cap_refuses_huge_header() -> None:
    """A 100000x100000 header is refused from the header alone (decompression-bomb guard)."""
    chunk = ImageFinal(ImageData.from_bytes(_png_header_only(100_000, 100_000)))
    with pytest.raises(ImageValidationError, match="100000x100000, over the cap") as info:
        Validation().check_image(chunk)
    assert info.value.hint is not None
    assert "IMAGESTREAM_MAX_IMAGE_PIXELS" in info.value.hint


def test_pixel_cap_boundary() -> None:
    validation = Validation(max_image_pixels=100)
    assert validation.check_image(ImageFinal(ImageData.from_bytes(make_png(10, 10)))).width == 10
    with pytest.raises(ImageValidationError):
        validation.check_image(ImageFinal(ImageData.from_bytes(make_png(10, 11))))


def test_default_pixel_cap_allows_large_normal_images() -> None:
    chunk = ImageFinal(ImageData.from_bytes(_png_header_only(8192, 8192)))
    assert Validation().check_image(chunk).width == 8192
    with pytest.raises(ImageValidationError):
        Validation().check_image(ImageFinal(ImageData.from_bytes(_png_header_only(8192, 8193))))


def test_unreadable_header_is_refused() -> None:
    chunk = ImageFinal(ImageData.from_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 4 + b"IDAT"))
    with pytest.raises(ImageValidationError, match="unreadable image/png header"):
        Validation().check_image(chunk)


def test_previews_checked_by_default() -> None:
    bad = ImagePreview(ImageData.from_bytes(b"junk"), index=0)
    with pytest.raises(ImageValidationError, match="preview payload"):
        Validation().on_chunk(bad, _context())


def test_previews_skipped_when_check_previews_is_off() -> None:
    validation = Validation(check_previews=False)
    context = _context()
    bad_preview = ImagePreview(ImageData.from_base64("not base64!"), index=0)
    assert validation.on_chunk(bad_preview, context) is None
    with pytest.raises(ImageValidationError):
        validation.on_chunk(ImageFinal(ImageData.from_bytes(b"junk")), context)


@pytest.mark.parametrize("chunk", [TextDelta("hello"), Usage(input_tokens=3)])
def test_non_image_chunks_pass_untouched(chunk: TextDelta | Usage) -> None:
    assert Validation().on_chunk(chunk, _context()) is None


def test_preview_header_mode_checks_type_and_size_without_decoding_it_all() -> None:
    """Default preview checks read only the ends: a broken middle is left to whoever decodes."""
    import base64 as _b64

    from imagestream import ImageData, ImagePreview, ImageValidationError
    from imagestream._builtins.validation import Validation as _Validation
    from imagestream.testing import make_png as _make_png

    good = _b64.b64encode(_make_png(12, 7)).decode()
    broken_middle = good[:48] + "!!!!" + good[52:]
    preview = ImagePreview(ImageData.from_base64(broken_middle), index=0)
    checked = _Validation().check_image(preview, full=False)
    assert (checked.width, checked.height, checked.mime_type) == (12, 7, "image/png")
    assert checked.image.arrived_as_base64  # nothing was decoded in full
    with pytest.raises(ImageValidationError, match="'!' at offset 48 is not a base64 character"):
        _Validation(check_previews=True).on_chunk(preview, None)  # type: ignore[arg-type]
    not_an_image = ImagePreview(ImageData.from_bytes(b"<html>nope</html>"), index=0)
    with pytest.raises(ImageValidationError, match="not a PNG"):
        _Validation().on_chunk(not_an_image, None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("padding", "complete"),
    [
        (b"", True),
        (b"\x00" * 15, True),  # the EOI marker still inside the last 16 bytes
        (b"\x00" * 100, True),  # behind them: the check reads further back
        (b"\n" * _sniff.MAX_JPEG_PADDING, True),
        (b"\x00" * (_sniff.MAX_JPEG_PADDING + 1), False),
        (b"junk", False),
    ],
    ids=["none", "15", "100", "most", "too-much", "junk"],
)
@pytest.mark.parametrize("arrived", ["bytes", "base64", "pieces"])
def test_header_mode_reads_past_a_jpegs_padding(
    padding: bytes, complete: bool, arrived: str
) -> None:
    """Only the last bytes of an image are read first; a JPEG padded after EOI is read further."""
    data = JPEG + padding
    text = base64.b64encode(data)
    image = {
        "bytes": lambda: ImageData.from_bytes(data),
        "base64": lambda: ImageData.from_base64(text.decode()),
        "pieces": lambda: ImageData.from_base64_pieces(
            [text[i : i + 1000] for i in range(0, len(text), 1000)]
        ),
    }[arrived]()
    chunk = ImageFinal(image)
    if complete:
        assert Validation().check_image(chunk, full=False).mime_type == "image/jpeg"
    else:
        with pytest.raises(ImageValidationError, match="does not end with the EOI marker"):
            Validation().check_image(chunk, full=False)
