"""Input images for edits (``image`` and ``mask`` options): checked early, read late.

A path is checked when the request is validated (it exists, is small enough,
starts with PNG/JPEG/WebP magic bytes) so that a typo fails before any
network call; its bytes are read only when the request is built.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import attrs

from imagestream import ImageData
from imagestream.errors import ConfigurationError, ValidationError

__all__ = ["InputImage", "input_images"]

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def _sniff(head: bytes) -> str | None:
    for magic, mime in _MAGIC:
        if head.startswith(magic):
            return mime
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def _png_size(head: bytes) -> tuple[int, int] | None:
    # Width and height are the first fields of IHDR, right after the signature.
    if len(head) >= 24 and head.startswith(b"\x89PNG"):
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    return None


@attrs.frozen(repr=False)
class InputImage:
    """One image to send: a file (read when needed) or bytes already in memory.

    Attributes:
        source: The file, or the bytes.
        mime_type: Sniffed from the magic bytes.
        size: Bytes on disk or in memory.
        dimensions: ``(width, height)`` for PNGs (the DALL·E 2 square rule), else ``None``.
    """

    source: Path | bytes
    mime_type: str
    size: int
    dimensions: tuple[int, int] | None = None

    @property
    def filename(self) -> str:
        """A file name for the multipart part (the server looks at its extension)."""
        if isinstance(self.source, Path):
            return self.source.name
        return f"image.{_EXTENSIONS.get(self.mime_type, 'png')}"

    async def read(self) -> bytes:
        """The image bytes (files are read off the event loop)."""
        if isinstance(self.source, Path):
            return await asyncio.to_thread(self.source.read_bytes)
        return self.source

    def __repr__(self) -> str:
        where = str(self.source) if isinstance(self.source, Path) else "bytes"
        return f"InputImage({where}, {self.mime_type}, {self.size} bytes)"


def _one(value: Any, what: str, max_bytes: int) -> InputImage:
    if isinstance(value, ImageData):
        value = value.data
    source: Path | bytes
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        head, size, source = data[:32], len(data), data
    elif isinstance(value, (str, os.PathLike)):
        path = Path(value).expanduser()
        if not path.is_file():
            raise ConfigurationError(f"{what}: no such file: {str(path)!r}")
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(32)
        source = path
    else:
        raise ConfigurationError(
            f"{what} must be a file path or image bytes, not {type(value).__name__}"
        )
    mime = _sniff(head)
    if mime is None:
        raise ValidationError(f"{what} is not a PNG, JPEG or WebP image")
    if size > max_bytes:
        raise ValidationError(f"{what} is {size} bytes; the limit is {max_bytes} bytes")
    return InputImage(source, mime, size, _png_size(head))


def input_images(value: Any, what: str, max_bytes: int) -> tuple[InputImage, ...]:
    """Check the ``image`` (or ``mask``) option: one image or a list of them."""
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise ConfigurationError(f"{what} is an empty list")
    return tuple(
        _one(item, f"{what}[{number}]" if len(items) > 1 else what, max_bytes)
        for number, item in enumerate(items)
    )
