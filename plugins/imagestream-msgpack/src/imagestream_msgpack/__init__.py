"""msgpack stream decoder for imagestream.

Two framings: NovelAI's length-prefixed frames (the default) and plain
back-to-back msgpack objects. Use it standalone::

    from imagestream_msgpack import MsgpackDecoder

    decoder = MsgpackDecoder()  # framing="length-prefixed"
    for chunk in chunks:
        for frame in decoder.feed(chunk):
            handle(frame)  # a dict for NovelAI
    decoder.close()  # raises StreamTruncatedError if the stream was cut

or through imagestream, which finds it as the decoder named ``"msgpack"``::

    decoder = imagestream.get_decoder("msgpack", framing="plain")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagestream.provider import lazy_exports

if TYPE_CHECKING:
    from ._decoder import (
        DEFAULT_MAX_BUFFER_BYTES,
        DEFAULT_MAX_FRAME_BYTES,
        FRAMINGS,
        Framing,
        MsgpackDecoder,
    )

__all__ = [
    "DEFAULT_MAX_BUFFER_BYTES",
    "DEFAULT_MAX_FRAME_BYTES",
    "FRAMINGS",
    "Framing",
    "MsgpackDecoder",
]

# Imported when first read: every process that loads plugins imports this
# package (its entry module is in it), and most never decode msgpack.
__getattr__, __dir__ = lazy_exports(__name__, dict.fromkeys(__all__, "._decoder"), __all__)

__version__ = "0.1.0"
