"""Input images (img2img source, inpainting mask, references): whatever the caller has, as base64.

The API takes every input image as a base64 string inside the JSON body. A
caller may have bytes, a file, a base64 string (from another API) or a
``data:`` URL, and on the command line only text (``-o image photo.png``).
Everything is checked here, before any request: the bytes must be a PNG,
JPEG or WebP image, and a size readable from its header is kept so that the
request size can be checked against it.
"""

from __future__ import annotations

import binascii
import os
from pathlib import Path

import attrs

from imagestream import ConfigurationError, ImageData, ValidationError

__all__ = ["MAX_INPUT_BYTES", "InputImage", "load_base64", "load_image"]

MAX_INPUT_BYTES = 48 * 2**20
"""Largest input image accepted (decoded bytes): a 4K PNG is well below it."""

_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp"})


@attrs.frozen
class InputImage:
    """One input image, ready for the request body.

    Attributes:
        b64: Standard base64 of the image bytes, no line breaks.
        mime_type: The sniffed type.
        width: Width from the header, when readable.
        height: Height from the header, when readable.
    """

    b64: str = attrs.field(repr=lambda value: f"<{len(value)} base64 chars>")
    mime_type: str | None
    width: int | None = None
    height: int | None = None

    @property
    def size(self) -> tuple[int, int] | None:
        """``(width, height)`` when the header was readable."""
        if self.width is None or self.height is None:
            return None
        return self.width, self.height


def _raw_bytes(value: object, what: str) -> bytes:
    """The bytes behind ``value``: bytes, an :class:`ImageData`, a file path, base64 or a data URL."""
    if isinstance(value, ImageData):
        return value.data
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, os.PathLike):
        return _read_file(Path(value), what)
    if not isinstance(value, str):
        raise ConfigurationError(
            f"novelai: {what} must be bytes, a file path or base64 text, not {type(value).__name__}"
        )
    text = value.strip()
    if text.startswith("data:"):
        # data:image/png;base64,AAAA -> the part after the comma.
        header, _, text = text.partition(",")
        if ";base64" not in header:
            raise ConfigurationError(f"novelai: {what} is a data: URL that is not base64")
    elif len(text) < 4096 and _looks_like_path(text):
        # Short text naming an existing file is a path (what the CLI passes);
        # base64 of any real image is far longer than a path.
        return _read_file(Path(text).expanduser(), what)
    return _decode_base64(text, what)


def _looks_like_path(text: str) -> bool:
    try:
        return Path(text).expanduser().is_file()
    except (OSError, ValueError):
        return False


def _read_file(path: Path, what: str) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_INPUT_BYTES:
            raise ValidationError(f"novelai: {what} file is {size} bytes; the limit is {MAX_INPUT_BYTES}")
        return path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"novelai: cannot read {what} file {path.name!r}: {exc.strerror}") from None


def _decode_base64(text: str, what: str) -> bytes:
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(
            f"novelai: {what} is neither an existing file nor valid base64",
            hint="pass a path to a PNG/JPEG/WebP file, raw bytes, or standard base64",
        ) from None


def load_image(value: object, what: str) -> InputImage:
    """Read and check one input image.

    Args:
        value: Bytes, :class:`~imagestream.ImageData`, a path, base64 text or a data URL.
        what: The option's name, for messages.

    Raises:
        ConfigurationError: The value cannot be read.
        ValidationError: It is not a PNG, JPEG or WebP image, or is too large.
    """
    raw = _raw_bytes(value, what)
    if len(raw) > MAX_INPUT_BYTES:
        raise ValidationError(f"novelai: {what} is {len(raw)} bytes; the limit is {MAX_INPUT_BYTES}")
    data = ImageData.from_bytes(raw)
    mime = data.mime_type
    if mime not in _IMAGE_TYPES:
        raise ValidationError(
            f"novelai: {what} is not a PNG, JPEG or WebP image",
            hint="NovelAI takes PNG (recommended), JPEG or WebP input images",
        )
    size = data.size
    return InputImage(
        b64=data.b64,
        mime_type=mime,
        width=size[0] if size else None,
        height=size[1] if size else None,
    )


def load_base64(value: object, what: str) -> str:
    """Opaque binary data (an encoded vibe) as base64, without an image check."""
    raw = _raw_bytes(value, what)
    if not raw:
        raise ConfigurationError(f"novelai: {what} is empty")
    if len(raw) > MAX_INPUT_BYTES:
        raise ValidationError(f"novelai: {what} is {len(raw)} bytes; the limit is {MAX_INPUT_BYTES}")
    return ImageData.from_bytes(raw).b64
