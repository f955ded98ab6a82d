"""The same outcome whatever the chunk boundaries: every case, every split.

The outcome of a stream is the list of decoded values, then either a clean
end or one error (type, offset, limit name). Feeding the stream whole, one
byte at a time, 7 bytes at a time, 64 KiB at a time or cut at random places
(Hypothesis) must give the same outcome, the one the case documents.
"""

from __future__ import annotations

import struct
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagestream.errors import DecoderLimitError, StreamDecodeError
from imagestream_msgpack import MsgpackDecoder

SPLIT_SETTINGS = settings(
    max_examples=40,
    deadline=None,  # a shared, noisy machine: time limits would flake
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

BUFFER_TYPES = (bytes, bytearray, memoryview)


@st.composite
def splits(draw: st.DrawFn, stream: bytes) -> list[Any]:
    """``stream`` cut at random places, each piece as bytes, bytearray or memoryview."""
    size = len(stream)
    # Mostly tiny pieces (prefixes straddling chunks), some large ones.
    lengths = draw(
        st.lists(st.integers(0, 9) | st.integers(0, 70_000), max_size=60)
    )
    pieces: list[Any] = []
    pos = 0
    for length in lengths:
        if pos >= size:
            break
        kind = draw(st.sampled_from(BUFFER_TYPES))
        pieces.append(kind(stream[pos : pos + length]))
        pos += length
    if pos < size:
        pieces.append(stream[pos:])
    return pieces


def expected(case: Any) -> tuple[Any, ...]:
    return (case.values, case.error, case.offset, case.limit)


def test_whole_stream(case: Any, kit: Any) -> None:
    outcome = kit.run(case.decoder(), [case.stream])
    assert outcome.summary() == expected(case)
    if isinstance(outcome.error, DecoderLimitError):
        # The message names the keyword that raises the limit.
        assert f"{case.limit}=" in str(outcome.error)


@pytest.mark.parametrize("size", [1, 7, 64 * 1024], ids=["1 byte", "7 bytes", "64 KiB"])
def test_fixed_piece_sizes(case: Any, kit: Any, size: int) -> None:
    outcome = kit.run(case.decoder(), kit.split_every(case.stream, size))
    assert outcome.summary() == expected(case)


@SPLIT_SETTINGS
@given(data=st.data())
def test_random_splits(case: Any, kit: Any, data: st.DataObject) -> None:
    pieces = data.draw(splits(case.stream), label="pieces")
    outcome = kit.run(case.decoder(), pieces)
    assert outcome.summary() == expected(case)


# -- generated values ------------------------------------------------------

msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.binary(max_size=300),
    lambda inner: st.lists(inner, max_size=6)
    | st.dictionaries(st.text(max_size=8), inner, max_size=6),
    max_leaves=30,
)


@settings(max_examples=150, deadline=None)
@given(values=st.lists(msgpack_values, max_size=8), data=st.data())
@pytest.mark.parametrize("framing", ["length-prefixed", "plain"])
def test_generated_values_round_trip(framing: str, values: list[Any], data: st.DataObject) -> None:
    packed = [msgpack.packb(v) for v in values]
    if framing == "plain":
        stream = b"".join(packed)
    else:
        stream = b"".join(struct.pack(">I", len(p)) + p for p in packed)
    pieces = data.draw(splits(stream), label="pieces")
    decoder = MsgpackDecoder(framing=framing)  # type: ignore[arg-type]
    got: list[Any] = []
    for piece in pieces:
        got += decoder.feed(piece)
    got += decoder.close()
    assert got == values


# -- arbitrary bytes -------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(garbage=st.binary(max_size=300), data=st.data())
@pytest.mark.parametrize("framing", ["length-prefixed", "plain"])
def test_arbitrary_bytes_give_values_or_a_typed_error(
    framing: str, garbage: bytes, data: st.DataObject, kit: Any
) -> None:
    """Anything at all: no other exception, no hang, and split-independent."""
    options = {"framing": framing, "max_frame_bytes": 4096, "max_buffer_bytes": 4096}
    whole = kit.run(MsgpackDecoder(**options), [garbage])  # type: ignore[arg-type]
    pieces = data.draw(splits(garbage), label="pieces")
    split = kit.run(MsgpackDecoder(**options), pieces)  # type: ignore[arg-type]
    assert split.summary() == whole.summary()
    if whole.error is not None:
        assert isinstance(whole.error, StreamDecodeError)
        assert whole.error.offset is not None
        assert 0 <= whole.error.offset <= len(garbage)
