"""Length-prefixed framing: limits before buffering, errors, values as they complete."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from imagestream.errors import (
    DecoderLimitError,
    ImagestreamError,
    StreamDecodeError,
    StreamTruncatedError,
)
from imagestream_msgpack import DEFAULT_MAX_FRAME_BYTES, MsgpackDecoder


def test_novelai_frames_decode_to_dicts(kit: Any) -> None:
    events = kit.novelai_events()
    got = MsgpackDecoder().feed(kit.frames(*events))
    assert got == events
    assert [e["event_type"] for e in got] == ["intermediate"] * 3 + ["final"]
    assert got[0]["image"].startswith(kit.JPEG_MAGIC)
    assert got[-1]["image"].startswith(kit.PNG_MAGIC)
    assert all(type(e["image"]) is bytes for e in got)


def test_a_value_comes_out_as_soon_as_its_frame_completes(kit: Any) -> None:
    stream = kit.frames({"n": 1}, {"n": 2})
    first_end = len(kit.frames({"n": 1}))
    decoder = MsgpackDecoder()
    assert decoder.feed(stream[: first_end - 1]) == []
    assert decoder.feed(stream[first_end - 1 : first_end]) == [{"n": 1}]
    assert decoder.feed(stream[first_end:]) == [{"n": 2}]
    assert decoder.close() == []


@pytest.mark.parametrize("cut", [1, 2, 3])
def test_absurd_prefix_fails_on_its_four_bytes(kit: Any, cut: int) -> None:
    """No payload byte is awaited: the prefix alone, even split, raises."""
    decoder = MsgpackDecoder()
    prefix = b"\xff\xff\xff\xff"
    assert decoder.feed(kit.frames({"a": 1}) + prefix[:cut]) == [{"a": 1}]
    with pytest.raises(DecoderLimitError) as info:
        decoder.feed(prefix[cut:])
    err = info.value
    assert (err.limit, err.value, err.offset) == ("max_frame_bytes", DEFAULT_MAX_FRAME_BYTES, 8)
    assert "max_frame_bytes=" in str(err)
    assert "4294967295" in str(err)


def test_limit_is_on_the_payload_length(kit: Any) -> None:
    payload = kit.pack(b"x" * 1000)
    MsgpackDecoder(max_frame_bytes=len(payload)).feed(kit.frame(payload))
    with pytest.raises(DecoderLimitError, match="max_frame_bytes=1002"):
        MsgpackDecoder(max_frame_bytes=len(payload) - 1).feed(kit.frame(payload)[:4])


def test_default_limit_fits_a_multi_megabyte_image(kit: Any) -> None:
    image = kit.PNG_MAGIC + bytes(range(256)) * (12 * 2**20 // 256)
    stream = kit.frames({"event_type": "final", "image": image})
    pieces = kit.split_every(stream, 64 * 1024)
    decoder = MsgpackDecoder()
    got = [value for piece in pieces for value in decoder.feed(piece)]
    assert decoder.close() == []
    assert got == [{"event_type": "final", "image": image}]


def test_frame_errors_name_the_frame(kit: Any) -> None:
    stream = kit.frames({"a": 1}) + kit.frame(b"\x82\xa1a\x01\xa1b\xc1")
    decoder = MsgpackDecoder()
    decoder.feed(stream)
    with pytest.raises(StreamDecodeError) as info:
        decoder.close()
    assert str(info.value).startswith(
        "frame starting at byte 8: byte 0xc1 cannot start a msgpack value at byte 18"
    )
    assert info.value.offset == 18


def test_trailing_bytes_say_how_many(kit: Any) -> None:
    with pytest.raises(StreamDecodeError, match="2 trailing bytes") as info:
        MsgpackDecoder().feed(kit.frame(kit.pack(7) + b"\x00\x00"))
    assert info.value.offset == 5
    assert not isinstance(info.value, StreamTruncatedError)


def test_truncation_messages(kit: Any) -> None:
    decoder = MsgpackDecoder()
    decoder.feed(kit.frame(kit.pack("abcdef"))[:-3])
    with pytest.raises(StreamTruncatedError, match=r"4 of its 7 payload bytes") as info:
        decoder.close()
    assert info.value.offset == 0
    assert isinstance(info.value, ImagestreamError)

    decoder = MsgpackDecoder()
    decoder.feed(b"\x00")
    with pytest.raises(StreamTruncatedError, match=r"length prefix \(1 of 4 bytes\)"):
        decoder.close()


def test_ending_exactly_on_a_boundary_is_clean(kit: Any) -> None:
    decoder = MsgpackDecoder()
    assert decoder.feed(kit.frames(1, 2)) == [1, 2]
    assert decoder.close() == []


def test_values_do_not_alias_a_reused_input_buffer(kit: Any) -> None:
    stream = kit.frames({"image": b"\x01" * 100}, {"image": b"\x02" * 100})
    buffer = bytearray(stream[:60])
    decoder = MsgpackDecoder()
    assert decoder.feed(buffer) == []
    buffer[:] = b"\xee" * 60  # the caller reuses its buffer
    got = decoder.feed(memoryview(bytearray(stream[60:])))
    assert got == [{"image": b"\x01" * 100}, {"image": b"\x02" * 100}]


def test_header_split_across_many_pieces(kit: Any) -> None:
    payload = kit.pack({"k": "v"})
    stream = struct.pack(">I", len(payload)) + payload
    decoder = MsgpackDecoder()
    got: list[Any] = []
    for i in range(len(stream)):
        got += decoder.feed(stream[i : i + 1])
        got += decoder.feed(b"")  # empty pieces change nothing
    assert got == [{"k": "v"}]
