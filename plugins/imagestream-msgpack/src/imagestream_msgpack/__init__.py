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

__version__ = "0.1.0"
