"""Decoded memory is bounded, not only bytes: ``max_items`` caps the values of a frame or object.

The streams here are large (tens of MB) but never built whole: a header,
then one small chunk fed again and again, as a hostile server would send it.
"""

from __future__ import annotations

import io
import os
import struct
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from imagestream.errors import ConfigurationError, DecoderLimitError
from imagestream_msgpack import DEFAULT_MAX_FRAME_BYTES, FRAMINGS, MsgpackDecoder

MiB = 2**20
NILS = 60 * MiB  # a 60 MiB array of nils: about half a gigabyte once decoded


def _feed_all(decoder: MsgpackDecoder, chunks: Iterator[bytes], fed: list[int]) -> None:
    for chunk in chunks:
        decoder.feed(chunk)
        fed[0] += len(chunk)
    decoder.close()


def _feed_until_refused(decoder: MsgpackDecoder, chunks: Iterator[bytes]) -> tuple[int, float, int]:
    """Feed ``chunks`` until the decoder refuses; (bytes fed, seconds, peak traced bytes)."""
    fed = [0]
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(DecoderLimitError) as caught:
            _feed_all(decoder, chunks, fed)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert caught.value.limit == "max_items"
    assert "max_items=" in str(caught.value) and "values exceeded" in str(caught.value)
    return fed[0], elapsed, peak


def _stream(
    framing: str, payload_size: int, head: bytes, body: bytes, count: int
) -> Iterator[bytes]:
    """``head`` then ``body`` ``count`` times, behind a length prefix when framed."""
    if framing == "length-prefixed":
        yield struct.pack(">I", payload_size)
    yield head
    for _ in range(count):
        yield body


@pytest.mark.parametrize("framing", FRAMINGS)
def test_a_60_mb_array_of_nils_is_refused_at_once(framing: Any) -> None:
    nils = b"\xc0" * MiB  # one chunk, fed again and again
    chunks = _stream(framing, 5 + NILS, b"\xdd" + struct.pack(">I", NILS), nils, NILS // MiB)
    fed, elapsed, peak = _feed_until_refused(MsgpackDecoder(framing=framing), chunks)
    assert fed <= 16  # the header alone says it: nothing more is awaited
    assert elapsed < 2.0
    assert peak < 16 * MiB  # it would be some 500 MiB decoded


@pytest.mark.parametrize("framing", FRAMINGS)
def test_the_same_in_a_packed_list(framing: Any) -> None:
    import msgpack

    payload = msgpack.packb([None] * 3_000_000)  # 3 MB, 3 million values
    stream = struct.pack(">I", len(payload)) + payload if framing == "length-prefixed" else payload
    chunks = (stream[i : i + 64 * 1024] for i in range(0, len(stream), 64 * 1024))
    with pytest.raises(DecoderLimitError, match="max_items"):
        _feed_all(MsgpackDecoder(framing=framing), chunks, [0])


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("shape", ["closed", "open"])
def test_nested_containers_are_counted_together(framing: Any, shape: str) -> None:
    """Arrays of 60,000 nils each pass msgpack's per-container caps; their sum does not.

    ``closed``: [[nil * 60000] * 1000]; ``open``: each level holds 60,000 nils
    and the next level, so no container is complete until the last byte.
    """
    per = 60_000
    levels = 1000
    if shape == "closed":
        head = b"\xdc" + struct.pack(">H", levels)
        body = b"\xdc" + struct.pack(">H", per) + b"\xc0" * per
    else:
        head = b""
        body = b"\xdc" + struct.pack(">H", per + 1) + b"\xc0" * per
    size = len(head) + levels * len(body) + (shape == "open")
    limit = 2**18  # the default (1 Mi values for 64 MiB) works alike, four times slower
    decoder = MsgpackDecoder(framing=framing, max_items=limit)
    fed, elapsed, peak = _feed_until_refused(decoder, _stream(framing, size, head, body, levels))
    assert fed < 2 * limit + 2 * len(body)  # refused once the sum passes the limit
    assert elapsed < 5.0
    assert peak < 32 * MiB  # decoded whole: 60 million values, about 500 MiB


def _real_png(side: int) -> bytes:
    from PIL import Image

    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


@pytest.mark.parametrize("framing", FRAMINGS)
def test_a_real_image_frame_still_decodes(framing: Any) -> None:
    import msgpack
    from PIL import Image

    png = _real_png(1000)  # about 3 MB of noise: larger than max_items bytes (1 MiB)
    assert len(png) > MsgpackDecoder().max_items
    event = {"event_type": "final", "samp_ix": 0, "gen_id": "42", "sigma": 0.0, "image": png}
    payload = msgpack.packb(event, use_bin_type=True)
    stream = struct.pack(">I", len(payload)) + payload if framing == "length-prefixed" else payload
    decoder = MsgpackDecoder(framing=framing)
    values: list[Any] = []
    for i in range(0, len(stream), 64 * 1024):
        values += decoder.feed(stream[i : i + 64 * 1024])
    values += decoder.close()
    assert values == [event]
    assert Image.open(io.BytesIO(values[0]["image"])).size == (1000, 1000)


def test_max_items_defaults_follow_the_byte_caps() -> None:
    assert MsgpackDecoder().max_items == DEFAULT_MAX_FRAME_BYTES // 64 == 2**20
    assert MsgpackDecoder(framing="plain", max_buffer_bytes=256 * MiB).max_items == 4 * MiB
    assert MsgpackDecoder(max_frame_bytes=1000).max_items == 2**16  # never tiny
    assert MsgpackDecoder(max_items=5).max_items == 5


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "10"])
def test_bad_max_items(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_items must be a positive number of values"):
        MsgpackDecoder(max_items=bad)


@pytest.mark.parametrize("framing", FRAMINGS)
def test_a_legitimate_large_array_passes_with_a_larger_max_items(framing: Any) -> None:
    import msgpack

    value = list(range(100)) * 12_000  # 1.2 million values
    payload = msgpack.packb(value)
    stream = struct.pack(">I", len(payload)) + payload if framing == "length-prefixed" else payload
    with pytest.raises(DecoderLimitError, match="max_items"):
        MsgpackDecoder(framing=framing).feed(stream)
    decoder = MsgpackDecoder(framing=framing, max_items=2 * MiB)
    assert decoder.feed(stream) + decoder.close() == [value]
