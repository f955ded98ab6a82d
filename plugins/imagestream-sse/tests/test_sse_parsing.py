"""Parsing rules that depend on where chunks are cut, and the decoder's small API."""

from __future__ import annotations

import attrs
import pytest

from imagestream_sse import ServerSentEvent, SSEDecoder
from imagestream_sse._event import make_event


def test_cr_then_lf_in_the_next_chunk_is_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    # Were the LF a second line end, this blank line would dispatch "a" now.
    assert decoder.feed(b"\ndata: b\r") == []
    events = decoder.feed(b"\n\r\n")
    assert [e.data for e in events] == ["a\nb"]
    assert decoder.close() == []


def test_a_cr_ending_a_chunk_dispatches_at_once() -> None:
    # The blank line is complete at the CR; waiting for the next byte would
    # hold an event back on a server that ends lines with CR only.
    decoder = SSEDecoder()
    assert [e.data for e in decoder.feed(b"data: a\r\r")] == ["a"]


def test_a_skipped_lf_is_only_the_first_byte_after_cr() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: a\r")
    decoder.feed(b"")  # an empty chunk changes nothing
    assert [e.data for e in decoder.feed(b"\n\n")] == ["a"]


@pytest.mark.parametrize("cut", [1, 2])
def test_bom_split_across_chunks_is_skipped(cut: int) -> None:
    bom = b"\xef\xbb\xbf"
    decoder = SSEDecoder()
    assert decoder.feed(bom[:cut]) == []
    events = decoder.feed(bom[cut:] + b"data: x\n\n")
    assert [e.data for e in events] == ["x"]


def test_bom_fed_byte_by_byte_then_second_bom_is_text() -> None:
    decoder = SSEDecoder()
    events = []
    for byte in b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\ndata: y\n\n":
        events += decoder.feed(bytes([byte]))
    assert [e.data for e in events] == ["y"]


def test_bom_is_only_recognised_at_the_stream_start() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: a\n\n")
    assert decoder.feed(b"\xef\xbb\xbfdata: b\n\n") == []


def test_multibyte_character_split_across_chunks_survives() -> None:
    stream = "data: ok… 灯台 🌊\n\n".encode()
    decoder = SSEDecoder()
    events = []
    for byte in stream:
        events += decoder.feed(bytes([byte]))
    assert [e.data for e in events] == ["ok… 灯台 🌊"]


def test_invalid_utf8_becomes_replacement_characters() -> None:
    events = SSEDecoder().feed(b"event: \xc3\ndata: a\xffb\xed\xa0\x80c\n\n")
    assert events[0].event == "\ufffd"
    assert events[0].data == "a\ufffdb\ufffd\ufffd\ufffdc"


def test_retry_is_the_reconnection_time_in_effect() -> None:
    assert SSEDecoder().retry is None
    decoder = SSEDecoder()
    decoder.feed(b"retry: 1500\n")
    assert decoder.retry == 1500  # takes effect at once, before any blank line
    events = decoder.feed(b"\ndata: a\n\nretry: x1\ndata: b\n\n")
    assert [e.retry for e in events] == [1500, 1500]


def test_last_event_id_moves_at_blank_lines() -> None:
    decoder = SSEDecoder(last_event_id="start")
    assert decoder.last_event_id == "start"
    decoder.feed(b"id: 5\n")
    assert decoder.last_event_id == "start"  # not until the block ends
    decoder.feed(b"\n")  # no data: nothing dispatched, but the id is committed
    assert decoder.last_event_id == "5"
    decoder.feed(b"id: 6\x00\n\n")
    assert decoder.last_event_id == "5"


def test_mutable_buffers_are_copied() -> None:
    decoder = SSEDecoder()
    piece = bytearray(b"data: abc")
    decoder.feed(piece)
    piece[:] = b"XXXXXXXXX"
    events = decoder.feed(memoryview(b"def\n\n"))
    assert [e.data for e in events] == ["abcdef"]


def test_server_sent_event_record() -> None:
    event = ServerSentEvent(data='{"a": 1}')
    assert (event.event, event.data, event.id, event.retry) == ("message", '{"a": 1}', "", None)
    assert event.json() == {"a": 1}
    assert event == ServerSentEvent("message", '{"a": 1}', "", None)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.data = "other"  # type: ignore[misc]
    assert not hasattr(event, "__dict__")  # slotted


def test_fast_event_construction_matches_attrs() -> None:
    # make_event skips attrs' __init__; that is only right while __init__
    # does nothing but store the four fields.
    assert all(f.validator is None and f.converter is None for f in attrs.fields(ServerSentEvent))
    assert not hasattr(ServerSentEvent, "__attrs_post_init__")
    made = make_event("e", "d", "i", 5)
    assert type(made) is ServerSentEvent
    assert made == ServerSentEvent("e", "d", "i", 5)
    assert hash(made) == hash(ServerSentEvent("e", "d", "i", 5))
    assert repr(made) == repr(ServerSentEvent("e", "d", "i", 5))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        made.retry = 6  # type: ignore[misc]
