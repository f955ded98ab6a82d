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
    """Takes the value of one long ``data`` line, piece by piece."""

    def write(self, chunk: bytes, start: int, end: int) -> None:
        """Take ``chunk[start:end]``, the next bytes of the value.

        Raw bytes (UTF-8, or anything a server sends), with no line end; a
        multi-byte character may be cut between two pieces. ``chunk`` is a
        piece of the body as it was fed (bytes are immutable), so the sink
        may keep a reference to it instead of copying the slice.
        """

    def close(self) -> tuple[str, int]:
        """The line ended: the text that stands for the value, and the value's size.

        The text goes into the event's data in place of the value. The size
        is what the decoder's limits count without a sink: the length in
        UTF-8 of the value decoded as the decoder decodes (invalid bytes as
        U+FFFD), which is its length in bytes when it is valid UTF-8.
        """


class DataSinkFactory(Protocol):
    """What the ``data_sink`` option takes: called once per long ``data`` line."""

    def __call__(self) -> DataSink: ...
