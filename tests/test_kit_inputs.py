"""Input images from every form a caller may hold, read and sniffed once."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from imagestream import ConfigurationError, ImageData, ValidationError
from imagestream.provider import (
    InputImage,
    load_input_bytes,
    load_input_image,
    load_input_images,
)
from imagestream.testing import make_png

PNG = make_png(6, 4)
B64 = base64.b64encode(PNG).decode()
JPEG_HEAD = b"\xff\xd8\xff\xe0" + b"\x00" * 60


def _check(image: InputImage) -> None:
    assert image.data == PNG
    assert image.mime_type == "image/png"
    assert image.size == (6, 4)
    assert image.b64 == B64
    assert image.data_url == f"data:image/png;base64,{B64}"
    assert image.nbytes == len(PNG)


def test_bytes_memoryview_and_image_data() -> None:
    for value in (PNG, bytearray(PNG), memoryview(PNG), ImageData.from_bytes(PNG)):
        image = load_input_image(value, provider="p")
        _check(image)
        assert image.filename == "image.png"
    _check(load_input_image(ImageData.from_base64(B64), provider="p"))


def test_base64_text_and_data_urls() -> None:
    _check(load_input_image(B64, provider="p"))
    _check(load_input_image(f"  data:image/png;base64,{B64}\n", provider="p"))


def test_paths_as_text_and_pathlike(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(PNG)
    for value in (path, str(path)):
        image = load_input_image(value, provider="p")
        _check(image)
        assert image.filename == "photo.png"


def test_an_input_image_passes_through() -> None:
    image = load_input_image(PNG, provider="p")
    assert load_input_image(image, provider="p") == image


def test_one_or_many() -> None:
    assert len(load_input_images(PNG, provider="p")) == 1
    assert len(load_input_images([PNG, B64], provider="p")) == 2
    with pytest.raises(ConfigurationError, match="empty list"):
        load_input_images([], provider="p")
    with pytest.raises(ValidationError, match=r"image\[1\] is not"):
        load_input_images([PNG, b"not an image at all"], provider="p")


@pytest.mark.parametrize(
    ("value", "error", "text"),
    [
        ("missing.png", ConfigurationError, "no such file: 'missing.png'"),
        ("data:text/plain,hello", ConfigurationError, "not base64"),
        ("!!!!" * 2000, ConfigurationError, "neither an existing file nor valid base64"),
        (42, ConfigurationError, "not int"),
        (b"GIF89a" + b"\x00" * 20, ValidationError, "looks like image/gif"),
        (b"plain text", ValidationError, "is not a JPG, PNG, WEBP image"),
    ],
)
def test_bad_inputs_are_typed(value: object, error: type[Exception], text: str) -> None:
    with pytest.raises(error, match="^p: ") as info:
        load_input_image(value, provider="p")
    assert text in str(info.value)


def test_size_cap_applies_to_files_and_bytes(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(PNG)
    with pytest.raises(ValidationError, match="the limit is 10"):
        load_input_image(path, provider="p", max_bytes=10)
    with pytest.raises(ValidationError, match="the limit is 10"):
        load_input_image(PNG, provider="p", max_bytes=10)


def test_accepted_types_are_the_providers_choice() -> None:
    with pytest.raises(ValidationError, match="is not a PNG image"):
        load_input_image(JPEG_HEAD, provider="p", types={"image/png"})


def test_a_directory_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_input_image(tmp_path, provider="p")


def test_repr_shows_no_payload() -> None:
    text = repr(load_input_image(PNG, provider="p"))
    assert text == f"InputImage('image.png', image/png 6x4, {len(PNG)} bytes)"


def test_opaque_bytes_skip_the_image_check(tmp_path: Path) -> None:
    blob = b"\x01vibe-data\x02"
    path = tmp_path / "style.vibe"
    path.write_bytes(blob)
    for value in (blob, path, str(path), base64.b64encode(blob).decode()):
        data, _ = load_input_bytes(value, "vibe", provider="p")
        assert data.data == blob
    assert load_input_bytes(path, provider="p")[1] == "style.vibe"
    with pytest.raises(ConfigurationError, match="p: vibe is empty"):
        load_input_bytes(b"", "vibe", provider="p")
    with pytest.raises(ValidationError, match="the limit is 4"):
        load_input_bytes(blob, "vibe", provider="p", max_bytes=4)


def test_the_test_kit_draws_real_images() -> None:
    from imagestream.testing import make_image

    for kind, mime in (("png", "image/png"), ("image/jpeg", "image/jpeg"), ("webp", "image/webp")):
        data = make_image(kind, variant=1, width=20, height=10)
        image = load_input_image(data, provider="p")
        assert (image.mime_type, image.size) == (mime, (20, 10))
    assert make_image("png", 1) == make_image("png", 1) != make_image("png", 2)
    with pytest.raises(ValueError, match="png, jpeg or webp"):
        make_image("gif")
