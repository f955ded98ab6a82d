"""One generation at a time per account, and cancellation that really stops the stream."""

from __future__ import annotations

import asyncio
from typing import Any

from imagestream import ImageFinal, ImagePreview, ImageRequest
from imagestream.testing import chunks_of
from imagestream_novelai import NovelAIProvider


async def test_concurrent_streams_for_one_account_queue_instead_of_overlapping(nai: Any) -> None:
    # The fake server answers 429 to a second generation of the same account,
    # as NovelAI does: without the queue one of these would fail.
    nai.server.script.delay = 0.002
    results = await asyncio.wait_for(
        asyncio.gather(nai.run(steps=6, seed=1), nai.run(steps=6, seed=2, stream="sse"), nai.run(steps=6, seed=3)),
        timeout=30,
    )
    assert nai.server.max_active == 1
    assert [chunks_of(ImageFinal, chunks)[0].seed for chunks in results] == [1, 2, 3]
    assert nai.server.completed == 3 and len(nai.server.requests) == 3


async def test_different_accounts_are_not_queued_behind_each_other(nai: Any) -> None:
    nai.server.script.delay = 0.003
    await asyncio.wait_for(
        asyncio.gather(nai.run(steps=8), nai.run(steps=8, api_key=nai.server.other_token)), timeout=30
    )
    assert nai.server.max_active == 2


def test_runs_naming_the_default_server_share_its_queue() -> None:
    provider = NovelAIProvider()

    def key(token: str, base_url: str | None) -> str | None:
        request = provider.validate(ImageRequest("1girl", api_key=token, base_url=base_url)).request
        return provider.concurrency_key(request)

    same = {key("pst-one", url) for url in (None, "https://image.novelai.net", "https://image.novelai.net/")}
    assert len(same) == 1
    assert key("pst-two", None) not in same and key("pst-one", "http://127.0.0.1:1") not in same
    assert "pst-one" not in next(iter(same))  # hashed, never the token itself


async def _first_preview_then(nai: Any, action: str) -> None:
    chunks = nai.stream(steps=28)
    async with chunks:
        async for chunk in chunks:
            if isinstance(chunk, ImagePreview):
                if action == "break":
                    break
                raise asyncio.CancelledError


async def test_leaving_the_loop_closes_the_connection(nai: Any) -> None:
    nai.server.script.delay = 0.01
    await asyncio.wait_for(_first_preview_then(nai, "break"), timeout=10)
    await asyncio.wait_for(nai.server.disconnected.wait(), timeout=10)
    assert nai.server.disconnects == 1 and nai.server.completed == 0


async def test_cancelling_the_task_closes_the_connection_and_frees_the_queue(nai: Any) -> None:
    nai.server.script.delay = 0.01
    started = asyncio.Event()

    async def consume() -> None:
        chunks = nai.stream(steps=28)
        async with chunks:
            async for chunk in chunks:
                if isinstance(chunk, ImagePreview):
                    started.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(started.wait(), timeout=10)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=10)
    assert task in done and task.cancelled()
    await asyncio.wait_for(nai.server.disconnected.wait(), timeout=10)
    assert nai.server.completed == 0
    # The account's queue was released: the next generation runs at once.
    nai.server.script.delay = 0.0
    chunks = await asyncio.wait_for(nai.run(steps=3), timeout=10)
    assert len(chunks_of(ImageFinal, chunks)) == 1
