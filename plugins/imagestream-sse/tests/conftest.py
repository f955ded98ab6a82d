"""Shared test data for the SSE decoder: the table of parsing cases and the corpora.

``CASES`` is the table: the behaviour the web-platform-tests ``eventsource/format-*``
tests check, restated as input bytes and the events a decoder must dispatch,
plus cases of our own for the edges those tests do not reach. Any test that
takes a ``case`` argument runs once per row (see ``pytest_generate_tests``);
a test that takes ``stream_case`` also runs over the small benchmark corpora.

A note on the WPT rows: their server (``resources/message.py``) appends
``"\\n\\n\\n"`` to each message, or a single ``"\\n"`` when asked for
``newline=none``; the inputs below include those bytes.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
SHARED = (REPO / ".." / "shared").resolve()

Row = tuple[str, str, str, int | None]  # (event, data, id, retry)


@dataclass(frozen=True)
class Case:
    """One stream and what decoding it must give.

    Attributes:
        name: Test id.
        stream: The body bytes.
        events: ``(event, data, id, retry)`` of each dispatched event, in order.
        truncated: Whether the stream ends inside an event (``close()`` raises).
        options: Keyword arguments for the decoder.
    """

    name: str
    stream: bytes
    events: list[Row]
    truncated: bool = False
    options: dict[str, Any] = field(default_factory=dict)


def msg(data: str, *, event: str = "message", id: str = "", retry: int | None = None) -> Row:
    return (event, data, id, retry)


X2048 = b"x" * 2048
ELLIPSIS = "\u2026"

WPT_CASES = [
    # format-bom: the first BOM is skipped; a BOM later on is text, so the
    # line "\ufeffdata:2" is an unknown field and that block dispatches nothing.
    Case(
        "wpt-bom",
        b"\xef\xbb\xbfdata:1\n\n\xef\xbb\xbfdata:2\n\ndata:3\n\n\n",
        [msg("1"), msg("3")],
    ),
    # format-bom-2: only one BOM is skipped; the second makes the first line unknown.
    Case(
        "wpt-bom-2",
        b"\xef\xbb\xbf\xef\xbb\xbfdata:1\n\ndata:2\n\ndata:3\n\n\n",
        [msg("2"), msg("3")],
    ),
    # format-comments: comments (even long ones, even holding "data:") vanish,
    # with every kind of line end around them.
    Case(
        "wpt-comments",
        b"data:1\r:\x00\n:\r\ndata:2\n:"
        + X2048
        + b"\rdata:3\n:data:fail\r:"
        + X2048
        + b"\ndata:4\n"
        + b"\n",
        [msg("1\n2\n3\n4")],
    ),
    # format-data-before-final-empty-line: an event with no blank line after
    # it is never dispatched; "retry" holds from where it was set.
    Case(
        "wpt-data-before-final-empty-line",
        b"retry:1000\ndata:test1\n\nid:test\ndata:test2" + b"\n",
        [msg("test1", retry=1000)],
        truncated=True,
    ),
    # format-field-data: "data:" gives "", two bare "data" lines give "\n".
    Case(
        "wpt-field-data",
        b"data:\n\ndata\ndata\n\ndata:test\n\n\n",
        [msg(""), msg("\n"), msg("test")],
    ),
    # format-field-event: a named event, and the type resets to "message" after it.
    Case(
        "wpt-field-event",
        b"event:test\ndata:x\n\ndata:x\n\n\n",
        [msg("x", event="test"), msg("x")],
    ),
    # format-field-event-empty: "event: " (empty after the space) means "message".
    Case("wpt-field-event-empty", b"event: \ndata:data\n\n\n", [msg("data")]),
    # format-field-id: the id (non-ASCII here) is carried by the event.
    Case(
        "wpt-field-id",
        b"id: \xe2\x80\xa6\nretry: 200\ndata: hello\n\n",
        [msg("hello", id=ELLIPSIS, retry=200)],
    ),
    # format-field-id-2: on reconnection the last event ID carries over to the
    # events of the new stream until an id field changes it.
    Case(
        "wpt-field-id-2-reconnected",
        b"data: \xe2\x80\xa6\n\ndata: again\n\n",
        [msg(ELLIPSIS, id=ELLIPSIS), msg("again", id=ELLIPSIS)],
        options={"last_event_id": ELLIPSIS},
    ),
    # format-field-id-3: the id persists across events ...
    Case(
        "wpt-field-id-persists",
        b"id: 1\ndata: 1\n\ndata: 2\n\nid: 2\ndata:3\n\ndata:4\n\n",
        [msg("1", id="1"), msg("2", id="1"), msg("3", id="2"), msg("4", id="2")],
    ),
    # ... and an id field with an empty value resets it, with a colon or without.
    Case(
        "wpt-field-id-resets",
        b"id: 1\ndata: 1\n\nid:\ndata:2\n\ndata:3\n\n",
        [msg("1", id="1"), msg("2"), msg("3")],
    ),
    Case(
        "wpt-field-id-resets-no-colon",
        b"id: 1\ndata: 1\n\nid\ndata:2\n\ndata:3\n\n",
        [msg("1", id="1"), msg("2"), msg("3")],
    ),
    # format-field-id-null: an id containing U+0000 anywhere is ignored.
    *[
        Case(
            f"wpt-field-id-null-{n}",
            b"id: " + value + b"\nretry: 200\ndata: hello\n\n",
            [msg("hello", retry=200)],
        )
        for n, value in enumerate([b"\x00\x00", b"x\x00", b"\x00x", b"x\x00x", b" \x00"])
    ],
    # format-field-parsing: field names are case-sensitive and exact; one
    # space is stripped, not two; NUL is ordinary text in data.
    Case(
        "wpt-field-parsing",
        b"data:\x00\ndata:  2\rData:1\ndata\x00:2\ndata:1\r\x00data:4\nda-ta:3\rdata_5\n"
        b"data:3\rdata:\r\n data:32\ndata:4\n" + b"\n",
        [msg("\x00\n 2\n1\n3\n\n4")],
    ),
    # format-field-retry: decimal, leading zeros allowed (03000 is 3000, not octal).
    Case("wpt-field-retry", b"retry:03000\ndata:x\n\n\n", [msg("x", retry=3000)]),
    # format-field-retry-bogus: a value that is not all digits changes nothing.
    Case(
        "wpt-field-retry-bogus",
        b"retry:3000\nretry:1000x\ndata:x\n\n\n",
        [msg("x", retry=3000)],
    ),
    # format-field-retry-empty: "retry" with no value is ignored.
    Case("wpt-field-retry-empty", b"retry\ndata:test\n\n\n", [msg("test")]),
    # format-field-unknown: unknown fields and plain text lines are ignored;
    # " data" is not "data".
    Case(
        "wpt-field-unknown",
        b"data:test\n data\ndata\nfoobar:xxx\njustsometext\n:thisisacommentyay\ndata:test\n\n\n",
        [msg("test\n\ntest")],
    ),
    # format-leading-space: only a space is stripped, not a tab; a CR ends a line.
    Case("wpt-leading-space", b"data:\ttest\rdata: \ndata:test\n\n\n", [msg("\ttest\n\ntest")]),
    # format-newlines: CRLF, LF and CR mixed; the final "\r" + "\n" is one line end.
    Case("wpt-newlines", b"data:test\r\ndata\ndata:test\r\n\r" + b"\n", [msg("test\n\ntest")]),
    # format-null-character: NUL survives in data.
    Case("wpt-null-character", b"data:\x00\n\n\n\n\n", [msg("\x00")]),
    # format-utf-8: the body is always UTF-8, whatever the Content-Type says.
    Case("wpt-utf-8", b"data:ok\xe2\x80\xa6\n\n\n", [msg("ok\u2026")]),
]

OWN_CASES = [
    Case("empty-stream", b"", []),
    Case("crlf", b"event: a\r\ndata: 1\r\n\r\ndata: 2\r\n\r\n", [msg("1", event="a"), msg("2")]),
    Case("cr-only", b"data: a\rdata: b\r\r", [msg("a\nb")]),
    Case("cr-cr-is-two-line-ends", b"data: a\r\rdata: b\r\n\r\n", [msg("a"), msg("b")]),
    Case("lf-cr-is-two-line-ends", b"data: a\n\rdata: b\n\r", [msg("a"), msg("b")]),
    Case("multi-line-data", b"data: a\ndata: b\ndata:\n\n", [msg("a\nb\n")]),
    Case("one-space-stripped-only", b"data:  two\n\n", [msg(" two")]),
    Case("colon-in-value", b"data: a:b: c\n\n", [msg("a:b: c")]),
    Case("event-type-resets-without-dispatch", b"event: a\n\ndata: x\n\n", [msg("x")]),
    Case("event-type-last-wins", b"event: a\nevent: b\ndata: x\n\n", [msg("x", event="b")]),
    Case(
        "id-nul-keeps-previous",
        b"id: 1\ndata: a\n\nid: 2\x00\ndata: b\n\n",
        [msg("a", id="1"), msg("b", id="1")],
    ),
    Case("id-without-data-still-moves", b"id: 7\n\ndata: x\n\n", [msg("x", id="7")]),
    Case(
        "retry-persists-across-events",
        b"retry: 500\n\ndata: a\n\nretry: 7\ndata: b\n\ndata: c\n\n",
        [msg("a", retry=500), msg("b", retry=7), msg("c", retry=7)],
    ),
    *[
        Case(
            f"retry-bogus-{n}",
            b"retry: 10\n\nretry: " + value + b"\ndata: x\n\n",
            [msg("x", retry=10)],
        )
        for n, value in enumerate(
            [b"1x", b"-1", b" 1", b"", b"1.5", b"+1", "\u0661\u0662".encode(), "\u00b2".encode()]
        )
    ],
    Case("retry-no-space", b"retry:25\ndata: x\n\n", [msg("x", retry=25)]),
    Case(
        "retry-too-many-digits-ignored",
        b"retry: 5\nretry: " + b"9" * 5_000 + b"\ndata: x\n\n",
        [msg("x", retry=5)],
    ),
    Case("retry-leading-zeros", b"retry: " + b"0" * 5_000 + b"7\ndata: x\n\n", [msg("x", retry=7)]),
    Case("retry-huge", b"retry: 99999999999999999999\ndata: x\n\n", [msg("x", retry=10**20 - 1)]),
    Case("only-comments-is-clean", b": ping\n:\n\n: pong\r\n", []),
    Case("blank-lines-only-is-clean", b"\n\r\n\r\n\n", []),
    Case("partial-comment-at-end-is-clean", b"data: x\n\n: keep-al", [msg("x")]),
    Case("partial-line-at-end", b"data: x\n\ndata: y", [msg("x")], truncated=True),
    Case("fields-without-blank-line", b"data: x\n\ndata: y\n", [msg("x")], truncated=True),
    Case("unknown-field-without-blank-line", b"foo: bar\n", [], truncated=True),
    Case("retry-without-blank-line", b"data: x\n\nretry: 5\n", [msg("x")], truncated=True),
    Case("comment-after-open-event", b"data: x\n: c\n", [], truncated=True),
    Case("trailing-cr-ends-the-line", b"data: x\n\r", [msg("x")]),
    Case("bom-only", b"\xef\xbb\xbf", []),
    Case("partial-bom-at-end", b"\xef\xbb", [], truncated=True),
    Case("bom-like-prefix-is-text", b"\xef\xbbdata: x\n\ndata: y\n\n", [msg("y")]),
    Case("bom-then-crlf", b"\xef\xbb\xbf\r\ndata: x\r\n\r\n", [msg("x")]),
    Case("invalid-utf8-replaced", b"data: \xff\xfeok\n\n", [msg("\ufffd\ufffdok")]),
    Case(
        "truncated-utf8-before-line-end",
        b"data: \xe2\x82\ndata: \xe2\x82\xac\n\n",
        [msg("\ufffd\n\u20ac")],
    ),
    Case("invalid-utf8-in-field-name", b"d\xffata: x\ndata: y\n\n", [msg("y")]),
    Case("astral-and-cjk", "data: 灯台 🌊\n\n".encode(), [msg("灯台 🌊")]),
    Case(
        "uniform-data-blocks",
        b"".join(b"data: %d\n\n" % i for i in range(40)),
        [msg(str(i)) for i in range(40)],
    ),
    Case(
        "uniform-event-blocks-with-empty-type",
        b"".join(b"event: %s\ndata: %d\n\n" % (b"" if i % 5 else b"t", i) for i in range(40)),
        [msg(str(i), event="message" if i % 5 else "t") for i in range(40)],
    ),
    Case(
        "uniform-blocks-broken-midway",
        b"".join(b"data: %d\n\n" % i for i in range(20))
        + b"data:no-space\n\n"
        + b"".join(b"event: e\ndata: %d\n\n" % i for i in range(20)),
        [msg(str(i)) for i in range(20)]
        + [msg("no-space")]
        + [msg(str(i), event="e") for i in range(20)],
    ),
    Case(
        "long-line",
        b"event: big\ndata: " + b"A" * 200_000 + b"\n\n",
        [msg("A" * 200_000, event="big")],
    ),
]

CASES = WPT_CASES + OWN_CASES


def _load_corpora() -> ModuleType | None:
    """The benchmark's corpus builders (``bench/_corpora_sse.py``), if the repo has them."""
    path = REPO / "bench" / "_corpora_sse.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("_imagestream_bench_corpora_sse", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def corpus_cases() -> list[Case]:
    """The benchmark's stream shapes in small sizes, as table rows."""
    corpora = _load_corpora()
    if corpora is None:
        return []
    built = {
        "corpus-image": corpora.image_stream(b64_size=3_000, partials=3, seed=1),
        "corpus-text": corpora.text_stream(deltas=60, seed=2),
        "corpus-single-event": corpora.single_event(size=5_000, seed=3),
    }
    return [
        Case(name, stream, [msg(data, event=event) for event, data in expected])
        for name, (stream, expected) in built.items()
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" in metafunc.fixturenames:
        metafunc.parametrize("case", CASES, ids=[c.name for c in CASES])
    if "stream_case" in metafunc.fixturenames:
        rows = CASES + corpus_cases()
        metafunc.parametrize("stream_case", rows, ids=[c.name for c in rows])


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """The recorded-traffic fixtures next to the repository (skip when absent)."""
    path = SHARED / "fixtures"
    if not path.is_dir():
        pytest.skip(f"recorded fixtures not found at {path}")
    return path
