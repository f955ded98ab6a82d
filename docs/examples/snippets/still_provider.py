"""A provider that cannot stream: it implements ``generate`` only."""

from __future__ import annotations

import asyncio

from imagestream import ImageData, ImageFinal, ImageRequest, Provider, ProviderResponse, RunContext
from imagestream_solid import encode_png


class StillProvider(Provider):
    """Returns one green square; the core streams it."""

    name = "still"
    description = "example: generate only, streamed by the core"

    async def generate(self, request: ImageRequest, context: RunContext) -> ProviderResponse:
        data = await asyncio.to_thread(encode_png, 32, 32, (0, 160, 0))
        image = ImageFinal(ImageData.from_bytes(data, "image/png"), mime_type="image/png")
        return ProviderResponse(images=[image], text="a green square")
