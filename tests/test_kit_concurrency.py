"""Providers that declare max_concurrency get their runs queued per key and base URL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import ClassVar

import imagestream
from imagestream import ImageData, ImageFinal, Pipeline, TextDelta
from imagestream.provider import Chunk, ImageRequest, Provider, RunContext
from imagestream.testing import make_png

# A run asks for an image: one that ends without any is a NoImageError.
FINAL = ImageFinal(image=ImageData.from_bytes(make_png(), "image/png"))


class Counting(Provider):
    """Records how many of its runs are inside ``stream`` at once."""

    name: ClassVar[str] = "counting"
    max_concurrency: ClassVar[int | None] = 1

    def __init__(self) -> None:
        self.inside = 0
        self.most = 0

    async def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Chunk]:
        self.inside += 1
        self.most = max(self.most, self.inside)
        try:
            await asyncio.sleep(0.02)
            yield TextDelta("done")
            yield FINAL
        finally:
            self.inside -= 1


async def _together(provider: Counting, *keys: str, base_url: str | None = None) -> None:
    pipe = Pipeline(provider)
    await asyncio.gather(*(pipe.agenerate("x", api_key=key, base_url=base_url) for key in keys))


async def test_one_key_queues() -> None:
    provider = Counting()
    await _together(provider, "key-aaaaaa", "key-aaaaaa", "key-aaaaaa")
    assert provider.most == 1


async def test_different_keys_do_not_wait_for_each_other() -> None:
    provider = Counting()
    await _together(provider, "key-aaaaaa", "key-bbbbbb", "key-cccccc")
    assert provider.most == 3


async def test_different_servers_do_not_wait_for_each_other() -> None:
    provider = Counting()
    pipe = Pipeline(provider)
    await asyncio.gather(
        pipe.agenerate("x", api_key="same-key-1", base_url="http://a.test"),
        pipe.agenerate("x", api_key="same-key-1", base_url="http://b.test/"),
    )
    assert provider.most == 2


async def test_a_higher_limit() -> None:
    class Two(Counting):
        max_concurrency: ClassVar[int | None] = 2

    provider = Two()
    await _together(provider, *["key-aaaaaa"] * 5)
    assert provider.most == 2


async def test_no_limit_by_default() -> None:
    class Free(Counting):
        max_concurrency: ClassVar[int | None] = None

    provider = Free()
    await _together(provider, *["key-aaaaaa"] * 4)
    assert provider.most == 4


async def test_a_failed_or_abandoned_run_frees_its_slot() -> None:
    provider = Counting()
    pipe = Pipeline(provider)
    async with pipe.stream("x", api_key="key-aaaaaa") as chunks:
        async for _ in chunks:
            break
    # Would hang here if the slot were still held.
    await asyncio.wait_for(pipe.agenerate("x", api_key="key-aaaaaa"), 2)


def test_the_key_is_hashed_never_kept() -> None:
    key = Counting().concurrency_key(ImageRequest("x", api_key="secret-value-1", base_url="u/"))
    assert key is not None and "secret-value-1" not in key and key.endswith("@u")
    assert imagestream.Provider.max_concurrency is None
