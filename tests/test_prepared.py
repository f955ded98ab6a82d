"""Parse once: what validate prepares reaches stream and generate through the run's context."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import ClassVar

import attrs

from imagestream import ImageData, ImageFinal, Pipeline, TextDelta
from imagestream.provider import (
    Chunk,
    ImageRequest,
    Prepared,
    Provider,
    ProviderResponse,
    RunContext,
)
from imagestream.testing import make_png

# A run asks for an image: one that ends without any is a NoImageError.
FINAL = ImageFinal(image=ImageData.from_bytes(make_png(), "image/png"))


@attrs.frozen
class Settings:
    word: str


class Parsing(Provider):
    name: ClassVar[str] = "parsing"
    default_model: ClassVar[str | None] = "m-1"

    def __init__(self) -> None:
        self.parses = 0

    def parse(self, request: ImageRequest) -> Settings:
        self.parses += 1
        return Settings(request.prompt.upper())

    def validate(self, request: ImageRequest) -> Prepared:
        return Prepared(attrs.evolve(request, model="m-1"), self.parse(request))

    async def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Chunk]:
        settings = context.prepared_as(Settings) or self.parse(request)
        yield TextDelta(f"{settings.word} {request.model}")
        yield FINAL


class GenerateOnly(Parsing):
    name: ClassVar[str] = "generate-only"
    stream = Provider.stream  # type: ignore[assignment]

    async def generate(self, request: ImageRequest, context: RunContext) -> ProviderResponse:
        settings = context.prepared_as(Settings) or self.parse(request)
        return ProviderResponse(text=settings.word, images=[FINAL])


async def test_stream_gets_the_prepared_settings_and_request() -> None:
    provider = Parsing()
    result = await Pipeline(provider).agenerate("cat")
    assert result.text == "CAT m-1"
    assert provider.parses == 1


async def test_generate_gets_them_too() -> None:
    provider = GenerateOnly()
    result = await Pipeline(provider).agenerate("dog")
    assert result.text == "DOG"
    assert provider.parses == 1


async def test_a_plain_request_leaves_prepared_empty() -> None:
    seen: list[object] = []

    class Plain(Provider):
        name: ClassVar[str] = "plain"

        async def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Chunk]:
            seen.append(context.prepared)
            seen.append(context.prepared_as(Settings))
            yield TextDelta("x")
            yield FINAL

    await Pipeline(Plain()).agenerate("x")
    assert seen == [None, None]


def test_prepared_repr_hides_the_settings() -> None:
    text = repr(Prepared(ImageRequest("x", api_key="secret-123456"), Settings("y")))
    assert "secret-123456" not in text and "settings=Settings" in text
