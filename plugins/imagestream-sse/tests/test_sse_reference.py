"""Differential test: the decoder against a literal, slow reading of the HTML standard.

The reference below decodes the whole body first, then splits and interprets
lines exactly as the standard words it. Random streams built from the tokens
that matter (field names, colons, spaces, every line end, BOM bytes, NUL,
broken and whole multi-byte characters) are fed to the decoder in random
pieces, and both must agree on the events and on whether the end is truncated.
"""

from __future__ import annotations

import re
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from imagestream.errors import StreamTruncatedError
from imagestream_sse import SSEDecoder

Row = tuple[str, str, str, int | None]

_LINE_END = re.compile(r"\r\n|\r|\n")


def reference(stream: bytes) -> tuple[list[Row], bool]:
    text = stream.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    *lines, partial = _LINE_END.split(text)
    events: list[Row] = []
    data, event_type, last_id, retry = "", "", "", None
    in_block = False
    for line in lines:
        if line == "":
            if data:
                events.append((event_type or "message", data.removesuffix("\n"), last_id, retry))
            data, event_type, in_block = "", "", False
            continue
        if line.startswith(":"):
            continue
        in_block = True
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            data += value + "\n"
        elif name == "event":
            event_type = value
        elif name == "id":
            if "\0" not in value:
                last_id = value
        elif name == "retry" and value and all("0" <= c <= "9" for c in value):
            retry = int(value)
    truncated = (partial != "" and not partial.startswith(":")) or in_block
    return events, truncated


TOKENS = [
    b"data", b"event", b"id", b"retry", b"foo", b":", b" ", b"  ", b"\n", b"\r", b"\r\n",
    b"\n\n", b"\xef\xbb\xbf", b"\xef", b"\xbb", b"\xbf", b"\x00", b"0", b"12", b"x", b"\t",
    b"\xff", b"\xe2\x80", b"\xa6", "é".encode(), "🌊".encode(), b"data: ", b"event: ",
    b"\xf0\x9f", b"\x8c\x8a",
]  # fmt: skip

streams = st.lists(st.sampled_from(TOKENS), max_size=60).map(b"".join)


@settings(max_examples=400, deadline=None)
@given(stream=streams, cuts=st.lists(st.integers(0, 400), max_size=12))
def test_agrees_with_the_reference(stream: bytes, cuts: list[int]) -> None:
    expected, expected_truncated = reference(stream)
    bounds = [0, *sorted({c for c in cuts if c <= len(stream)}), len(stream)]
    decoder = SSEDecoder()
    events = []
    for a, b in pairwise(bounds):
        events += decoder.feed(stream[a:b])
    try:
        decoder.close()
        truncated = False
    except StreamTruncatedError:
        truncated = True
    assert [(e.event, e.data, e.id, e.retry) for e in events] == expected
    assert truncated is expected_truncated


@settings(max_examples=60, deadline=None)
@given(
    blocks=st.lists(
        st.tuples(
            st.sampled_from(["", "a", "é"]),
            st.text(max_size=12).filter(lambda s: "\n" not in s and "\r" not in s),
        ),
        min_size=10,
        max_size=40,
    ),
    with_event=st.booleans(),
    cuts=st.lists(st.integers(0, 3000), max_size=6),
)
def test_uniform_streams_agree_with_the_reference(
    blocks: list[tuple[str, str]], with_event: bool, cuts: list[int]
) -> None:
    # Streams of identically shaped blocks take the decoder's fast path.
    if with_event:
        stream = "".join(f"event: {t}\ndata: {d}\n\n" for t, d in blocks).encode()
    else:
        stream = "".join(f"data: {d}\n\n" for _, d in blocks).encode()
    expected, _ = reference(stream)
    bounds = [0, *sorted({c for c in cuts if c <= len(stream)}), len(stream)]
    decoder = SSEDecoder()
    events = []
    for a, b in pairwise(bounds):
        events += decoder.feed(stream[a:b])
    decoder.close()
    assert [(e.event, e.data, e.id, e.retry) for e in events] == expected
