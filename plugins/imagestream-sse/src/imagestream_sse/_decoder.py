"""Incremental decoder for ``text/event-stream`` bodies (WHATWG HTML, server-sent events).

The parsing rules are the ones an ``EventSource`` applies ("Interpreting an
event stream" in the HTML standard); the decoder adds what a browser does not
need: size limits, and an error when a stream ends inside an event.

How it stays fast on multi-megabyte image events and on many small text
events alike:

* Line ends are found with ``bytes.find`` / ``bytes.rfind`` on each chunk.
  A chunk without a line end (the middle of a long base64 line) is appended
  to a list of pending pieces as it is, and nothing else happens to it: the
  pieces are joined once, when the line completes, so an unfinished line
  is never re-copied as more of it arrives.
* A chunk without a CR is split on LF directly. Only chunks that contain a CR
  are normalised to LF first, and a CR that ends a chunk is remembered so
  that an LF opening the next chunk is not read as a second line end.
* UTF-8 is decoded once per completed run of lines (one ``str`` call for all
  the complete lines of a chunk), and the long line that completes the pending
  pieces has its value decoded straight out of the joined buffer, without
  first slicing off the field name. Splitting the decoded run on ``"\\n"``
  gives the same text as decoding each line alone, because LF can never be
  part of a multi-byte UTF-8 sequence, so a decode error cannot straddle it.
* With a ``data_sink``, a ``data`` line that reaches ``data_sink_min_bytes``
  is not buffered at all: its bytes go to the sink as they arrive, as
  references to the chunks fed, and the event carries the text the sink
  returns for it (see :mod:`imagestream_sse._sink`).
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import repeat
from operator import itemgetter
from typing import NoReturn

from imagestream.errors import ConfigurationError, DecoderLimitError, StreamTruncatedError

from . import defaults
from ._event import ServerSentEvent, make_event
from ._sink import DataSink, DataSinkFactory

__all__ = ["SSEDecoder"]

_BOM = b"\xef\xbb\xbf"
_LF = 0x0A
_CR = 0x0D
_COLON = 0x3A
_MAX_RETRY_DIGITS = 4000  # under int()'s default max_str_digits (4300)

# Fewer complete lines than this in a chunk: not worth trying the block fast path.
_MIN_RUN_LINES = 12
_after_data = itemgetter(slice(len("data: "), None))

_EOF_HINT = (
    "the server or the connection closed mid-event; pass strict_eof=False to discard "
    "the unfinished event silently, as a browser's EventSource does"
)


def _utf8_size(text: str) -> int:
    """Size of ``text`` encoded as UTF-8; O(1) for ASCII text (base64, most JSON)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _parse_retry(value: str, current: int | None) -> int | None:
    """The new reconnection time if ``value`` is a valid ``retry`` value, else ``current``."""
    # isascii() first: isdigit() alone accepts digits of other scripts
    # ("\u0661\u0662"), which the standard does not.
    if not (value.isascii() and value.isdigit()):
        return current
    digits = value.lstrip("0") or "0"
    if len(digits) > _MAX_RETRY_DIGITS:
        # Converting a huge digit string is slow (quadratic), and no client
        # waits 10**4000 ms anyway: ignore it like a bad value.
        return current
    try:
        return int(digits)
    except ValueError:  # the interpreter's int max_str_digits was set lower
        return current


def _check_limit(name: str, value: object) -> int:
    # bool is an int subclass; True bytes is certainly a mistake.
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigurationError(f"{name} must be a positive int (bytes), got {value!r}")
    return value


class SSEDecoder:
    """Turn the bytes of a ``text/event-stream`` body into :class:`ServerSentEvent` objects.

    Feed the body in whatever pieces it arrives; the events that come out do
    not depend on where the pieces were cut::

        decoder = SSEDecoder()
        for chunk in body_chunks:
            for event in decoder.feed(chunk):
                handle(event)
        decoder.close()  # raises StreamTruncatedError if the body stopped mid-event

    Parsing follows the WHATWG rules: CR, LF and CRLF line ends; one leading
    UTF-8 byte order mark skipped; UTF-8 decoded with U+FFFD for invalid
    bytes; ``:`` comments; a field line without a colon is a field name with
    an empty value; one space after the colon dropped; ``data`` lines joined
    with ``"\\n"``; ``event`` defaulting to ``"message"``; ``id`` ignored when
    it contains U+0000; ``retry`` honoured only when it is ASCII digits;
    unknown fields ignored; a block whose data buffer is empty is not
    dispatched.

    Every limit is checked as bytes arrive, so a line that never ends fails
    once it passes ``max_line_bytes``, not after it has filled memory.

    Args:
        max_line_bytes: Longest line accepted, in bytes, without its line end.
        max_event_bytes: Largest ``data`` of one event, in UTF-8 bytes of
            :attr:`ServerSentEvent.data` (field names and line ends not counted).
        max_buffer_bytes: Most bytes held at once: the unfinished line plus the
            data of the event not yet dispatched.
        strict_eof: When true (the default), :meth:`close` raises
            :class:`~imagestream.errors.StreamTruncatedError` if the stream
            ended inside an event. When false, the unfinished event is
            discarded silently, exactly as an ``EventSource`` does.
        last_event_id: The last event ID to start from, e.g. the one a previous
            connection reached, when this decoder reads the stream that
            resumes it. It is what events carry until an ``id`` field arrives.
        data_sink: Called for each ``data`` line of at least
            ``data_sink_min_bytes`` to make a
            :class:`~imagestream_sse.DataSink` that takes the line's value as
            it arrives, so the decoder neither buffers nor decodes it; the
            event's data holds the text the sink's ``close()`` returns in its
            place. The limits still count the value's own size, which the
            sink reports.
        data_sink_min_bytes: How long a ``data`` line must be to go to the sink.

    Raises:
        ConfigurationError: A limit is not a positive int, ``data_sink`` is
            not callable, or ``last_event_id`` contains U+0000 (which no
            ``id`` field can set).
    """

    __slots__ = (
        "_at_start",
        "_closed",
        "_data_cap",
        "_data_parts",
        "_data_size",
        "_event_type",
        "_guard",
        "_head",
        "_id_buffer",
        "_last_event_id",
        "_max_buffer",
        "_max_event",
        "_max_line",
        "_open",
        "_pending",
        "_pending_cap",
        "_pending_len",
        "_pending_start",
        "_received",
        "_retry",
        "_sink",
        "_sink_factory",
        "_sink_min",
        "_sink_prefix",
        "_sink_ready",
        "_skip_lf",
        "_strict_eof",
    )

    def __init__(
        self,
        *,
        max_line_bytes: int = defaults.MAX_LINE_BYTES,
        max_event_bytes: int = defaults.MAX_EVENT_BYTES,
        max_buffer_bytes: int = defaults.MAX_BUFFER_BYTES,
        strict_eof: bool = defaults.STRICT_EOF,
        last_event_id: str = "",
        data_sink: DataSinkFactory | None = None,
        data_sink_min_bytes: int = defaults.DATA_SINK_MIN_BYTES,
    ) -> None:
        self._max_line = _check_limit("max_line_bytes", max_line_bytes)
        self._max_event = _check_limit("max_event_bytes", max_event_bytes)
        self._max_buffer = _check_limit("max_buffer_bytes", max_buffer_bytes)
        if "\0" in last_event_id:
            raise ConfigurationError("last_event_id cannot contain U+0000")
        if data_sink is not None and not callable(data_sink):
            raise ConfigurationError(f"data_sink must be callable, got {data_sink!r}")
        self._strict_eof = bool(strict_eof)
        self._sink_factory = data_sink
        self._sink_min = _check_limit("data_sink_min_bytes", data_sink_min_bytes)
        self._sink: DataSink | None = None  # the sink taking the unfinished line, if one is
        self._sink_prefix = b""  # the line's bytes before the value ("data:" or "data: ")
        self._sink_ready = data_sink is not None  # the unfinished line may still go to a sink

        # Byte-level state.
        self._received = 0  # bytes fed so far: the stream offset errors report
        self._pending: list[bytes] = []  # pieces of the line not yet ended
        self._pending_start = 0  # where the line starts in the first piece (a chunk's tail)
        self._pending_len = 0
        self._at_start = True  # the leading-BOM question is not settled yet
        self._head = b""  # first bytes held while they could still be a BOM
        self._skip_lf = False  # the last chunk ended with CR: an LF next is its CRLF
        self._closed = False
        # One flag for the three rare states above, so the common chunk costs
        # one attribute test instead of three.
        self._guard = True

        # Event-level state, named after the buffers of the HTML standard.
        self._data_parts: list[str] = []  # the data buffer, one item per data line
        self._data_size = 0  # UTF-8 size of the data buffer joined with "\n"
        self._event_type = ""  # the event type buffer
        self._id_buffer = last_event_id  # the last event ID buffer
        self._last_event_id = last_event_id  # the last event ID string (set on dispatch)
        self._retry: int | None = None  # the reconnection time
        self._open = False  # a field line came after the last blank line

        # Precomputed thresholds, so each check on the hot path is one compare.
        self._data_cap = min(self._max_event, self._max_buffer)
        self._pending_cap = min(self._max_line, self._max_buffer)

    # ------------------------------------------------------------------ API

    @property
    def last_event_id(self) -> str:
        """The last event ID string: what a reconnecting client sends as ``Last-Event-ID``.

        Updated at every blank line, whether or not an event was dispatched,
        as the HTML standard does.
        """
        return self._last_event_id

    @property
    def retry(self) -> int | None:
        """The reconnection time (ms) set by the most recent valid ``retry`` field, or ``None``."""
        return self._retry

    def feed(self, data: bytes | bytearray | memoryview) -> list[ServerSentEvent]:
        """Take the next bytes of the stream; return the events they completed.

        Args:
            data: The next piece of the body, of any length (``bytearray`` and
                ``memoryview`` are accepted and copied).

        Returns:
            The events dispatched by blank lines in ``data``, in order; often
            none.

        Raises:
            DecoderLimitError: A line, an event or the buffer outgrew its limit.
                The decoder is finished afterwards.
            RuntimeError: The decoder was closed, or failed before.
        """
        if not isinstance(data, bytes):
            # Pending pieces are kept by reference: a mutable buffer must be copied.
            data = bytes(data)
        self._received += len(data)
        if self._guard:
            data = self._prepare(data)
        if not data:
            return []
        # One-byte tests use "int in bytes", a plain memchr. The spelling
        # b"\r" in data first tries b"\r" as an int and pays for the
        # TypeError: ten times slower, on a path every chunk takes.
        if _CR in data:
            # CR and CRLF become LF. A CR ending the chunk still ends its line
            # now (so a "\r\r" event is not held back), and the LF that may
            # open the next chunk belongs to it.
            if data[-1] == _CR:
                self._skip_lf = self._guard = True
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")

        if _LF not in data:
            # The middle of a line: keep the chunk itself, copy nothing.
            if self._sink is None:
                self._pending.append(data)
            else:
                self._sink.write(data, 0, len(data))
            self._pending_len += len(data)
            if self._pending_len > self._pending_cap:
                self._fail_pending()
            if self._sink_ready and self._pending_len >= self._sink_min:
                self._open_sink()
            return []
        last = data.rfind(b"\n")

        events: list[ServerSentEvent] = []
        start = 0
        if self._pending or self._sink is not None:
            start = data.find(b"\n")
            size = self._pending_len + start
            if size > self._max_line:
                self._fail_line(size)
            if self._sink is not None:
                self._sink.write(data, 0, start)
                taken = True
            else:
                taken = self._sink_ready and size >= self._sink_min and self._open_sink(data, start)
            if taken:
                self._close_sink(events)
            else:
                self._pending.append(data[:start])
                self._long_line(self._joined(), events)
            self._pending = []
            self._pending_len = 0
            self._sink_ready = self._sink_factory is not None
            start += 1
        if start <= last:
            if last - start > self._max_line:
                self._check_line_lengths(data, start, last)
            if self._sink_factory is not None and last - start >= self._sink_min:
                self._lines_with_sinks(data, start, last, events)
            else:
                # One decode for every complete line of the chunk.
                self._text(str(memoryview(data)[start:last], "utf-8", "replace"), events)
        if last + 1 < len(data):
            # The unfinished line: the chunk itself, not a copy of its tail.
            self._pending.append(data)
            self._pending_start = last + 1
            self._pending_len = len(data) - last - 1
        self._pending_cap = min(self._max_line, self._max_buffer - self._data_size)
        if self._pending_len > self._pending_cap:
            self._fail_pending()
        return events

    def close(self) -> list[ServerSentEvent]:
        """Signal the end of the stream.

        What counts as a clean end: the stream stopped after a blank line, or
        after comment lines or blank lines only. What counts as truncated:
        the stream stopped inside a line that is not a comment (bytes after
        the last line end that do not start with ``:``), or after field lines
        (``data``, ``event``, ``id``, ``retry`` or any other field) that no
        blank line followed. Per the HTML standard that unfinished event is
        never dispatched, so this always returns an empty list; in strict
        mode it raises as well.

        Calling :meth:`close` again returns an empty list.

        Returns:
            An empty list: the end of a stream completes no event.

        Raises:
            StreamTruncatedError: The stream ended inside an event and
                ``strict_eof`` is true. ``offset`` is the stream length.
        """
        if self._closed:
            return []
        reason = ""
        partial = self._head or self._sink_prefix
        if self._pending and not partial:
            partial = self._pending[0][self._pending_start :]
        if partial and partial[0] != _COLON:
            size = len(self._head) + self._pending_len
            reason = f"inside a line ({size} bytes with no line end)"
        elif self._open:
            reason = "inside an event (field lines with no blank line after them)"
        self._finish()
        if reason and self._strict_eof:
            raise StreamTruncatedError(
                f"SSE stream ended {reason}", offset=self._received, hint=_EOF_HINT
            )
        return []

    # ------------------------------------------------------------ internals

    def _prepare(self, data: bytes) -> bytes:
        """Handle the rare states: closed, leading BOM undecided, CR at the end of the last chunk."""
        if self._closed:
            raise RuntimeError("this SSEDecoder is closed or has failed; create a new one")
        if self._at_start:
            if self._head:
                data = self._head + data
            # Hold the first bytes while they are still a prefix of a BOM, so
            # that a BOM cut across chunks is recognised like a whole one.
            if len(data) < len(_BOM) and _BOM.startswith(data):
                self._head = data
                return b""
            self._head = b""
            self._at_start = self._guard = False
            # Only the very first BOM goes; a second one is U+FEFF text.
            return data[3:] if data.startswith(_BOM) else data
        self._skip_lf = self._guard = False
        return data[1:] if data and data[0] == _LF else data

    def _text(self, text: str, events: list[ServerSentEvent]) -> None:
        """Interpret a run of complete lines, decoded: ``text`` holds them joined by LF."""
        lines = text.split("\n")
        ascii_only = text.isascii()
        start = 0
        if self._open:
            # Finish the event that earlier chunks began, line by line.
            try:
                start = lines.index("") + 1
            except ValueError:
                self._lines(lines, ascii_only, events)
                return
            self._lines(lines[:start], ascii_only, events)
        if len(lines) - start >= _MIN_RUN_LINES:
            # No value can be longer than the text: when the text fits the
            # limit (a UTF-8 character is at most 4 bytes), skip the sizes.
            fits = (len(text) if ascii_only else 4 * len(text)) <= self._data_cap
            start = self._uniform_blocks(lines, start, fits, events)
        if start < len(lines):
            self._lines(lines[start:] if start else lines, ascii_only, events)

    def _uniform_blocks(
        self, lines: list[str], start: int, fits: bool, events: list[ServerSentEvent]
    ) -> int:
        """Dispatch a run of identically shaped blocks at C speed; return where the run ends.

        JSON-over-SSE APIs repeat one block shape: ``data: ...`` (OpenAI Chat,
        Gemini) or ``event: ...`` then ``data: ...`` (OpenAI Responses and
        Images, Anthropic), each followed by a blank line. When every complete
        block from ``start`` on has the shape of the first one, the events are
        built with ``map`` over list slices instead of one interpreted loop
        step per line; that takes about a third off a stream of small events.

        Called only at a block boundary, where the event buffers are empty,
        so the result is exactly what :meth:`_lines` would produce: each block
        is one event of type the "event: " value (``"message"`` if empty or
        absent) and data the one "data: " value. Anything else (a comment, an
        ``id``, two data lines, a missing space after a colon) ends the fast
        path, and :meth:`_lines` takes over at ``start``.

        Args:
            fits: No line of ``lines`` can exceed the event size limit, so
                the values need not be measured.
        """
        first = lines[start]
        if first.startswith("data: "):
            period = 2
        elif first.startswith("event: "):
            period = 3
        else:
            return start
        blocks = (len(lines) - start) // period
        stop = start + blocks * period
        run = lines[start:stop]
        data_lines = run[period - 2 :: period]
        if not all(map(str.startswith, data_lines, repeat("data: "))):
            return start
        types: Iterable[str]
        if period == 3:
            # Event lines repeat: check and slice each distinct one once.
            event_lines = run[::3]
            names: dict[str, str] = {}
            for line in set(event_lines):
                if not line.startswith("event: "):
                    return start
                names[line] = line[7:] or "message"
            types = map(names.__getitem__, event_lines)
        else:
            types = repeat("message")
        # Every other line now starts with "data: " or "event: "; so the
        # run has the right shape exactly when it holds one blank line per block.
        if run.count("") != blocks:
            return start
        values = list(map(_after_data, data_lines))
        if not fits and max(map(_utf8_size, values)) > self._data_cap:
            return start  # the exact path raises for the event over the limit
        self._last_event_id = self._id_buffer
        events.extend(map(make_event, types, values, repeat(self._id_buffer), repeat(self._retry)))
        return stop

    def _lines(self, lines: list[str], ascii_only: bool, events: list[ServerSentEvent]) -> None:
        """Interpret complete lines (the hot loop: state lives in locals meanwhile)."""
        data_parts = self._data_parts
        data_size = self._data_size
        event_type = self._event_type
        id_buffer = self._id_buffer
        last_event_id = self._last_event_id
        retry = self._retry
        is_open = self._open
        data_cap = self._data_cap
        append = events.append
        make = make_event
        for line in lines:
            if not line:
                # Blank line: dispatch. The last event ID string moves even
                # when nothing is dispatched; the event type always resets.
                last_event_id = id_buffer
                if data_parts:
                    append(
                        make(
                            event_type or "message",
                            data_parts[0] if len(data_parts) == 1 else "\n".join(data_parts),
                            id_buffer,
                            retry,
                        )
                    )
                    data_parts = []
                    data_size = 0
                event_type = ""
                is_open = False
                continue
            name, _, value = line.partition(":")
            if not name:
                continue  # a comment line: it starts with ":"
            is_open = True
            if value[:1] == " ":
                value = value[1:]
            if name == "data":
                if data_parts:
                    data_size += 1  # the "\n" that will join it to the previous line
                data_size += len(value) if ascii_only else _utf8_size(value)
                if data_size > data_cap:
                    self._fail_data(data_size)
                data_parts.append(value)
            elif name == "event":
                event_type = value
            elif name == "id":
                if "\0" not in value:
                    id_buffer = value
            elif name == "retry":
                retry = _parse_retry(value, retry)
        self._data_parts = data_parts
        self._data_size = data_size
        self._event_type = event_type
        self._id_buffer = id_buffer
        self._last_event_id = last_event_id
        self._retry = retry
        self._open = is_open

    def _long_line(self, line: bytes, events: list[ServerSentEvent]) -> None:
        """Interpret one complete line given as bytes: the one that ends the pending pieces.

        Same rules as :meth:`_lines`, but only the value is decoded, straight
        out of ``line``, so a multi-megabyte ``data`` value is copied once.
        Comparing the field name as bytes is exact: only the bytes ``data``
        decode to the text ``data`` (invalid bytes decode to U+FFFD).
        """
        if not line:
            self._lines([""], True, events)
            return
        if line[0] == _COLON:
            return
        self._open = True
        colon = line.find(b":")
        if colon < 0:
            name, start = line, len(line)
        else:
            name, start = line[:colon], colon + 1
            if line.startswith(b" ", start):
                start += 1
        if name == b"data":
            value = str(memoryview(line)[start:], "utf-8", "replace")
            size = _utf8_size(value) + (1 if self._data_parts else 0)
            self._data_size += size
            if self._data_size > self._data_cap:
                self._fail_data(self._data_size)
            self._data_parts.append(value)
        elif name in (b"event", b"id", b"retry"):
            # Short fields: reuse the text path rather than repeat its rules.
            self._lines([str(line, "utf-8", "replace")], False, events)

    def _joined(self) -> bytes:
        """The pending pieces as one line (the first from where the line starts in it)."""
        pieces: list[bytes | memoryview] = list(self._pending)
        if self._pending_start:
            pieces[0] = memoryview(pieces[0])[self._pending_start :]
            self._pending_start = 0
        return b"".join(pieces)

    # ------------------------------------------------------------ data sink

    def _open_sink(self, data: bytes = b"", end: int = 0) -> bool:
        """Hand the unfinished line (and ``data[:end]``, its next bytes) to a new sink.

        Only a ``data`` line goes; another stays with the decoder (``False``)
        and is not looked at again.
        """
        pieces = [(piece, 0, len(piece)) for piece in self._pending]
        if self._pending_start:
            first = pieces[0][0]
            pieces[0] = (first, self._pending_start, len(first))
        if end:
            pieces.append((data, 0, end))
        head = b"".join(piece[start : min(stop, start + 6)] for piece, start, stop in pieces[:6])
        if len(head) < 6 and b"data: ".startswith(head):
            # Too soon to tell: the space after "data:" (not part of the value) may
            # be in the next chunk. Stay ready and look again when more arrives.
            return False
        self._sink_ready = False
        if not head.startswith(b"data:"):
            return False
        assert self._sink_factory is not None
        sink = self._sink_factory()
        skip = 6 if head.startswith(b"data: ") else 5
        self._sink_prefix = head[:skip]
        for piece, start, stop in pieces:
            if skip >= stop - start:
                skip -= stop - start
                continue
            sink.write(piece, start + skip, stop)
            skip = 0
        self._sink = sink
        self._pending = []
        self._pending_start = 0
        return True

    def _close_sink(self, events: list[ServerSentEvent]) -> None:
        """The line the sink took ended: its stand-in joins the data buffer."""
        sink = self._sink
        assert sink is not None
        self._sink = None
        value, size = sink.close()
        self._sink_prefix = b""
        self._open = True
        # The size of the value itself, as the limits count it without a sink.
        self._data_size += size + (1 if self._data_parts else 0)
        if self._data_size > self._data_cap:
            self._fail_data(self._data_size)
        self._data_parts.append(value)

    def _lines_with_sinks(
        self, data: bytes, start: int, last: int, events: list[ServerSentEvent]
    ) -> None:
        """Complete lines ``data[start:last]``: long ``data`` lines to sinks, the rest as text.

        A line is long when no LF comes within ``data_sink_min_bytes`` of its
        start; ``rfind`` over such windows skips a run of short lines a window
        at a time, so short lines cost no per-line step here.
        """
        window = self._sink_min
        text_from = start
        position = start
        while last - position >= window:
            lf = data.rfind(b"\n", position, position + window)
            if lf >= 0:
                position = lf + 1
                continue
            end = data.find(b"\n", position + window)
            if data.startswith(b"data:", position):
                if position > text_from:
                    self._text(
                        str(memoryview(data)[text_from : position - 1], "utf-8", "replace"),
                        events,
                    )
                value = position + (6 if data.startswith(b"data: ", position) else 5)
                assert self._sink_factory is not None
                self._sink = self._sink_factory()
                self._sink_prefix = data[position:value]
                self._sink.write(data, value, end)
                self._close_sink(events)
                text_from = end + 1
            position = end + 1
        if text_from <= last:
            self._text(str(memoryview(data)[text_from:last], "utf-8", "replace"), events)

    def _check_line_lengths(self, data: bytes, start: int, last: int) -> None:
        """Check each line of ``data[start:last]`` against ``max_line_bytes``.

        Only called when that run is itself longer than the limit, which
        happens only when a caller feeds very large chunks.
        """
        while start <= last:
            end = data.find(b"\n", start)
            if end - start > self._max_line:
                self._fail_line(end - start)
            start = end + 1

    def _finish(self) -> None:
        """Mark the decoder finished and drop what it holds."""
        self._closed = self._guard = True
        self._pending = []
        self._pending_start = 0
        self._pending_len = 0
        self._sink = None
        self._sink_prefix = b""
        self._sink_ready = False
        self._head = b""
        self._data_parts = []
        self._data_size = 0

    def _fail_line(self, size: int) -> NoReturn:
        self._finish()
        raise DecoderLimitError(
            "max_line_bytes",
            self._max_line,
            offset=self._received,
            what=f"a line reached {size} bytes",
        )

    def _fail_data(self, size: int) -> NoReturn:
        self._finish()
        if size > self._max_event:
            raise DecoderLimitError(
                "max_event_bytes",
                self._max_event,
                offset=self._received,
                what=f"an event's data reached {size} bytes",
            )
        raise DecoderLimitError(
            "max_buffer_bytes",
            self._max_buffer,
            offset=self._received,
            what=f"an event's data reached {size} bytes",
        )

    def _fail_pending(self) -> NoReturn:
        if self._pending_len > self._max_line:
            self._fail_line(self._pending_len)
        held = self._pending_len + self._data_size
        self._finish()
        raise DecoderLimitError(
            "max_buffer_bytes",
            self._max_buffer,
            offset=self._received,
            what=f"{held} bytes held: an unfinished line plus the pending event's data",
        )
