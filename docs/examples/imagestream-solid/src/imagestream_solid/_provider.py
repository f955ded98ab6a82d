"""The ``solid`` provider: the whole image in the colour the prompt names."""

from __future__ import annotations

import asyncio
import re
import struct
import zlib
from collections.abc import AsyncIterator

import attrs

from imagestream import (
    Chunk,
    ConfigurationError,
    ImageData,
    ImageFinal,
    ImagePreview,
    ImageRequest,
    ModelInfo,
    Provider,
    RunContext,
    TextDelta,
    ValidationError,
)

__all__ = ["SolidProvider", "encode_png"]

RGB = tuple[int, int, int]

COLOURS: dict[str, RGB] = {
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "grey": (128, 128, 128),
    "red": (255, 0, 0),
    "orange": (255, 165, 0),
    "yellow": (255, 255, 0),
    "green": (0, 160, 0),
    "blue": (0, 0, 255),
    "purple": (128, 0, 128),
}
HEX = re.compile(r"#([0-9a-fA-F]{6})\b")
WORD = re.compile(r"[a-z]+")

DEFAULT_SIZE = (256, 256)
MAX_SIDE = 2048
MAX_N = 4
PREVIEWS = 3


def find_colour(prompt: str) -> tuple[str, RGB] | None:
    """The first ``#rrggbb`` or colour word in ``prompt``, with its RGB value."""
    match = HEX.search(prompt)
    if match:
        value = int(match[1], 16)
        return match[0].lower(), (value >> 16, (value >> 8) & 0xFF, value & 0xFF)
    for word in WORD.findall(prompt.lower()):
        if word in COLOURS:
            return word, COLOURS[word]
    return None


def encode_png(width: int, height: int, rgb: RGB) -> bytes:
    """A PNG of one colour, made with the standard library only."""

    def section(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    # 8 bits per channel, colour type 2 (RGB), no interlacing.
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    # Each row starts with its filter type (0: none), then the pixels.
    row = b"\x00" + bytes(rgb) * width
    pixels = zlib.compress(row * height)
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + section(b"IHDR", header) + section(b"IDAT", pixels) + section(b"IEND", b"")


def blend(start: RGB, end: RGB, amount: float) -> RGB:
    """The colour ``amount`` (0..1) of the way from ``start`` to ``end``."""
    r, g, b = (round(s + (e - s) * amount) for s, e in zip(start, end, strict=True))
    return r, g, b


class SolidProvider(Provider):
    """Paints the whole image in one colour, fading in over three previews."""

    name = "solid"
    description = "offline example: one colour, named in the prompt"
    models = (
        ModelInfo("solid-1", "three previews fade in, then the colour", streams_previews=True),
    )
    default_model = "solid-1"

    def validate(self, request: ImageRequest) -> ImageRequest:
        """Refuse what this provider cannot do, before any work; fill in defaults."""
        if request.model not in (None, "solid-1"):
            raise ConfigurationError(
                f"solid: unknown model {request.model!r}", hint="the only model is solid-1"
            )
        if request.options:
            unknown = ", ".join(sorted(request.options))
            raise ConfigurationError(f"solid: unknown option(s) {unknown}", hint="it takes none")
        if request.output_format not in (None, "png"):
            raise ConfigurationError(
                f"solid: cannot write {request.output_format!r}", hint="solid writes png only"
            )
        width, height = request.dimensions or DEFAULT_SIZE  # a size that is not WxH raises here
        if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
            raise ConfigurationError(
                f"solid: size {width}x{height} out of range",
                hint=f"each side must be 1..{MAX_SIDE}",
            )
        if not 1 <= request.n <= MAX_N:
            raise ConfigurationError(f"solid: n must be 1..{MAX_N}, not {request.n}")
        if find_colour(request.prompt) is None:
            raise ValidationError(
                "solid: the prompt names no colour",
                hint=f"name one of {', '.join(COLOURS)}, or give #rrggbb",
            )
        model = request.model or self.default_model
        return attrs.evolve(request, model=model, size=f"{width}x{height}")

    async def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Chunk]:
        """A caption, then for each image three previews and the final PNG."""
        width, height = request.dimensions or DEFAULT_SIZE
        found = find_colour(request.prompt)
        assert found is not None  # validate() made sure
        name, rgb = found
        yield TextDelta(f"{width}x{height}, all {name}")
        for sample in range(request.n):
            for index in range(PREVIEWS):
                shade = blend(COLOURS["white"], rgb, (index + 1) / (PREVIEWS + 1))
                # Encoding a large image takes a while: do it off the event loop.
                data = await asyncio.to_thread(encode_png, width, height, shade)
                yield ImagePreview(
                    ImageData.from_bytes(data, "image/png"),
                    index=index,
                    sample=sample,
                    mime_type="image/png",
                    width=width,
                    height=height,
                )
            data = await asyncio.to_thread(encode_png, width, height, rgb)
            yield ImageFinal(
                ImageData.from_bytes(data, "image/png"),
                sample=sample,
                mime_type="image/png",
                width=width,
                height=height,
            )
