"""Recognise image formats from their first bytes, and read dimensions from headers.

Only headers are read: nothing here decodes pixels, so checking a 20 MB PNG
costs the same as checking a 2 KB one.
"""

from __future__ import annotations

import struct

__all__ = ["EXTENSIONS", "image_size", "sniff_mime"]

EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
}
"""File extension for each image type imagestream recognises."""

_PNG = b"\x89PNG\r\n\x1a\n"


def sniff_mime(data: bytes | memoryview) -> str | None:
    """Return the image MIME type that ``data`` starts with, or ``None``."""
    head = bytes(data[:16])
    if head.startswith(_PNG):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


def image_size(data: bytes, mime: str | None = None) -> tuple[int, int] | None:
    """Return ``(width, height)`` read from the header, or ``None`` if unreadable."""
    mime = mime or sniff_mime(data)
    try:
        if mime == "image/png":
            return _png_size(data)
        if mime == "image/jpeg":
            return _jpeg_size(data)
        if mime == "image/webp":
            return _webp_size(data)
        if mime == "image/gif":
            return _gif_size(data)
    except (struct.error, IndexError, ValueError):
        return None
    return None


def _png_size(data: bytes) -> tuple[int, int] | None:
    # The IHDR chunk must come first: length(4) "IHDR" width(4) height(4).
    if data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _gif_size(data: bytes) -> tuple[int, int]:
    width, height = struct.unpack("<HH", data[6:10])
    return width, height


def _webp_size(data: bytes) -> tuple[int, int] | None:
    kind = data[12:16]
    if kind == b"VP8 ":
        # Lossy: frame tag (3) + start code (3), then 14-bit width and height.
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if kind == b"VP8L":
        # Lossless: signature byte 0x2f, then 14-bit width-1 and height-1.
        if len(data) < 25 or data[20] != 0x2F:
            return None
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8X":
        # Extended: 24-bit canvas width-1 and height-1.
        if len(data) < 30:
            return None
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    return None


# JPEG start-of-frame markers carry the size; C4, C8 and CC are not frames.
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    pos = 2
    end = len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length field
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _SOF:
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        pos += 2 + length
    return None
