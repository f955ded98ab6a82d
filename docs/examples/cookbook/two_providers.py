"""A quick draft from one provider, then the finished image from another."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import imagestream
from imagestream import Chunk, Provider


async def draft_then_final(
    prompt: str,
    *,
    draft: str | Provider = "procedural",
    final: str | Provider = "openai",
    draft_params: dict[str, Any] | None = None,
    **params: Any,
) -> AsyncGenerator[tuple[str, Chunk], None]:
    """Stream ``prompt`` from ``draft``, then ``final``; yield ``(stage, chunk)`` pairs.

    The draft is cheap and immediate (the offline ``procedural`` provider
    costs nothing); the final run starts only when the draft is done, so a
    caller that does not like the draft can stop iterating before anything
    is spent. ``params`` go to the final run, ``draft_params`` to the draft.
    """
    async with imagestream.stream(
        prompt, provider=draft, **(draft_params or {})
    ) as chunks:
        async for chunk in chunks:
            yield "draft", chunk
    async with imagestream.stream(prompt, provider=final, **params) as chunks:
        async for chunk in chunks:
            yield "final", chunk


async def main() -> None:
    async for stage, chunk in draft_then_final(
        "a lighthouse at dusk", draft_params={"steps": 6}, size="1024x1024"
    ):
        if isinstance(chunk, imagestream.ImageFinal):
            print(stage, "saved", chunk.image.save(f"lighthouse-{stage}.png"))


if __name__ == "__main__":
    asyncio.run(main())
