"""Helpers shared by the test modules (imported by name: conftest puts this folder on sys.path)."""

from __future__ import annotations

from typing import Any

from _openai_server import OpenAIServer

import imagestream

KEY = "sk-test-server-key"


async def collect(
    server: OpenAIServer, prompt: str = "a lighthouse at dusk", **params: Any
) -> list[Any]:
    """Run one stream against ``server`` and return its chunks."""
    params.setdefault("api_key", server.key)
    params.setdefault("timeout", 10)
    chunks = imagestream.stream(prompt, provider="openai", base_url=server.base_url, **params)
    async with chunks:
        return [chunk async for chunk in chunks]


def kinds(chunks: list[Any]) -> list[str]:
    """The chunk class names, in order."""
    return [type(chunk).__name__ for chunk in chunks]
