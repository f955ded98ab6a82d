"""Streams recorded from real traffic (OpenAI Responses, Gemini), replayed byte for byte.

The cassettes keep each ``text/event-stream`` body verbatim under
``response.body.string``. openai-python's own SSE decoder is the judge: ours
must give the same events for the same bytes, however they are cut.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from imagestream_sse import SSEDecoder

yaml = pytest.importorskip("yaml")

CASSETTES = [
    "openai/pydantic-ai_responses-stream-raw-sse-framing.cassette.yaml",
    "gemini/pydantic-ai_gemini-2.5-flash-image_streamGenerateContent-sse.cassette.yaml",
    "gemini/pydantic-ai_vertex-global-streamGenerateContent-sse-text.cassette.yaml",
]

_bodies: dict[str, list[bytes]] = {}


def recorded_bodies(fixtures: Path, name: str) -> list[bytes]:
    if name not in _bodies:
        path = fixtures / name
        if not path.is_file():
            pytest.skip(f"{name} is not there")
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        cassette = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
        _bodies[name] = [
            interaction["response"]["body"]["string"].encode("utf-8")
            for interaction in cassette["interactions"]
        ]
    return _bodies[name]


def decode(body: bytes, size: int) -> list[tuple[str, str, str]]:
    decoder = SSEDecoder()
    events = []
    for i in range(0, len(body), size):
        events += decoder.feed(body[i : i + size])
    assert decoder.close() == []  # a recorded, complete body ends cleanly
    return [(e.event, e.data, e.id) for e in events]


def judged_by_openai(body: bytes) -> list[tuple[str, str, str]]:
    streaming: Any = pytest.importorskip("openai._streaming")
    return [
        (e.event or "message", e.data, e.id or "")
        for e in streaming.SSEDecoder().iter_bytes(iter([body]))
    ]


@pytest.mark.parametrize("name", CASSETTES)
@pytest.mark.parametrize("size", [7, 1448, 64 * 1024, 10**9])
def test_recorded_stream_decodes_like_openai(shared_fixtures: Path, name: str, size: int) -> None:
    for body in recorded_bodies(shared_fixtures, name):
        events = decode(body, size)
        assert events
        for _, data, _ in events:
            json.loads(data)
        assert events == judged_by_openai(body)
