"""Deterministic SSE corpora shared by ``bench_sse.py`` and the SSE plugin's tests.

Each builder returns the stream bytes and the events a correct decoder must
produce from them, as ``(event type, data)`` pairs. Everything is derived
from a seed, so a run can be repeated byte for byte.

The shapes copy the public wire formats (field names, event names, order),
with random payloads:

* :func:`image_stream` -- the OpenAI Images API streaming shape: some
  ``image_generation.partial_image`` events, then ``image_generation.completed``
  with ``usage``, each carrying a large base64 image in one ``data`` line.
* :func:`text_stream` -- a Responses API text stream: ``response.created``,
  many small ``response.output_text.delta`` events, ``response.completed``.
* :func:`single_event` -- one ``data`` line of the given size.
"""

from __future__ import annotations

import base64
import json
import random

__all__ = ["encode", "image_stream", "pieces", "single_event", "text_stream"]

Expected = list[tuple[str, str]]

_WORDS = [
    "a", "lighthouse", "at", "dusk", "over", "the", "sea", "with", "soft", "light",
    "and", "long", "shadows", "café", "naïve", "façade", "\u00e9t\u00e9", "海", "灯台", "🌊",
]  # fmt: skip


def encode(events: Expected) -> bytes:
    """Frame ``(event type, data)`` pairs as SSE: ``event:``, ``data:``, blank line."""
    out = []
    for event, data in events:
        out.append(f"event: {event}\ndata: {data}\n\n")
    return "".join(out).encode("utf-8")


def pieces(data: bytes, size: int) -> list[bytes]:
    """Cut ``data`` into pieces of ``size`` bytes (the last may be shorter)."""
    return [data[i : i + size] for i in range(0, len(data), size)]


def _b64(rng: random.Random, size: int) -> str:
    # base64 turns 3 bytes into 4 characters.
    return base64.b64encode(rng.randbytes(size * 3 // 4)).decode("ascii")


def _dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def image_stream(
    *, b64_size: int = 1_500_000, partials: int = 3, seed: int = 0
) -> tuple[bytes, Expected]:
    """An Images API stream: ``partials`` partial images then the final, each ``b64_size`` long."""
    rng = random.Random(seed)
    common = {
        "created_at": 1_750_000_000,
        "size": "1024x1024",
        "quality": "high",
        "background": "opaque",
        "output_format": "png",
    }
    events: Expected = []
    for index in range(partials):
        payload = {
            "type": "image_generation.partial_image",
            "b64_json": _b64(rng, b64_size),
            **common,
            "partial_image_index": index,
        }
        events.append(("image_generation.partial_image", _dumps(payload)))
    final = {
        "type": "image_generation.completed",
        "b64_json": _b64(rng, b64_size),
        **common,
        "usage": {
            "total_tokens": 4_260,
            "input_tokens": 50,
            "output_tokens": 4_210,
            "input_tokens_details": {"text_tokens": 50, "image_tokens": 0},
        },
    }
    events.append(("image_generation.completed", _dumps(final)))
    return encode(events), events


def text_stream(*, deltas: int = 20_000, seed: int = 0) -> tuple[bytes, Expected]:
    """A Responses API text stream with ``deltas`` ``response.output_text.delta`` events."""
    rng = random.Random(seed)
    response_id = "resp_" + rng.randbytes(12).hex()
    item_id = "msg_" + rng.randbytes(12).hex()
    events: Expected = [
        (
            "response.created",
            _dumps(
                {
                    "type": "response.created",
                    "sequence_number": 0,
                    "response": {"id": response_id, "status": "in_progress", "output": []},
                }
            ),
        )
    ]
    for n in range(1, deltas + 1):
        delta = {
            "type": "response.output_text.delta",
            "sequence_number": n,
            "item_id": item_id,
            "output_index": 0,
            "content_index": 0,
            "delta": rng.choice(_WORDS) + " ",
            "logprobs": [],
        }
        events.append(("response.output_text.delta", _dumps(delta)))
    completed = {
        "type": "response.completed",
        "sequence_number": deltas + 1,
        "response": {
            "id": response_id,
            "status": "completed",
            "usage": {"input_tokens": 12, "output_tokens": deltas, "total_tokens": deltas + 12},
        },
    }
    events.append(("response.completed", _dumps(completed)))
    return encode(events), events


def single_event(*, size: int = 8 * 2**20, seed: int = 0) -> tuple[bytes, Expected]:
    """One event whose ``data`` is ``size`` bytes of base64."""
    events: Expected = [("image", _b64(random.Random(seed), size))]
    return encode(events), events
