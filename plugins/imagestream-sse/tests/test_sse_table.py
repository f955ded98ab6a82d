"""The table of parsing cases (the WPT ``eventsource/format-*`` facts and our own edges)."""

from __future__ import annotations

from typing import Any

import pytest

from imagestream.errors import StreamTruncatedError
from imagestream_sse import ServerSentEvent, SSEDecoder


def decode_all(stream: bytes, **options: Any) -> tuple[list[ServerSentEvent], bool]:
    """Feed ``stream`` in one piece; return the events and whether close() said truncated."""
    decoder = SSEDecoder(**options)
    events = decoder.feed(stream)
    try:
        events += decoder.close()
    except StreamTruncatedError:
        return events, True
    return events, False


def rows(events: list[ServerSentEvent]) -> list[tuple[str, str, str, int | None]]:
    return [(e.event, e.data, e.id, e.retry) for e in events]


def test_case(case: Any) -> None:
    events, truncated = decode_all(case.stream, **case.options)
    assert rows(events) == case.events
    assert truncated is case.truncated


def test_case_lenient_eof_never_raises(case: Any) -> None:
    decoder = SSEDecoder(strict_eof=False, **case.options)
    events = decoder.feed(case.stream) + decoder.close()
    assert rows(events) == case.events


@pytest.mark.parametrize("size", [1, 7, 64 * 1024])
def test_case_fixed_piece_sizes(case: Any, size: int) -> None:
    decoder = SSEDecoder(**case.options)
    events: list[ServerSentEvent] = []
    for i in range(0, len(case.stream), size):
        events += decoder.feed(case.stream[i : i + size])
    if case.truncated:
        with pytest.raises(StreamTruncatedError):
            decoder.close()
    else:
        assert decoder.close() == []
    assert rows(events) == case.events
