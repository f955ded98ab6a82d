"""Default limits of :class:`~imagestream_sse.SSEDecoder`, in one place.

The defaults are sized for image streams: one base64 ``data`` line of an
OpenAI or Gemini image is typically 1 to 10 MB, and a 4096 x 4096 PNG can
reach about 40 MB once base64-encoded. Each default leaves room for that
while still bounding memory, because a decoder must never buffer without end.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "DATA_SINK_MIN_BYTES",
    "MAX_BUFFER_BYTES",
    "MAX_EVENT_BYTES",
    "MAX_LINE_BYTES",
    "STRICT_EOF",
]

MAX_LINE_BYTES: Final = 64 * 2**20
"""Longest accepted line, in bytes, not counting its line end (64 MiB)."""

MAX_EVENT_BYTES: Final = 64 * 2**20
"""Largest accepted event data, in UTF-8 bytes of ``event.data`` (64 MiB)."""

MAX_BUFFER_BYTES: Final = 128 * 2**20
"""Most bytes held at once: the unfinished line plus the pending event's data (128 MiB).

Twice the other limits, so that an event at the event limit can be followed
by a line at the line limit before the blank line that dispatches it.
"""

STRICT_EOF: Final = True
"""Whether :meth:`~imagestream_sse.SSEDecoder.close` raises on a truncated stream."""

DATA_SINK_MIN_BYTES: Final = 16 * 2**10
"""How long a ``data`` line grows before it goes to the ``data_sink`` (16 KiB), when there is one.

Shorter lines are decoded as text with their neighbours, which is cheaper
than a sink for anything but a large value.
"""
