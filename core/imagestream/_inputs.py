"""Input images for edits and image-to-image: whatever the caller has, read and sniffed once.

A caller may hold bytes, an :class:`~imagestream.ImageData`, a file path (on
the command line, only text: ``-o image photo.png``), base64 text from another
API, or a ``data:`` URL. :func:`load_input_image` accepts all of them, reads a
file once, checks the magic bytes and reads the dimensions from the header,
so a typo or a wrong file fails before any request is sent.
"""

from __future__ import annotations

import binascii
import os
from collections.abc import Collection
from pathlib import Path

import attrs

from ._base64 import decode_base64
from ._image import ImageData
from ._sniff import EXTENSIONS, image_size, sniff_mime
from .errors import ConfigurationError, ValidationError

__all__ = [
    "DEFAULT_INPUT_TYPES",
    "MAX_INPUT_BYTES",
    "InputImage",
    "load_input_image",
    "load_input_images",
]

MAX_INPUT_BYTES = 50 * 2**20
"""Default cap of one input image (decoded bytes)."""

DEFAULT_INPUT_TYPES = frozenset({"image/png", "image/jpeg", "image/webp"})
"""Image types accepted unless a provider says otherwise."""

# Base64 of any real image is far longer than a path: shorter text naming an
# existing file is a path.
_PATH_LIKE_MAX = 4096


@attrs.frozen(repr=False)
class InputImage:
    """One input image, read and checked.

    Attributes:
        image: The payload (bytes, or base64 as given; converted once if needed).
        mime_type: Sniffed from the magic bytes.
        width: From the header, when readable.
        height: From the header, when readable.
        filename: The file's name, or ``image.<ext>`` for data given in memory
            (multipart uploads need one).
    """

    image: ImageData
    mime_type: str
    width: int | None = None
    height: int | None = None
    filename: str = "image.png"

    @property
    def data(self) -> bytes:
        """The image bytes."""
        return self.image.data

    @property
    def b64(self) -> str:
        """Standard base64 of the bytes, without line breaks."""
        return self.image.b64

    @property
    def data_url(self) -> str:
        """A ``data:<type>;base64,...`` URL of the image."""
        return f"data:{self.mime_type};base64,{self.image.b64}"

    @property
    def size(self) -> tuple[int, int] | None:
        """``(width, height)`` when the header was readable."""
        if self.width is None or self.height is None:
            return None
        return self.width, self.height

    @property
    def nbytes(self) -> int:
        """Size in bytes."""
        return self.image.nbytes

    def __repr__(self) -> str:
        size = f" {self.width}x{self.height}" if self.size else ""
        return f"InputImage({self.filename!r}, {self.mime_type}{size}, {self.nbytes} bytes)"


def _read_file(path: Path, what: str, provider: str, max_bytes: int) -> bytes:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ValidationError(
                f"{provider}: {what} file is {size} bytes; the limit is {max_bytes}"
            )
        with path.open("rb") as handle:
            return handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise ConfigurationError(f"{provider}: {what}: no such file: {str(path)!r}") from None
    except OSError as exc:
        raise ConfigurationError(
            f"{provider}: cannot read {what} file {path.name!r}: {exc.strerror}"
        ) from None


def _looks_like_file(text: str) -> bool:
    try:
        return Path(text).expanduser().is_file()
    except (OSError, ValueError):
        return False


def _from_text(text: str, what: str, provider: str, max_bytes: int) -> tuple[ImageData, str | None]:
    text = text.strip()
    if text.startswith("data:"):
        # data:image/png;base64,AAAA -> the part after the comma.
        header, _, payload = text.partition(",")
        if ";base64" not in header:
            raise ConfigurationError(f"{provider}: {what} is a data: URL that is not base64")
        return _from_base64(payload, what, provider), None
    if len(text) < _PATH_LIKE_MAX and _looks_like_file(text):
        path = Path(text).expanduser()
        return ImageData.from_bytes(_read_file(path, what, provider, max_bytes)), path.name
    try:
        return _from_base64(text, what, provider), None
    except ConfigurationError:
        if len(text) < _PATH_LIKE_MAX:
            raise ConfigurationError(
                f"{provider}: {what}: no such file: {text!r} (nor is it base64 image data)",
                hint="pass a path to a PNG/JPEG/WebP file, raw bytes, base64 or a data: URL",
            ) from None
        raise


def _from_base64(text: str, what: str, provider: str) -> ImageData:
    try:
        # Decoded here, once: the sniffing below needs the bytes anyway, and
        # invalid base64 must fail now, not halfway through a request.
        return ImageData(raw_bytes=decode_base64(text), raw_b64=text)
    except (binascii.Error, ValueError):
        raise ConfigurationError(
            f"{provider}: {what} is neither an existing file nor valid base64",
            hint="pass a path to a PNG/JPEG/WebP file, raw bytes, base64 or a data: URL",
        ) from None


def load_input_bytes(
    value: object,
    what: str = "input",
    *,
    provider: str,
    max_bytes: int = MAX_INPUT_BYTES,
) -> tuple[ImageData, str | None]:
    """Read opaque input data (no image check): the payload and the file name, if it came from one.

    Takes the same forms as :func:`load_input_image`; for data a service
    made itself (an encoded style reference, a mask in a private format).

    Raises:
        ConfigurationError: The value cannot be read, or is empty.
        ValidationError: It is larger than ``max_bytes``.
    """
    filename: str | None = None
    if isinstance(value, InputImage):
        image, filename = value.image, value.filename
    elif isinstance(value, ImageData):
        image = value
    elif isinstance(value, bytes | bytearray | memoryview):
        image = ImageData.from_bytes(value)
    elif isinstance(value, os.PathLike):
        path = Path(os.fspath(value)).expanduser()
        image = ImageData.from_bytes(_read_file(path, what, provider, max_bytes))
        filename = path.name
    elif isinstance(value, str):
        image, filename = _from_text(value, what, provider, max_bytes)
    else:
        raise ConfigurationError(
            f"{provider}: {what} must be a file path, bytes, base64 or a data: URL, "
            f"not {type(value).__name__}"
        )
    if image.nbytes > max_bytes:
        raise ValidationError(
            f"{provider}: {what} is {image.nbytes} bytes; the limit is {max_bytes}"
        )
    if image.nbytes == 0:
        raise ConfigurationError(f"{provider}: {what} is empty")
    return image, filename


def load_input_image(
    value: object,
    what: str = "image",
    *,
    provider: str,
    max_bytes: int = MAX_INPUT_BYTES,
    types: Collection[str] = DEFAULT_INPUT_TYPES,
) -> InputImage:
    """Read and check one input image.

    Args:
        value: Bytes, an :class:`~imagestream.ImageData`, a path (``str`` or
            :class:`os.PathLike`), base64 text or a ``data:`` URL.
        what: The option's name, for messages.
        provider: The provider's name, which starts every message.
        max_bytes: Largest image accepted.
        types: MIME types accepted.

    Raises:
        ConfigurationError: The value cannot be read (no such file, not
            base64, a type that is none of the above).
        ValidationError: It is not an accepted image type, or too large.
    """
    image, filename = load_input_bytes(value, what, provider=provider, max_bytes=max_bytes)
    head = image.head(64)
    mime = sniff_mime(head)
    if mime is None or mime not in types:
        names = ", ".join(sorted(EXTENSIONS.get(t, t) for t in types)).upper()
        found = f" (it looks like {mime})" if mime else ""
        raise ValidationError(f"{provider}: {what} is not a {names} image{found}")
    size = image_size(image.data, mime)
    return InputImage(
        image=image,
        mime_type=mime,
        width=size[0] if size else None,
        height=size[1] if size else None,
        filename=filename or f"image.{EXTENSIONS.get(mime, 'png')}",
    )


def load_input_images(
    value: object,
    what: str = "image",
    *,
    provider: str,
    max_bytes: int = MAX_INPUT_BYTES,
    types: Collection[str] = DEFAULT_INPUT_TYPES,
) -> tuple[InputImage, ...]:
    """One input image or a list of them (each read by :func:`load_input_image`).

    Raises:
        ConfigurationError: An empty list, or an item that cannot be read.
        ValidationError: An item that is not an accepted image, or too large.
    """
    items = list(value) if isinstance(value, list | tuple) else [value]
    if not items:
        raise ConfigurationError(f"{provider}: {what} is an empty list")
    return tuple(
        load_input_image(
            item,
            f"{what}[{number}]" if len(items) > 1 else what,
            provider=provider,
            max_bytes=max_bytes,
            types=types,
        )
        for number, item in enumerate(items)
    )
