"""The plain framing: msgpack objects back to back, nothing between them.

``msgpack.Unpacker`` does the streaming work in C. This module adds what it
lacks for an untrusted network stream:

* Truncation is an error. The unpacker treats running out of bytes inside an
  object as "wait for more", also at the very end; so the offset where the
  last complete object ended is recorded, and ``close()`` compares it with
  the bytes fed.
* A size limit that does not depend on chunk boundaries. ``Unpacker`` raises
  ``BufferFull`` when one ``feed`` does not fit, which depends on how big the
  caller's chunks are, and refuses a large chunk full of small objects. Here
  a chunk is fed in slices that never take the pending object past
  ``max_buffer_bytes``, so the rule is simply "no object may be larger than
  ``max_buffer_bytes``", and memory stays bounded by it.
* Offsets: every error carries the absolute stream offset.
"""

from __future__ import annotations

from typing import Any, Literal

from imagestream.errors import DecoderLimitError, StreamDecodeError, StreamTruncatedError

from ._decoder import DEFAULT_MAX_BUFFER_BYTES, DEFAULT_MAX_FRAME_BYTES, MsgpackDecoder
from ._diagnose import invalid_msgpack
from ._msgpack import UNPACK_ERRORS, new_unpacker

__all__ = ["PlainDecoder"]


class PlainDecoder(MsgpackDecoder):
    """:class:`MsgpackDecoder` for ``framing="plain"``.

    Offsets in errors are absolute stream offsets: the start of the object
    for a limit or truncation, the byte where msgpack stopped otherwise.
    """

    __slots__ = ("_boundary", "_fed", "_unpacker")

    framing: Literal["plain"] = "plain"

    def __init__(
        self,
        *,
        framing: Literal["plain"] = "plain",
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        max_buffer_bytes: int = DEFAULT_MAX_BUFFER_BYTES,
    ) -> None:
        super().__init__(
            framing=framing, max_frame_bytes=max_frame_bytes, max_buffer_bytes=max_buffer_bytes
        )
        self._unpacker = new_unpacker(max_buffer_bytes)
        self._fed = 0  # bytes given to the unpacker so far
        # Where the pending object starts: the end of the last complete one.
        # Unpacker.tell() alone cannot say, because it also moves forward
        # inside an incomplete object.
        self._boundary = 0

    def feed(self, data: bytes | bytearray | memoryview) -> list[Any]:
        # The docstring is MsgpackDecoder.feed's.
        if self._unusable:
            raise self._refuse()
        out: list[Any] = []
        size = len(data)
        pos = 0
        limit = self._max_buffer_bytes
        try:
            while pos < size:
                room = limit - (self._fed - self._boundary)
                if room <= 0:
                    raise DecoderLimitError(
                        "max_buffer_bytes",
                        limit,
                        offset=self._boundary,
                        what=f"a msgpack object is still incomplete after {limit} bytes",
                    )
                # The common case, a chunk that fits, is fed as it is.
                piece = data if not pos and size <= room else memoryview(data)[pos : pos + room]
                start = self._fed
                self._unpacker.feed(piece)  # copies: the caller may reuse its buffer
                self._fed += len(piece)
                pos += len(piece)
                self._drain(piece, start, out)
        except StreamDecodeError as err:
            return self._fail(err, out)
        return out

    def _finish(self) -> None:
        pending = self._fed - self._boundary
        if pending:
            raise StreamTruncatedError(
                f"stream ended inside a msgpack object ({pending} bytes of it arrived)",
                offset=self._boundary,
            )

    def _drain(self, piece: bytes | bytearray | memoryview, start: int, out: list[Any]) -> None:
        """Move every complete object to ``out``; ``piece`` was fed at ``start``."""
        unpacker = self._unpacker
        try:
            for value in unpacker:
                out.append(value)
                self._boundary = unpacker.tell()
        except UNPACK_ERRORS as exc:
            where = unpacker.tell()
            # The parser reads every byte as soon as it is fed, so the byte it
            # stopped at is normally in the newest piece.
            index = where - start
            byte = piece[index] if 0 <= index < len(piece) else None
            raise invalid_msgpack(exc, where, byte) from exc
