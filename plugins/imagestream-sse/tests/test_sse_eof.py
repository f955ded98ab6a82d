"""The end of the stream: what is truncated, what is clean, and the lenient mode."""

from __future__ import annotations

import pytest

from imagestream.errors import ImagestreamError, StreamDecodeError, StreamTruncatedError
from imagestream_sse import SSEDecoder


def test_truncated_event_is_not_dispatched_and_close_raises() -> None:
    stream = b"data: whole\n\nevent: image\ndata: x\n"
    decoder = SSEDecoder()
    events = decoder.feed(stream)
    assert [e.data for e in events] == ["whole"]
    with pytest.raises(StreamTruncatedError) as caught:
        decoder.close()
    error = caught.value
    assert isinstance(error, StreamDecodeError)
    assert isinstance(error, ImagestreamError)
    assert error.offset == len(stream)
    assert "inside an event" in str(error)
    assert "strict_eof=False" in str(error)


def test_stream_ending_inside_a_line_raises() -> None:
    decoder = SSEDecoder()
    decoder.feed(b'data: whole\n\ndata: {"b64_json": "iVBO')
    with pytest.raises(StreamTruncatedError, match="inside a line"):
        decoder.close()


@pytest.mark.parametrize(
    "stream",
    [
        b"",
        b"data: x\n\n",
        b"data: x\r\n\r\n",
        b"data: x\r\r",
        b": comment\n",
        b"data: x\n\n: partial comment",
        b"\n\n\n",
    ],
)
def test_clean_ends(stream: bytes) -> None:
    decoder = SSEDecoder()
    decoder.feed(stream)
    assert decoder.close() == []


def test_lenient_mode_discards_the_unfinished_event_silently() -> None:
    decoder = SSEDecoder(strict_eof=False)
    assert decoder.feed(b"data: a\n\ndata: b\n") != []
    assert decoder.close() == []


def test_close_is_idempotent_and_feed_after_close_fails() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: a\n")
    with pytest.raises(StreamTruncatedError):
        decoder.close()
    assert decoder.close() == []
    with pytest.raises(RuntimeError):
        decoder.feed(b"\n")


def test_close_after_clean_end_then_feed_fails() -> None:
    decoder = SSEDecoder()
    assert decoder.close() == []
    with pytest.raises(RuntimeError):
        decoder.feed(b"data: a\n\n")
