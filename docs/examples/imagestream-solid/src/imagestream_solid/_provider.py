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
from imagestream.provider import Options, Prepared, read_choice, read_integer

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
# The options it takes, with what they do: any other name is refused.
OPTIONS = {"previews": "how many previews fade in before the final image (0..8)"}


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


@attrs.frozen
class Settings:
    """What ``validate`` read from a request, handed to ``stream`` (parse once)."""

    colour: str
    rgb: RGB
    width: int
    height: int
    previews: int


class SolidProvider(Provider):
    """Paints the whole image in one colour, fading in over a few previews."""

    name = "solid"
    description = "offline example: one colour, named in the prompt"
    models = (ModelInfo("solid-1", "previews fade in, then the colour", streams_previews=True),)
    default_model = "solid-1"

    def validate(self, request: ImageRequest) -> Prepared:
        """Refuse what this provider cannot do, before any work; read the request once."""
        # ConfigurationError for what cannot be read: an unknown model or
        # format, a misspelt option, a size that is not WIDTHxHEIGHT.
        model = read_choice(
            request.model or self.default_model, "model", ["solid-1"], provider=self.name
        )
        output_format = read_choice(
            request.output_format or "png", "output_format", ["png"], provider=self.name
        )
        options = Options(request.options, provider=self.name, known=OPTIONS)
        width, height = request.dimensions or DEFAULT_SIZE
        # ValidationError for what is read but refused: numbers out of range, a
        # prompt that names no colour.
        read_integer(width, "width", provider=self.name, low=1, high=MAX_SIDE)
        read_integer(height, "height", provider=self.name, low=1, high=MAX_SIDE)
        read_integer(request.n, "n", provider=self.name, low=1, high=MAX_N)
        found = find_colour(request.prompt)
        if found is None:
            raise ValidationError(
                "solid: the prompt names no colour",
                hint=f"name one of {', '.join(COLOURS)}, or give #rrggbb",
            )
        settings = Settings(
            colour=found[0],
            rgb=found[1],
            width=width,
            height=height,
            previews=options.integer("previews", 3, low=0, high=8),
        )
        # Requests are frozen: evolve() makes the copy that later steps (and
        # the analytics) see, with the model and size really used.
        request = attrs.evolve(
            request, model=model, output_format=output_format, size=f"{width}x{height}"
        )
        return Prepared(request, settings)

    async def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Chunk]:
        """A caption, then for each image its previews and the final PNG."""
        # What validate() read; a caller that skipped validate() gets it read now.
        settings = context.prepared_as(Settings) or self.validate(request).settings
        width, height, rgb = settings.width, settings.height, settings.rgb
        yield TextDelta(f"{width}x{height}, all {settings.colour}")
        for sample in range(request.n):
            for index in range(settings.previews):
                shade = blend(COLOURS["white"], rgb, (index + 1) / (settings.previews + 1))
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
