"""Plain framing: back-to-back objects, truncation, the size limit, safe defaults."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from imagestream.errors import DecoderLimitError, StreamDecodeError, StreamTruncatedError
from imagestream_msgpack import DEFAULT_MAX_BUFFER_BYTES, MsgpackDecoder


def plain(**options: Any) -> MsgpackDecoder:
    return MsgpackDecoder(framing="plain", **options)


def test_strings_are_str_and_bins_are_bytes(kit: Any) -> None:
    got = plain().feed(kit.pack({"s": "é", "b": b"\xff"}))
    assert got == [{"s": "é", "b": b"\xff"}]
    assert type(got[0]["b"]) is bytes


def test_extension_types_stay_data(kit: Any) -> None:
    """The default ext_hook: unknown extensions come out as ExtType, nothing runs."""
    stamp = msgpack.Timestamp(1, 2)
    got = plain().feed(kit.pack(msgpack.ExtType(42, b"zz")) + kit.pack(stamp))
    assert got == [msgpack.ExtType(42, b"zz"), stamp]


def test_non_string_map_keys_are_refused(kit: Any) -> None:
    decoder = plain()
    with pytest.raises(StreamDecodeError, match="map key") as info:
        decoder.feed(b"\x81\x01\x02")
    assert info.value.offset == 2


def test_truncation_is_not_a_clean_end(kit: Any) -> None:
    """msgpack.Unpacker alone would simply stop; the decoder raises at close."""
    stream = kit.pack([1, 2, 3])
    decoder = plain()
    assert decoder.feed(stream[:-1]) == []
    with pytest.raises(StreamTruncatedError, match="3 bytes of it arrived") as info:
        decoder.close()
    assert info.value.offset == 0


def test_limit_is_per_object_not_per_chunk(kit: Any) -> None:
    """A chunk far larger than the limit is fine when its objects are small."""
    values = list(range(1000))
    stream = b"".join(kit.pack(v) for v in values)
    assert len(stream) > 100
    assert plain(max_buffer_bytes=3).feed(stream) == values


def test_limit_error_names_the_keyword(kit: Any) -> None:
    decoder = plain(max_buffer_bytes=64)
    assert decoder.feed(kit.pack(1) + kit.pack(b"x" * 100)) == [1]
    with pytest.raises(DecoderLimitError) as info:
        decoder.close()  # the error found after a value comes with the next call
    err = info.value
    assert (err.limit, err.value, err.offset) == ("max_buffer_bytes", 64, 1)
    assert "max_buffer_bytes=64" in str(err)
    assert "larger max_buffer_bytes=" in str(err)


def test_limit_holds_when_fed_byte_by_byte(kit: Any) -> None:
    decoder = plain(max_buffer_bytes=10)
    stream = kit.pack(b"x" * 20)
    for byte in stream[:10]:
        assert decoder.feed(bytes([byte])) == []
    with pytest.raises(DecoderLimitError):
        decoder.feed(stream[10:11])


def test_huge_declared_array_waits_without_allocating_bytes(kit: Any) -> None:
    """A 5-byte header announcing 2**20 items (max_items) keeps nothing but the header."""
    decoder = plain()
    assert decoder.feed(b"\xdd\x00\x10\x00\x00") == []
    with pytest.raises(StreamTruncatedError):
        decoder.close()


def test_a_header_announcing_more_than_max_items_is_refused_at_once(kit: Any) -> None:
    """2**26 items would be half a gigabyte of list once decoded: refused at the header."""
    decoder = plain()
    with pytest.raises(DecoderLimitError) as caught:
        decoder.feed(b"\xdd\x04\x00\x00\x00")
    assert caught.value.limit == "max_items"


def test_default_limit() -> None:
    assert plain().max_buffer_bytes == DEFAULT_MAX_BUFFER_BYTES == 64 * 2**20
