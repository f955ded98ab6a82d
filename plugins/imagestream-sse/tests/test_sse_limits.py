"""Size limits: generous defaults, configurable, checked as bytes arrive, typed errors."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagestream.errors import ConfigurationError, DecoderLimitError
from imagestream_sse import SSEDecoder, defaults

MiB = 2**20


def test_defaults_fit_multi_megabyte_images() -> None:
    assert 16 * MiB <= defaults.MAX_LINE_BYTES
    assert 16 * MiB <= defaults.MAX_EVENT_BYTES
    assert defaults.MAX_BUFFER_BYTES >= defaults.MAX_EVENT_BYTES


def test_no_hidden_line_cap_below_16_mib() -> None:
    payload = b"A" * (17 * MiB)
    stream = b"event: image\ndata: " + payload + b"\n\n"
    decoder = SSEDecoder()
    events = []
    for i in range(0, len(stream), 64 * 1024):
        events += decoder.feed(stream[i : i + 64 * 1024])
    assert decoder.close() == []
    assert len(events) == 1
    assert len(events[0].data) == len(payload)


def feed_all(decoder: SSEDecoder, chunks: Iterable[bytes]) -> None:
    for chunk in chunks:
        decoder.feed(chunk)


def endless_line(piece: int) -> Iterator[bytes]:
    yield b"data: "
    while True:
        yield b"x" * piece


def test_a_line_that_never_ends_fails_once_it_passes_the_cap() -> None:
    decoder = SSEDecoder(max_line_bytes=10_000)
    fed = 0

    def counted(chunks: Iterator[bytes]) -> Iterator[bytes]:
        nonlocal fed
        for chunk in chunks:
            fed += len(chunk)
            yield chunk

    with pytest.raises(DecoderLimitError) as caught:
        feed_all(decoder, counted(endless_line(1_000)))
    # It failed on the piece that crossed the limit, not later.
    assert 10_000 < fed <= 10_000 + 1_000
    error = caught.value
    assert error.limit == "max_line_bytes"
    assert error.value == 10_000
    assert error.offset == fed
    assert "max_line_bytes=10000" in str(error)
    assert "pass a larger max_line_bytes=" in str(error)


@pytest.mark.parametrize("pieces", [1, 3, 50])
def test_a_complete_long_line_fails(pieces: int) -> None:
    stream = b"data: " + b"y" * 200 + b"\n\n"
    size = -(-len(stream) // pieces)
    decoder = SSEDecoder(max_line_bytes=100)
    chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
    with pytest.raises(DecoderLimitError, match="max_line_bytes"):
        feed_all(decoder, chunks)


def test_line_limit_is_inclusive() -> None:
    line = b"data: " + b"z" * 94  # 100 bytes
    assert len(SSEDecoder(max_line_bytes=100).feed(line + b"\n\n")) == 1
    assert len(SSEDecoder(max_line_bytes=100).feed(line + b"\r\n\r\n")) == 1
    with pytest.raises(DecoderLimitError):
        SSEDecoder(max_line_bytes=99).feed(line + b"\n\n")


def test_event_limit_counts_joined_data() -> None:
    # 5 + 1 ("\n") + 4 = 10 bytes of data.
    stream = b"data: 12345\ndata: 1234\n\n"
    assert SSEDecoder(max_event_bytes=10).feed(stream)[0].data == "12345\n1234"
    with pytest.raises(DecoderLimitError) as caught:
        SSEDecoder(max_event_bytes=9).feed(stream)
    assert caught.value.limit == "max_event_bytes"


def test_event_limit_counts_utf8_bytes() -> None:
    stream = "data: ééé\n\n".encode()  # 6 bytes, 3 characters
    assert SSEDecoder(max_event_bytes=6).feed(stream)[0].data == "ééé"
    with pytest.raises(DecoderLimitError, match="max_event_bytes"):
        SSEDecoder(max_event_bytes=5).feed(stream)


def test_many_small_data_lines_cannot_grow_an_event_without_bound() -> None:
    decoder = SSEDecoder(max_event_bytes=1_000)
    with pytest.raises(DecoderLimitError, match="max_event_bytes"):
        feed_all(decoder, [b"data: 0123456789\n"] * 1_000)


@pytest.mark.parametrize("shape", ["data: {}\n\n", "event: e\ndata: {}\n\n"])
def test_event_limit_holds_in_runs_of_uniform_blocks(shape: str) -> None:
    blocks = [shape.format("x" * 10) for _ in range(30)]
    blocks[17] = shape.format("x" * 11)
    decoder = SSEDecoder(max_event_bytes=10)
    with pytest.raises(DecoderLimitError, match="max_event_bytes"):
        decoder.feed("".join(blocks).encode())


def test_event_limit_holds_for_non_ascii_in_uniform_blocks() -> None:
    blocks = ["data: " + "é" * 5 + "\n\n" for _ in range(30)]  # 10 bytes each
    assert len(SSEDecoder(max_event_bytes=10).feed("".join(blocks).encode())) == 30
    with pytest.raises(DecoderLimitError, match="max_event_bytes"):
        SSEDecoder(max_event_bytes=9).feed("".join(blocks).encode())


def test_buffer_limit_counts_the_unfinished_line_and_the_pending_data() -> None:
    decoder = SSEDecoder(max_buffer_bytes=100)
    decoder.feed(b"data: " + b"a" * 60 + b"\n")  # 60 bytes of pending data
    decoder.feed(b"data: " + b"b" * 30)  # 36 bytes of unfinished line: 96 held
    with pytest.raises(DecoderLimitError) as caught:
        decoder.feed(b"b" * 10)  # 106 held
    assert caught.value.limit == "max_buffer_bytes"
    assert "max_buffer_bytes=100" in str(caught.value)


def test_buffer_limit_also_caps_event_data() -> None:
    with pytest.raises(DecoderLimitError, match="max_buffer_bytes"):
        SSEDecoder(max_buffer_bytes=50).feed(b"data: " + b"q" * 60 + b"\n\n")


def test_a_failed_decoder_is_finished() -> None:
    decoder = SSEDecoder(max_line_bytes=10)
    with pytest.raises(DecoderLimitError):
        decoder.feed(b"data: 0123456789")
    with pytest.raises(RuntimeError):
        decoder.feed(b"\n\n")
    assert decoder.close() == []


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "10", None])
@pytest.mark.parametrize("name", ["max_line_bytes", "max_event_bytes", "max_buffer_bytes"])
def test_limits_must_be_positive_ints(name: str, bad: object) -> None:
    with pytest.raises(ConfigurationError, match=name):
        SSEDecoder(**{name: bad})  # type: ignore[arg-type]


def test_last_event_id_cannot_hold_nul() -> None:
    with pytest.raises(ConfigurationError):
        SSEDecoder(last_event_id="a\0b")


@settings(max_examples=150, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 60), min_size=1, max_size=12),
    limit=st.integers(1, 70),
    line_end=st.sampled_from([b"\n", b"\r", b"\r\n"]),
    cuts=st.lists(st.integers(0, 1_000), max_size=10),
)
def test_line_limit_outcome_does_not_depend_on_chunks(
    lengths: list[int], limit: int, line_end: bytes, cuts: list[int]
) -> None:
    lines = [b"data:" + b"v" * n for n in lengths]
    stream = b"".join(line + line_end for line in lines) + line_end
    bounds = [0, *sorted({c for c in cuts if c <= len(stream)}), len(stream)]
    decoder = SSEDecoder(max_line_bytes=limit)
    limit_hit = None
    try:
        feed_all(decoder, (stream[a:b] for a, b in pairwise(bounds)))
    except DecoderLimitError as error:
        limit_hit = error.limit
    expected = "max_line_bytes" if any(len(line) > limit for line in lines) else None
    assert limit_hit == expected
