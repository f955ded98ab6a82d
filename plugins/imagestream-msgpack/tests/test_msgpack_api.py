"""The public surface: construction, options, close, poisoning, deferred errors."""

from __future__ import annotations

from typing import Any

import pytest

import imagestream_msgpack
from imagestream.errors import (
    ConfigurationError,
    DecoderLimitError,
    StreamDecodeError,
    StreamTruncatedError,
)
from imagestream_msgpack import (
    DEFAULT_MAX_BUFFER_BYTES,
    DEFAULT_MAX_FRAME_BYTES,
    FRAMINGS,
    MsgpackDecoder,
)


def test_public_names() -> None:
    assert set(imagestream_msgpack.__all__) == {
        "DEFAULT_MAX_BUFFER_BYTES",
        "DEFAULT_MAX_FRAME_BYTES",
        "FRAMINGS",
        "Framing",
        "MsgpackDecoder",
    }
    assert FRAMINGS == ("length-prefixed", "plain")


@pytest.mark.parametrize("framing", FRAMINGS)
def test_construction(framing: Any) -> None:
    decoder = MsgpackDecoder(framing=framing, max_frame_bytes=10, max_buffer_bytes=20)
    assert isinstance(decoder, MsgpackDecoder)
    assert decoder.framing == framing
    assert (decoder.max_frame_bytes, decoder.max_buffer_bytes) == (10, 20)
    assert repr(decoder) == f"<MsgpackDecoder framing={framing!r} open>"


def test_defaults() -> None:
    decoder = MsgpackDecoder()
    assert decoder.framing == "length-prefixed"
    assert decoder.max_frame_bytes == DEFAULT_MAX_FRAME_BYTES == 64 * 2**20
    assert decoder.max_buffer_bytes == DEFAULT_MAX_BUFFER_BYTES


def test_unknown_framing() -> None:
    with pytest.raises(ConfigurationError, match="unknown msgpack framing 'jsonl'"):
        MsgpackDecoder(framing="jsonl")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "10", None])
@pytest.mark.parametrize("keyword", ["max_frame_bytes", "max_buffer_bytes"])
def test_bad_limits(keyword: str, bad: Any) -> None:
    with pytest.raises(ConfigurationError, match=keyword):
        MsgpackDecoder(**{keyword: bad})


def test_misspelt_option_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        MsgpackDecoder(max_frame_byte=10)  # type: ignore[call-arg]


@pytest.mark.parametrize("framing", FRAMINGS)
def test_close_twice_and_feed_after_close(framing: Any) -> None:
    decoder = MsgpackDecoder(framing=framing)
    assert decoder.close() == []
    assert decoder.close() == []
    assert "closed" in repr(decoder)
    with pytest.raises(ValueError, match="closed"):
        decoder.feed(b"\x00")


@pytest.mark.parametrize("framing", FRAMINGS)
def test_error_is_poisonous(framing: Any) -> None:
    garbage = b"\xc1" if framing == "plain" else b"\xff\xff\xff\xff"
    decoder = MsgpackDecoder(framing=framing)
    with pytest.raises(StreamDecodeError) as first:
        decoder.feed(garbage)
    for again in (lambda: decoder.feed(b"\x00"), decoder.close, lambda: decoder.feed(b"")):
        with pytest.raises(StreamDecodeError, match="already failed") as later:
            again()
        assert later.value.offset == first.value.offset
        assert later.value.__cause__ is first.value
    assert "failed" in repr(decoder)


def test_error_after_values_is_raised_by_the_next_call(kit: Any) -> None:
    """The values completed before the bad bytes are returned, never dropped."""
    good = kit.frames({"event_type": "final", "image": b"png"})
    decoder = MsgpackDecoder()
    assert decoder.feed(good + b"\xff\xff\xff\xff") == [{"event_type": "final", "image": b"png"}]
    with pytest.raises(DecoderLimitError) as deferred:
        decoder.close()  # or the next feed()
    assert deferred.value.offset == len(good)
    with pytest.raises(StreamDecodeError, match="already failed"):
        decoder.close()


def test_deferred_error_is_raised_by_feed_too(kit: Any) -> None:
    decoder = MsgpackDecoder(framing="plain")
    assert decoder.feed(kit.pack(1) + b"\xc1") == [1]
    with pytest.raises(StreamDecodeError, match="0xc1") as deferred:
        decoder.feed(kit.pack(2))
    assert deferred.value.offset == 1


def test_truncation_poisons_too(kit: Any) -> None:
    decoder = MsgpackDecoder()
    decoder.feed(b"\x00\x00")
    with pytest.raises(StreamTruncatedError):
        decoder.close()
    with pytest.raises(StreamDecodeError, match="already failed"):
        decoder.close()


@pytest.mark.parametrize("framing", FRAMINGS)
def test_every_buffer_type_is_accepted(framing: Any, kit: Any) -> None:
    value = {"k": [1, 2]}
    chunk = kit.pack(value) if framing == "plain" else kit.frames(value)
    for kind in (bytes, bytearray, memoryview):
        assert MsgpackDecoder(framing=framing).feed(kind(chunk)) == [value]
