"""``ImageData``: one image payload, as bytes or base64, converted lazily and once."""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ._base64 import (
    Base64Error,
    Base64Pieces,
    base64_head,
    base64_tail,
    canonical_base64,
    decode_base64,
    decoded_size,
    encode_base64,
    encode_base64_bytes,
)
from ._sniff import image_size, sniff_mime
from .errors import ConfigurationError, ImageValidationError

if TYPE_CHECKING:
    from types import ModuleType

    from PIL.Image import Image as PILImage

__all__ = ["ImageData"]

# Format names Pillow knows under another spelling (everything else: upper case).
_PIL_FORMATS = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF"}


def _pillow(what: str) -> ModuleType:
    """``PIL.Image``, imported only when asked for: Pillow is optional."""
    try:
        from PIL import Image
    except ImportError:
        raise ConfigurationError(
            f"ImageData.{what} needs Pillow, which is not installed", hint="pip install pillow"
        ) from None
    return Image


@attrs.define(frozen=True, slots=True, eq=False, repr=False)
class ImageData:
    """An image payload exactly as it arrived: raw bytes or a base64 string.

    Providers wrap what the wire gave them (``ImageData.from_base64(b64)`` for
    JSON, ``ImageData.from_bytes(raw)`` for msgpack or files) and pass it on
    untouched. The other form is computed only when someone asks for it, and
    then only once: a 2 MB base64 image that is only relayed is never decoded,
    and one that is saved is decoded exactly once.

    Canonical base64 is decoded in one strict pass. The forms servers also
    send are accepted and normalised: lines wrapped with ``\\n`` or ``\\r\\n``,
    the URL-safe alphabet (``-_``), missing padding and a
    ``data:image/...;base64,`` prefix. Anything else (a stray character,
    both alphabets at once, ``=`` inside the data) raises
    :class:`~imagestream.ImageValidationError` naming the fault and its offset.
    :attr:`b64` always gives the canonical form.

    Attributes:
        declared_mime_type: The type the provider said it sent, if it said.
    """

    _bytes: bytes | None = attrs.field(alias="raw_bytes", default=None)
    _b64: str | None = attrs.field(alias="raw_b64", default=None)
    declared_mime_type: str | None = None
    _pieces: Base64Pieces | None = attrs.field(alias="raw_pieces", default=None, kw_only=True)

    @classmethod
    def from_bytes(
        cls, data: bytes | bytearray | memoryview, mime_type: str | None = None
    ) -> ImageData:
        """Wrap raw image bytes."""
        return cls(raw_bytes=bytes(data), declared_mime_type=mime_type)

    @classmethod
    def from_base64(cls, b64: str | bytes, mime_type: str | None = None) -> ImageData:
        """Wrap a base64 string, decoded only when needed (the forms above are accepted).

        A ``data:image/png;base64,`` prefix declares the type when
        ``mime_type`` is not given.
        """
        if isinstance(b64, bytes):
            b64 = b64.decode("ascii", "replace")
        if mime_type is None and b64[:5].lower() == "data:":
            declared = b64[5:256].partition(";")[0].strip().lower()
            mime_type = declared if declared.startswith("image/") else None
        return cls(raw_b64=b64, declared_mime_type=mime_type)

    @classmethod
    def from_base64_pieces(
        cls,
        pieces: Iterable[bytes | bytearray | memoryview | tuple[bytes, int, int]] | Base64Pieces,
        mime_type: str | None = None,
    ) -> ImageData:
        """Wrap base64 that arrived in pieces of bytes, without joining them.

        For a decoder that reads a multi-megabyte image out of a stream: each
        piece is a ``bytes`` object, or ``(buffer, start, end)`` for the text
        ``buffer[start:end]`` without slicing it. Nothing is copied here.
        When the bytes are first needed the pieces are decoded one after
        another into one buffer and each is let go once decoded, so the whole
        base64 and the whole image are never held at once. The result, and
        every error, is what :meth:`from_base64` gives for the joined text
        read as UTF-8 (as in the JSON string it came from: bytes that are not
        UTF-8 read as U+FFFD).

        ``pieces`` may also be what :meth:`base64_receiver` made, filled as
        the text arrived.
        """
        held = pieces if isinstance(pieces, Base64Pieces) else Base64Pieces(pieces)
        held.close()
        if mime_type is None:
            head = held.head_text(256)
            if head[:5].lower() == "data:":
                declared = head[5:].partition(";")[0].strip().lower()
                mime_type = declared if declared.startswith("image/") else None
        return cls(raw_pieces=held, declared_mime_type=mime_type)

    @staticmethod
    def base64_receiver(*, decode_early: bool = True) -> Base64Pieces:
        """An empty holder for base64 still arriving: ``add(buffer, start, end)`` each piece.

        Hand it to :meth:`from_base64_pieces` once the text is complete.
        With ``decode_early`` (an image that will be saved, say), each piece
        is decoded as it is added and let go at once, so a streamed image
        never holds its base64 and its bytes together: with pybase64 (the
        ``fast`` extra) from the first piece, with the standard library once
        4 MiB of text has arrived (a smaller image may never be needed, and
        binascii is slow). Without it (a preview that may only be shown) the
        pieces are kept (not copied) and decoded when the bytes are first
        needed, as :meth:`from_base64_pieces` does. The image reads the same
        either way, errors included. A caller that has just scanned a piece
        adds it with ``ascii_line=True`` when it is ASCII without a line
        feed: its sizes and ends are then read without a second scan.
        """
        return Base64Pieces(decode_early=decode_early)

    @property
    def data(self) -> bytes:
        """The image bytes (decoded from base64 on first access, then cached)."""
        if self._bytes is None:
            pieces = self._pieces
            if pieces is not None:
                try:
                    decoded = pieces.decode()
                except (Base64Error, ValueError) as exc:
                    raise ImageValidationError(
                        f"image payload is not valid base64: {exc}"
                    ) from None
                # The pieces are gone; what is left of them (the last group's
                # text, for b64) is small and stays.
                object.__setattr__(self, "_bytes", decoded)
                return decoded
            try:
                decoded = decode_base64(self._b64 or "")
            except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
                raise ImageValidationError(f"image payload is not valid base64: {exc}") from None
            object.__setattr__(self, "_bytes", decoded)
            return decoded
        return self._bytes

    @property
    def b64(self) -> str:
        """The payload as canonical base64 (encoded on first access if it came as bytes).

        Base64 that came in another accepted form is normalised once (and kept
        instead); canonical text costs a few scans and no copy.
        """
        if self._b64 is None:
            if self._pieces is not None:
                text = canonical_base64(self._pieces.text())
                object.__setattr__(self, "_b64", text)
                object.__setattr__(self, "_pieces", None)
                return text
            encoded = encode_base64(self._bytes or b"")
            object.__setattr__(self, "_b64", encoded)
            return encoded
        canonical = canonical_base64(self._b64)
        if canonical is not self._b64:
            object.__setattr__(self, "_b64", canonical)
        return canonical

    def b64_bytes(self) -> bytes:
        """The payload as base64 ASCII bytes, for writing to a socket.

        Unlike :attr:`b64` nothing is cached: a relay that only forwards an
        image keeps no second, base64 copy of it alive.
        """
        if self._b64 is not None:
            return self.b64.encode("ascii")
        if self._pieces is not None and self._bytes is None:
            joined = self._pieces.canonical_bytes()
            return joined if joined is not None else self.b64.encode("ascii")
        return encode_base64_bytes(self._bytes or b"")

    @property
    def arrived_as_base64(self) -> bool:
        """True when the provider sent base64 (and bytes may not be decoded yet)."""
        return (self._b64 is not None or self._pieces is not None) and self._bytes is None

    @property
    def nbytes(self) -> int:
        """Size of the decoded image in bytes, computed without decoding."""
        if self._bytes is not None:
            return len(self._bytes)
        if self._pieces is not None:
            return self._pieces.decoded_size()
        return decoded_size(self._b64 or "")

    def head(self, n: int = 32) -> bytes:
        """The first ``n`` bytes (at most), decoding only what that needs."""
        if self._bytes is not None:
            return self._bytes[:n]
        if self._pieces is not None:
            return self._pieces.head(n)
        return base64_head(self._b64 or "", n)

    def tail(self, n: int = 32) -> bytes:
        """The last ``n`` bytes (at most), decoding only what that needs."""
        if self._bytes is not None:
            return self._bytes[-n:] if n > 0 else b""
        if self._pieces is not None:
            return self._pieces.tail(n)
        return base64_tail(self._b64 or "", n)

    @property
    def mime_type(self) -> str | None:
        """The type sniffed from the magic bytes, else the declared one."""
        return sniff_mime(self.head(16)) or self.declared_mime_type

    @property
    def size(self) -> tuple[int, int] | None:
        """``(width, height)`` read from the image header (decodes the payload)."""
        return image_size(self.data)

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the image bytes."""
        return hashlib.sha256(self.data).hexdigest()

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the image atomically and return the path written.

        An existing file is never replaced unless ``overwrite``: the next free
        name (``name-1.png``, ...) is used instead.
        """
        from ._saving import write_atomic

        return write_atomic(Path(path), self.data, overwrite=overwrite)

    @classmethod
    def from_pil(cls, image: PILImage, format: str | None = None) -> ImageData:
        """Encode a Pillow image (Pillow is an optional dependency).

        Args:
            image: A ``PIL.Image.Image``.
            format: ``"png"``, ``"jpeg"``, ``"webp"``, ... (a MIME type such as
                ``"image/jpeg"`` works too). ``None``: the format the image
                was opened from (``image.format``), else PNG.

        Raises:
            ConfigurationError: Pillow is not installed, or it cannot write
                this image in ``format`` (an unknown format, or a mode the
                format has no room for, such as RGBA as JPEG).
            TypeError: ``image`` is not a Pillow image.
        """
        pil = _pillow("from_pil()")
        if not isinstance(image, pil.Image):
            raise TypeError(f"from_pil() needs a PIL.Image.Image, not {type(image).__name__}")
        wanted = format or image.format or "PNG"
        name = _PIL_FORMATS.get(wanted.lower().removeprefix("image/"), wanted.upper())
        import io

        out = io.BytesIO()
        try:
            image.save(out, format=name)
        except (KeyError, OSError, ValueError) as exc:
            raise ConfigurationError(
                f"Pillow cannot write this {image.mode} image as {wanted!r}: {exc}",
                hint="pick another format (png keeps every mode), or convert the image first",
            ) from None
        return cls.from_bytes(out.getvalue(), mime_type=pil.MIME.get(name))

    def to_pil(self) -> PILImage:
        """Open the image with Pillow (an optional dependency).

        Raises:
            ConfigurationError: Pillow is not installed (``pip install pillow``).
            ImageValidationError: Pillow cannot read the payload.
        """
        pil = _pillow("to_pil()")
        import io

        try:
            image: PILImage = pil.open(io.BytesIO(self.data))
        except (OSError, ValueError) as exc:  # UnidentifiedImageError is an OSError
            raise ImageValidationError(f"Pillow cannot read this image: {exc}") from None
        return image

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ImageData):
            return NotImplemented
        if self._b64 is not None and self._b64 == other._b64:
            return True  # same text, same bytes: skip decoding
        return self.data == other.data

    def __hash__(self) -> int:
        return hash(self.data)

    def __repr__(self) -> str:
        form = "base64" if self.arrived_as_base64 else "bytes"
        return f"ImageData({self.mime_type or 'unknown type'}, {self.nbytes} bytes, as {form})"

    def __getstate__(self) -> dict[str, Any]:
        b64 = self._b64
        if b64 is None and self._bytes is None and self._pieces is not None:
            b64 = self._pieces.text()
        return {"b": self._bytes, "s": b64, "m": self.declared_mime_type}

    def __setstate__(self, state: dict[str, Any]) -> None:
        object.__setattr__(self, "_bytes", state["b"])
        object.__setattr__(self, "_b64", state["s"])
        object.__setattr__(self, "declared_mime_type", state["m"])
        object.__setattr__(self, "_pieces", None)
