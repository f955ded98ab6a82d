"""Recognise image formats from their first bytes, read dimensions from headers,
and tell a whole image from a truncated one by its last bytes.

Only headers and ends are read: nothing here decodes pixels, so checking a
20 MB PNG costs the same as checking a 2 KB one.
"""

from __future__ import annotations

import struct

__all__ = [
    "EXTENSIONS",
    "MAX_JPEG_PADDING",
    "TAIL_BYTES",
    "image_size",
    "incompleteness",
    "is_complete",
    "sniff_mime",
]

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


# -- whole or truncated -------------------------------------------------------

_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # an empty IEND chunk, CRC included
_JPEG_EOI = b"\xff\xd9"
_JPEG_PADDING = b"\x00 \t\r\n\x0b\x0c"

MAX_JPEG_PADDING = 4096
"""Bytes of padding (``0x00`` or ASCII whitespace) accepted after a JPEG's EOI marker.

Some encoders and tools pad a JPEG to a block size, or end it with a newline;
anything else after EOI (or more padding than this) counts as incomplete.
"""

TAIL_BYTES = MAX_JPEG_PADDING + len(_JPEG_EOI)
"""How many of the last bytes :func:`incompleteness` may need to see."""


def incompleteness(head: bytes, tail: bytes, size: int, mime: str) -> str | None:
    """Why an image of type ``mime`` does not end where its format ends it, or ``None``.

    Args:
        head: Its first bytes (at least 12; only WebP needs them).
        tail: Its last bytes (up to :data:`TAIL_BYTES`; fewer if the image is
            shorter).
        size: Its length in bytes.
        mime: Its sniffed type.

    The checks, each on a few bytes: a PNG ends with an empty ``IEND`` chunk;
    a JPEG with the EOI marker ``ff d9``, then at most :data:`MAX_JPEG_PADDING`
    bytes of ``00`` or whitespace; a WebP's RIFF header gives the length of
    the rest of the file (one padding byte more is accepted); a GIF ends with
    its trailer ``3b`` (``;``). Types other than these four have nothing to
    check (``None``).
    """
    if mime == "image/png":
        if tail[-12:] != _PNG_END:
            return "it does not end with the IEND chunk"
        return None
    if mime == "image/jpeg":
        body = tail.rstrip(_JPEG_PADDING)
        if not body.endswith(_JPEG_EOI) or len(tail) - len(body) > MAX_JPEG_PADDING:
            return "it does not end with the EOI marker (ff d9)"
        return None
    if mime == "image/webp":
        if len(head) < 12 or head[:4] != b"RIFF":
            return "its RIFF header is cut short"
        promised = int.from_bytes(head[4:8], "little") + 8
        if size not in (promised, promised + 1):
            return f"its RIFF header gives {promised} bytes"
        return None
    if mime == "image/gif":
        if not tail.endswith(b";"):
            return "it does not end with the trailer byte (3b)"
        return None
    return None


def is_complete(data: bytes | memoryview, mime: str | None = None) -> bool:
    """True if ``data`` is a PNG, JPEG, WebP or GIF image that ends where its format says.

    Only the first and last bytes are read (see :func:`incompleteness` for
    the checks); nothing is decoded. Data of no type imagestream recognises
    is not a complete image: ``False``.
    """
    mime = mime or sniff_mime(data)
    if mime not in EXTENSIONS:
        return False
    head = bytes(data[:16])
    tail = bytes(data[-TAIL_BYTES:]) if len(data) else b""
    return incompleteness(head, tail, len(data), mime) is None
