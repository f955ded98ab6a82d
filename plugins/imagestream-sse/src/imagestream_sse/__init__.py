"""Server-sent events (``text/event-stream``) decoder for imagestream.

Use it on its own::

    from imagestream_sse import SSEDecoder

    decoder = SSEDecoder()
    events = decoder.feed(b"event: ping\\ndata: {}\\n\\n")
    decoder.close()

or through the plugin manager, as providers do:
``imagestream.get_decoder("sse", max_event_bytes=256 * 2**20)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagestream.provider import lazy_exports

from . import defaults  # constants only: cheap, and a submodule is not a lazy name

if TYPE_CHECKING:
    from ._decoder import SSEDecoder
    from ._event import ServerSentEvent
    from ._sink import DataSink, DataSinkFactory

__all__ = ["DataSink", "DataSinkFactory", "SSEDecoder", "ServerSentEvent", "defaults"]

# Imported when first read: every process that loads plugins imports this
# package (its entry module is in it), and most never decode a stream.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "DataSink": "._sink",
        "DataSinkFactory": "._sink",
        "SSEDecoder": "._decoder",
        "ServerSentEvent": "._event",
    },
    __all__,
)
