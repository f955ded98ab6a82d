"""The data sink: a long ``data`` line handed over as it arrives, instead of being buffered.

A consumer that knows what its events hold can read a multi-megabyte value
while its bytes come in: find the image inside the JSON, keep references to
the pieces of base64, parse the little that is left. The decoder then never
joins the pieces of that line, never decodes them to text, and the event's
:attr:`~imagestream_sse.ServerSentEvent.data` carries whatever text the sink
says stands for the value.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["DataSink", "DataSinkFactory"]


class DataSink(Protocol):
    """Takes the value of one long ``data`` line, piece by piece.

    The decoder hands a line to a sink only while every byte of it is ASCII,
    so that the value's size (what the limits count) is its length in bytes
    and no UTF-8 sequence is cut between pieces.
    """

    def write(self, chunk: bytes, start: int, end: int) -> None:
        """Take ``chunk[start:end]``, the next bytes of the value.

        ASCII, with no line end. ``chunk`` is a piece of the body as it was
        fed (bytes are immutable), so the sink may keep a reference to it
        instead of copying the slice.
        """

    def close(self) -> str:
        """The line ended: return the text that stands for the whole value in the event's data."""

    def abort(self) -> bytes:
        """Give back every byte written so far, unchanged; the sink is not used again.

        Called when a byte that is not ASCII arrives in the middle of the
        line: the decoder then buffers the line the ordinary way.
        """


class DataSinkFactory(Protocol):
    """What the ``data_sink`` option takes: called once per long ``data`` line."""

    def __call__(self) -> DataSink: ...
