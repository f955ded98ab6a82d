"""The splice fast path: a large bin copied once, with results identical to unpackb."""

from __future__ import annotations

import struct
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagestream.errors import StreamDecodeError
from imagestream_msgpack import MsgpackDecoder
from imagestream_msgpack._splice import MIN_SPLICE_BYTES, find_large_bin, splice

BIG = MIN_SPLICE_BYTES


def image(size: int = BIG, fill: int = 0xAB) -> bytes:
    return b"\x89PNG" + bytes([fill]) * (size - 4)


def raw_map(*pairs: bytes) -> bytes:
    """A map from already packed key/value pairs (which may repeat keys)."""
    count = len(pairs) // 2
    header = bytes([0x80 | count]) if count < 16 else b"\xde" + struct.pack(">H", count)
    return header + b"".join(pairs)


def pack(value: Any) -> bytes:
    return msgpack.packb(value)


def split(frame: bytes, size: int) -> list[bytes]:
    return [frame[i : i + size] for i in range(0, len(frame), size)]


def framed(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


# -- find_large_bin ----------------------------------------------------------


def test_finds_the_image_of_a_novelai_map() -> None:
    payload = pack({"event_type": "final", "samp_ix": 0, "sigma": 0.5, "image": image()})
    spot = find_large_bin(memoryview(payload)[:4096])
    assert spot is not None
    assert spot.entries == 4
    assert payload[spot.key_start : spot.value_start] == pack("image")
    assert payload[spot.value_start] == 0xC5  # bin 16
    assert spot.length == BIG
    assert payload[spot.data_start : spot.data_start + 4] == b"\x89PNG"


@pytest.mark.parametrize(
    "key",
    [b"\xa1k", b"\xd9\x01k", b"\xda\x00\x01k", b"\xdb\x00\x00\x00\x01k"],
    ids=["fixstr", "str8", "str16", "str32"],
)
def test_every_string_key_encoding(key: bytes) -> None:
    payload = raw_map(key, pack(1), pack("image"), pack(image()))
    assert find_large_bin(memoryview(payload)) is not None


@pytest.mark.parametrize(
    "scalar",
    [None, True, False, 0, 127, -32, 255, -128, 2**16, -(2**31), 2**63, 1.5, "s", "x" * 300,
     b"small"],
)  # fmt: skip
def test_scalars_before_the_bin_are_skipped(scalar: Any) -> None:
    payload = raw_map(pack("a"), pack(scalar), pack("image"), pack(image()))
    spot = find_large_bin(memoryview(payload))
    assert spot is not None
    assert payload[spot.key_start : spot.value_start] == pack("image")


def test_map16_and_map32_headers() -> None:
    pairs = [p for i in range(20) for p in (pack(f"k{i}"), pack(i))]
    map16 = raw_map(*pairs, pack("image"), pack(image()))
    assert map16[0] == 0xDE
    map32 = b"\xdf" + struct.pack(">I", 21) + map16[3:]
    spot16 = find_large_bin(memoryview(map16))
    spot32 = find_large_bin(memoryview(map32))
    assert spot16 is not None
    assert spot32 is not None
    assert spot16.entries == spot32.entries == 21
    assert spot32.value_start == spot16.value_start + 2


@pytest.mark.parametrize(
    "payload",
    [
        pack([image()]),  # not a map
        raw_map(pack(1), pack(image())),  # integer key
        raw_map(pack(b"k"), pack(image())),  # bin key
        raw_map(pack("a"), pack([1]), pack("image"), pack(image())),  # array before the bin
        raw_map(pack("a"), pack({"b": 1}), pack("image"), pack(image())),  # map before it
        raw_map(pack("a"), pack(msgpack.ExtType(1, b"x")), pack("image"), pack(image())),
        raw_map(pack("a"), b"\xc1", pack("image"), pack(image())),  # garbage before it
        raw_map(pack("image"), pack(image(BIG - 1))),  # too small to bother
        b"",
    ],
    ids=["array", "int key", "bin key", "array first", "map first", "ext first", "0xc1 first",
         "small bin", "empty"],
)  # fmt: skip
def test_declines(payload: bytes) -> None:
    assert find_large_bin(memoryview(payload)) is None


def test_declines_when_the_head_runs_out() -> None:
    payload = raw_map(pack("a"), pack("x" * 5000), pack("image"), pack(image()))
    assert find_large_bin(memoryview(payload)[:4096]) is None
    payload = pack({"image": image()})
    header_end = 1 + len(pack("image")) + 3  # map, key, bin 16 header
    for cut in range(header_end):
        assert find_large_bin(memoryview(payload)[:cut]) is None
    assert find_large_bin(memoryview(payload)[:header_end]) is not None


# -- splice ------------------------------------------------------------------


@pytest.mark.parametrize("size", [7, 1000, 16 * 1024, 64 * 1024])
def test_splice_equals_unpackb(size: int) -> None:
    payload = pack({"event_type": "final", "gen_id": "g", "image": image(), "after": [1, {}]})
    frame = framed(payload)
    value = splice(split(frame, size), len(frame))
    assert value == msgpack.unpackb(payload)
    assert value is not None
    assert type(value["image"]) is bytes
    assert list(value) == ["event_type", "gen_id", "image", "after"]


def test_splice_of_the_whole_frame_in_one_piece() -> None:
    frame = framed(pack({"image": image()}))
    assert splice([frame], len(frame)) == {"image": image()}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (raw_map(pack("image"), pack(image()), b"\xd9\x05image", pack(1)), "repeated key"),
        (raw_map(pack("image"), pack(image()), pack("image"), pack(image(BIG, 1))),
         "repeated key, both bins"),
        (raw_map(pack("image"), pack(image()), b"\xd9\x05image", pack(None)),
         "repeated key, then nil"),
        (raw_map(pack("k"), pack(image()), pack("k2"), b"\xc1"), "garbage after"),
        (pack({"image": image()}) + b"\x00", "trailing bytes"),
        (pack({"image": image()})[:-1], "too few bytes"),
        (raw_map(b"\xa2\xff\xfe", pack(image())), "invalid UTF-8 key"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)  # fmt: skip
def test_decoder_matches_unpackb_where_splice_must_not_decide(payload: bytes, reason: str) -> None:
    """Whole frame (decoded in place) and split frame (splice or join) agree."""
    frame = framed(payload)
    frame_in_pieces = split(frame, 1000)
    spliced = splice(frame_in_pieces, len(frame))
    try:
        expected: Any = msgpack.unpackb(payload)
    except ValueError:
        expected = None
    assert spliced is None or spliced == expected, reason
    whole = outcome([frame])
    pieces = outcome(frame_in_pieces)
    assert pieces == whole
    if expected is not None:
        assert whole == ([expected], None)


def outcome(pieces: list[bytes]) -> tuple[list[Any], tuple[type, int | None] | None]:
    decoder = MsgpackDecoder()
    values: list[Any] = []
    try:
        for piece in pieces:
            values += decoder.feed(piece)
        values += decoder.close()
    except StreamDecodeError as err:
        return values, (type(err), err.offset)
    return values, None


# -- generated maps ----------------------------------------------------------

keys = st.text(max_size=6).map(pack) | st.sampled_from([b"\xd9\x05image", pack("image")])
scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False)
           | st.text(max_size=20) | st.binary(max_size=20)).map(pack)  # fmt: skip
bins = st.builds(lambda size, fill: pack(image(size, fill)), st.integers(BIG - 2, BIG + 2000),
                 st.integers(0, 255))  # fmt: skip
nested = st.lists(st.integers(-(2**63), 2**63), max_size=3).map(pack) | st.just(pack({"n": {}}))
garbage = st.sampled_from([b"\xc1", b"\x00", b"\x91"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pairs=st.lists(st.tuples(keys, scalars | bins | nested), min_size=1, max_size=6),
    extra=st.none() | garbage,
    cut=st.integers(1, 70_000),
)
def test_generated_maps_agree_with_unpackb(
    pairs: list[tuple[bytes, bytes]], extra: bytes | None, cut: int
) -> None:
    payload = raw_map(*(part for pair in pairs for part in pair))
    if extra is not None:
        payload += extra  # trailing bytes: an error either way
    frame = framed(payload)
    whole = outcome([frame])
    assert outcome(split(frame, cut)) == whole
    try:
        expected: Any = msgpack.unpackb(payload)
    except ValueError:
        assert whole[1] is not None
    else:
        assert whole == ([expected], None)
