"""The ``data_sink`` path: long ``data`` lines handed to a sink give what buffering them gives.

An echo sink keeps the references it is given and returns the value as the
decoder would have decoded it, with its size; with it, every stream must
decode to the same events, errors and state as without a sink, however it is
cut and whatever the threshold. Other tests check what the sink is given: the
value's bytes, as references to the chunks fed.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from imagestream.errors import ConfigurationError, DecoderLimitError, StreamTruncatedError
from imagestream_sse import SSEDecoder


class EchoSink:
    """Keeps ``(chunk, start, end)`` references; ``close`` decodes them as the decoder would."""

    made: ClassVar[list[EchoSink]] = []

    def __init__(self) -> None:
        self.pieces: list[tuple[bytes, int, int]] = []
        self.closed = False
        EchoSink.made.append(self)

    def write(self, chunk: bytes, start: int, end: int) -> None:
        assert isinstance(chunk, bytes) and 0 <= start <= end <= len(chunk)
        assert not self.closed
        self.pieces.append((chunk, start, end))

    def value(self) -> bytes:
        return b"".join(chunk[start:end] for chunk, start, end in self.pieces)

    def close(self) -> tuple[str, int]:
        self.closed = True
        value = self.value()
        assert b"\n" not in value and b"\r" not in value
        text = value.decode("utf-8", "replace")
        return text, len(text.encode("utf-8", "surrogatepass"))


def split_at(stream: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted({min(cut, len(stream)) for cut in cuts}), len(stream)]
    return [stream[a:b] for a, b in pairwise(bounds)]


def run(pieces: list[bytes], **options: Any) -> list[Any]:
    """Everything observable: events, the error or truncation, and the final state."""
    decoder = SSEDecoder(**options)
    out: list[Any] = []
    try:
        for piece in pieces:
            out += [(e.event, e.data, e.id, e.retry) for e in decoder.feed(piece)]
            out.append(("state", decoder.last_event_id, decoder.retry))
        decoder.close()
        out.append("clean end")
    except DecoderLimitError as exc:
        out.append(("limit", str(exc), exc.offset))
    except StreamTruncatedError as exc:
        out.append(("truncated", str(exc), exc.offset))
    return out


_VALUES = st.one_of(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef0123456789+/=", max_size=90),
    st.text(max_size=30),
    st.binary(max_size=30),
    st.sampled_from(['{"b64_json":"QUFB"}', "", " lead", "x" * 120, "é" * 40]),
)
_LINES = st.one_of(
    _VALUES.map(lambda v: b"data: " + (v if isinstance(v, bytes) else v.encode())),
    _VALUES.map(lambda v: b"data:" + (v if isinstance(v, bytes) else v.encode())),
    st.sampled_from(
        [b"", b"", b"event: e", b"id: 7", b"retry: 30", b": comment " + b"c" * 50, b"data", b"da"]
    ),
    st.binary(max_size=12),
)
_ENDS = st.sampled_from([b"\n", b"\n", b"\r\n", b"\r"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(st.tuples(_LINES, _ENDS), max_size=14),
    unended=st.binary(max_size=40) | st.just(b""),
    cuts=st.lists(st.integers(0, 2000), max_size=12),
    threshold=st.integers(1, 64),
    limits=st.sampled_from(
        [{}, {"max_line_bytes": 60}, {"max_event_bytes": 80}, {"max_buffer_bytes": 100}]
    ),
    bom=st.booleans(),
)
# A chunk ending right after "data:": the space that follows is not the value's.
@example(
    lines=[(b"data: ", b"\n"), (b"", b"\n")],
    unended=b"",
    cuts=[5],
    threshold=1,
    limits={},
    bom=False,
)
def test_a_sink_changes_nothing_observable(
    lines: list[tuple[bytes, bytes]],
    unended: bytes,
    cuts: list[int],
    threshold: int,
    limits: dict[str, int],
    bom: bool,
) -> None:
    stream = (b"\xef\xbb\xbf" if bom else b"") + b"".join(a + b for a, b in lines) + unended
    pieces = split_at(stream, cuts)
    plain = run(pieces, **limits)
    sunk = run(pieces, data_sink=EchoSink, data_sink_min_bytes=threshold, **limits)
    assert sunk == plain


def test_a_long_ascii_data_line_goes_to_the_sink_as_references() -> None:
    EchoSink.made.clear()
    value = b'{"b64_json":"' + b"QUFB" * 10_000 + b'"}'
    stream = b"event: image\ndata: " + value + b"\n\ndata: small\n\n"
    pieces = split_at(stream, list(range(0, len(stream), 4096)))
    decoder = SSEDecoder(data_sink=EchoSink)
    events = [e for piece in pieces for e in decoder.feed(piece)]
    decoder.close()
    assert [(e.event, e.data) for e in events] == [
        ("image", value.decode()),
        ("message", "small"),
    ]
    (sink,) = EchoSink.made
    assert sink.value() == value
    # Whole chunks as fed (no slices): every middle piece is one of the pieces fed.
    fed = {id(piece) for piece in pieces}
    assert sum(id(chunk) in fed for chunk, _, _ in sink.pieces) == len(sink.pieces)


def test_a_long_line_inside_one_chunk_goes_to_the_sink_uncopied() -> None:
    EchoSink.made.clear()
    value = b"QUFB" * 10_000
    stream = b"data: short\n\ndata:" + value + b"\n\n: done\n\n"
    decoder = SSEDecoder(data_sink=EchoSink)
    events = decoder.feed(stream)
    assert [e.data for e in events] == ["short", value.decode()]
    (sink,) = EchoSink.made
    assert sink.pieces == [
        (stream, len(b"data: short\n\ndata:"), len(stream) - len(b"\n\n: done\n\n"))
    ]


def test_a_line_that_is_not_ascii_goes_to_the_sink_too() -> None:
    # Characters cut between pieces and invalid bytes: the sink decodes as the decoder would.
    EchoSink.made.clear()
    value = "é灯🌊".encode() * 5_000 + b"\xff\xe2\x82"
    decoder = SSEDecoder(data_sink=EchoSink)
    body = b"data: " + value + b"\n\n"
    events = [e for i in range(0, len(body), 999) for e in decoder.feed(body[i : i + 999])]
    assert [e.data for e in events] == [value.decode("utf-8", "replace")]
    assert len(EchoSink.made) == 1


def test_short_lines_never_reach_a_sink() -> None:
    EchoSink.made.clear()
    stream = b"".join(b"data: %d\n\n" % i for i in range(10_000))
    decoder = SSEDecoder(data_sink=EchoSink)
    events = decoder.feed(stream)
    assert len(events) == 10_000 and EchoSink.made == []


def test_the_stream_ending_inside_a_sunk_line_is_truncation() -> None:
    decoder = SSEDecoder(data_sink=EchoSink)
    decoder.feed(b"data: " + b"A" * 40_000)
    with pytest.raises(StreamTruncatedError, match="inside a line"):
        decoder.close()


@pytest.mark.parametrize(
    ("options", "match"),
    [({"data_sink": 3}, "data_sink"), ({"data_sink_min_bytes": 0}, "data_sink_min_bytes")],
)
def test_sink_options_are_checked(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        SSEDecoder(**options)
