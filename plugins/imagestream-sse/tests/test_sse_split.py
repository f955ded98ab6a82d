"""Split invariance: the same events whatever the chunk boundaries, for every test stream.

Runs over every row of the table in ``conftest.py`` and over the benchmark's
stream shapes in small size, cutting each stream at random places.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagestream.errors import StreamTruncatedError
from imagestream_sse import ServerSentEvent, SSEDecoder


def split_at(stream: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(set(cuts)), len(stream)]
    return [stream[a:b] for a, b in pairwise(bounds)]


def decode_pieces(pieces: list[bytes], **options: Any) -> tuple[list[ServerSentEvent], bool]:
    decoder = SSEDecoder(**options)
    events: list[ServerSentEvent] = []
    for piece in pieces:
        events += decoder.feed(piece)
    try:
        events += decoder.close()
    except StreamTruncatedError:
        return events, True
    return events, False


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_random_splits_give_the_same_events(stream_case: Any, data: st.DataObject) -> None:
    stream = stream_case.stream
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=40), label="cuts")
    events, truncated = decode_pieces(split_at(stream, cuts), **stream_case.options)
    assert [(e.event, e.data, e.id, e.retry) for e in events] == stream_case.events
    assert truncated is stream_case.truncated


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_runs_of_tiny_pieces_give_the_same_events(stream_case: Any, data: st.DataObject) -> None:
    # Uniform cuts rarely fall twice within a few bytes; line ends, BOMs and
    # multi-byte characters need exactly that. Cut a random window into 1-3
    # byte pieces and the rest at random.
    stream = stream_case.stream
    start = data.draw(st.integers(0, len(stream)), label="window start")
    steps = data.draw(st.lists(st.integers(1, 3), max_size=24), label="tiny pieces")
    cuts = [start]
    for step in steps:
        cuts.append(min(cuts[-1] + step, len(stream)))
    cuts += data.draw(st.lists(st.integers(0, len(stream)), max_size=8), label="cuts")
    events, truncated = decode_pieces(split_at(stream, cuts), **stream_case.options)
    assert [(e.event, e.data, e.id, e.retry) for e in events] == stream_case.events
    assert truncated is stream_case.truncated
