"""The error Google writes into a started stream outside SSE framing.

When Google aborts a stream it has already started (a quota cut, an internal
error), it may write its error envelope into the 200 body as indented JSON
lines without ``data:``::

    data: {"candidates": [...]}

    {
      "error": {
        "code": 429,
        ...
      }
    }

An SSE decoder skips such lines (each is a field it does not know), and the
run would end as merely interrupted. The official SDK gathers lines that are
not events until their JSON is complete; :class:`ErrorLines` wraps the
``sse`` decoder to do the same, so the error comes out as one more event, in
its place, and is raised as the typed error it is.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from imagestream import StreamTruncatedError

__all__ = ["ErrorLines", "RawObject"]

_MAX_GATHERED = 64 * 1024
"""Bytes of non-event lines kept while waiting for their JSON to complete."""

_OPENERS = (ord("{"), ord("["))
_CLOSERS = (ord("}"), ord("]"))


@attrs.frozen
class RawObject:
    """An error object found between events (its JSON is ``data``, as an event's is)."""

    data: str


class ErrorLines:
    """An SSE decoder that also yields the JSON Google writes between events.

    Only lines outside events are looked at, and only their first byte unless
    they open or continue such a JSON value (an image's base64 line is never
    copied). Lines are gathered from one that starts with ``{`` or ``[`` until
    a line starting with ``}`` or ``]`` completes a JSON value; a ``data:``
    line or a blank line in between gives them up.

    Args:
        inner: The SSE decoder that reads the events.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._at_start = True  # the next byte starts a line
        self._keep = False  # the current line is being gathered
        self._line = bytearray()
        self._lines: list[bytes] = []
        self._size = 0

    def feed(self, data: bytes) -> list[Any]:
        """The events ``data`` completes, with any JSON value found between them in its place."""
        events: list[Any] = []
        given = 0  # bytes of data already handed to the inner decoder
        position = 0
        while position < len(data):
            end = data.find(b"\n", position)
            stop = len(data) if end < 0 else end
            if self._at_start and stop > position:
                self._start_line(data[position])
            elif self._at_start and end >= 0:
                self._give_up()  # a blank line
            if self._keep:
                self._line += data[position:stop]
            if end < 0:
                self._at_start = False
                break
            self._at_start = True
            position = end + 1
            found = self._end_line()
            if found is not None:
                events += self._inner.feed(data[given:position])
                given = position
                events.append(found)
        if given < len(data):
            events += self._inner.feed(data[given:])
        return events

    def close(self) -> list[Any]:
        """What the end of the body completes: a last JSON value, then the decoder's rest."""
        found = self._end_line() if self._keep else None
        try:
            tail: list[Any] = self._inner.close()
        except StreamTruncatedError:
            if found is None:
                raise
            # The error lines themselves look like an event left open: the error wins.
            return [found]
        return [found, *tail] if found is not None else tail

    def _start_line(self, first: int) -> None:
        if self._lines:
            self._keep = first != ord("d")  # a data: line ends what was gathered
            if not self._keep:
                self._give_up()
        else:
            self._keep = first in _OPENERS

    def _end_line(self) -> RawObject | None:
        if not self._keep:
            return None
        line = bytes(self._line).rstrip(b"\r")
        self._line.clear()
        self._keep = False
        self._lines.append(line)
        self._size += len(line) + 1
        if self._size > _MAX_GATHERED:
            self._give_up()
            return None
        if not line or line[0] not in _CLOSERS:
            return None
        try:
            value = json.loads(b"\n".join(self._lines))
        except ValueError:
            return None  # a closing line inside the value: gather on
        self._give_up()
        if isinstance(value, list) and value:
            value = value[0]  # some gateways wrap the error in a list
        if not isinstance(value, dict) or "error" not in value:
            return None  # stray JSON that is no error: not an event either
        return RawObject(json.dumps(value))

    def _give_up(self) -> None:
        self._lines.clear()
        self._line.clear()
        self._keep = False
        self._size = 0
