"""Deterministic SSE corpora shared by ``bench_sse.py`` and the SSE plugin's tests.

Each builder returns the stream bytes and the events a correct decoder must
produce from them, as ``(event type, data)`` pairs. Everything is derived
from a seed, so a run can be repeated byte for byte.

The shapes copy the public wire formats (field names, event names, order),
with random payloads:

* :func:`image_stream` -- the OpenAI Images API streaming shape: some
  ``image_generation.partial_image`` events, then ``image_generation.completed``
  with ``usage``, each carrying a real PNG (random pixels, so it does not
  compress: 2 MB of base64 is a 1.5 MB file) in one ``data`` line.
* :func:`text_stream` -- a Responses API text stream: ``response.created``,
  many small ``response.output_text.delta`` events, ``response.completed``
  (optionally with an image before it).
* :func:`single_event` -- one ``data`` line of the given size.

JSON comes in two spellings: ``"compact"``, as OpenAI writes it
(``"b64_json":"..."``), and ``"spaced"``, with a space after each colon and
comma, as a proxy that parses and re-serialises events with Python's
``json.dumps`` writes it (``"b64_json": "..."``).
"""

from __future__ import annotations

import base64
import json
import random
import struct
import zlib

__all__ = ["SPELLINGS", "encode", "image_stream", "pieces", "png", "single_event", "text_stream"]

SPELLINGS = ("compact", "spaced")

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


def png(b64_size: int, seed: int) -> bytes:
    """A valid PNG of random pixels (stored, not compressed) whose base64 is about ``b64_size`` long."""
    rng = random.Random(seed)
    raw_size = b64_size * 3 // 4
    width = max(8, int((raw_size / 3) ** 0.5))
    height = max(8, raw_size // (3 * width + 1))
    rows = b"".join(b"\x00" + rng.randbytes(3 * width) for _ in range(height))

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows, 0))
        + chunk(b"IEND", b"")
    )


def _png_b64(size: int, seed: int) -> str:
    return base64.b64encode(png(size, seed)).decode("ascii")


def _dumps(obj: object, spelling: str = "compact") -> str:
    if spelling == "spaced":
        return json.dumps(obj, ensure_ascii=False)
    if spelling != "compact":
        raise ValueError(f"spelling is one of {SPELLINGS}, not {spelling!r}")
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def image_stream(
    *, b64_size: int = 2_000_000, partials: int = 3, seed: int = 0, spelling: str = "compact"
) -> tuple[bytes, Expected]:
    """An Images API stream: ``partials`` partial PNGs then the final, each ``b64_size`` long."""
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
            "b64_json": _png_b64(b64_size, rng.randrange(2**32)),
            **common,
            "partial_image_index": index,
        }
        events.append(("image_generation.partial_image", _dumps(payload, spelling)))
    final = {
        "type": "image_generation.completed",
        "b64_json": _png_b64(b64_size, rng.randrange(2**32)),
        **common,
        "usage": {
            "total_tokens": 4_260,
            "input_tokens": 50,
            "output_tokens": 4_210,
            "input_tokens_details": {"text_tokens": 50, "image_tokens": 0},
        },
    }
    events.append(("image_generation.completed", _dumps(final, spelling)))
    return encode(events), events


def text_stream(
    *, deltas: int = 20_000, seed: int = 0, spelling: str = "compact", image_b64_size: int = 0
) -> tuple[bytes, Expected]:
    """A Responses API text stream with ``deltas`` ``response.output_text.delta`` events.

    With ``image_b64_size``, an ``image_generation_call`` item holding a PNG
    that size in base64 is done before ``response.completed`` (a run that
    asks for an image then gets one).
    """
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
                },
                spelling,
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
        events.append(("response.output_text.delta", _dumps(delta, spelling)))
    if image_b64_size:
        item = {
            "type": "image_generation_call",
            "id": "ig_" + rng.randbytes(12).hex(),
            "status": "completed",
            "output_format": "png",
            "result": _png_b64(image_b64_size, seed),
        }
        done = {
            "type": "response.output_item.done",
            "sequence_number": deltas + 1,
            "output_index": 1,
            "item": item,
        }
        events.append(("response.output_item.done", _dumps(done, spelling)))
    completed = {
        "type": "response.completed",
        "sequence_number": deltas + 1,
        "response": {
            "id": response_id,
            "status": "completed",
            "usage": {"input_tokens": 12, "output_tokens": deltas, "total_tokens": deltas + 12},
        },
    }
    events.append(("response.completed", _dumps(completed, spelling)))
    return encode(events), events


def single_event(*, size: int = 8 * 2**20, seed: int = 0) -> tuple[bytes, Expected]:
    """One event whose ``data`` is ``size`` bytes of base64."""
    events: Expected = [("image", _b64(random.Random(seed), size))]
    return encode(events), events
