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
* Decoded memory bounded too, by ``max_items`` values per object: msgpack's
  ``max_array_len`` and ``max_map_len`` follow it, so one array or map of
  millions of one-byte values is refused at its header, not built; and once
  an object is more than ``max_items`` bytes long (only then can it hold
  more values), its bytes are walked by :class:`._items.ItemCounter` before
  the unpacker sees them, which refuses it when its containers, nested ones
  included, announce more. Until then, what the unpacker has built holds at
  most twice ``max_items`` values: chunks are fed in slices of at most
  ``max_items`` bytes, and the pending object's slices are kept (by
  reference) for the walk.
"""

from __future__ import annotations

from typing import Any, Literal

from imagestream.errors import DecoderLimitError, StreamDecodeError, StreamTruncatedError

from ._decoder import DEFAULT_MAX_BUFFER_BYTES, DEFAULT_MAX_FRAME_BYTES, MsgpackDecoder
from ._diagnose import cap_error, invalid_msgpack
from ._items import ItemCounter, TooManyItems, items_error
from ._msgpack import UNPACK_ERRORS, new_unpacker

__all__ = ["PlainDecoder"]


class PlainDecoder(MsgpackDecoder):
    """:class:`MsgpackDecoder` for ``framing="plain"``.

    Offsets in errors are absolute stream offsets: the start of the object
    for a limit or truncation, the byte where msgpack stopped otherwise.
    """

    __slots__ = ("_boundary", "_counter", "_fed", "_kept", "_unpacker")

    framing: Literal["plain"] = "plain"

    def __init__(
        self,
        *,
        framing: Literal["plain"] = "plain",
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        max_buffer_bytes: int = DEFAULT_MAX_BUFFER_BYTES,
        max_items: int | None = None,
    ) -> None:
        super().__init__(
            framing=framing,
            max_frame_bytes=max_frame_bytes,
            max_buffer_bytes=max_buffer_bytes,
            max_items=max_items,
        )
        self._unpacker = new_unpacker(max_buffer_bytes, self._max_items)
        self._fed = 0  # bytes given to the unpacker so far
        # Where the pending object starts: the end of the last complete one.
        # Unpacker.tell() alone cannot say, because it also moves forward
        # inside an incomplete object.
        self._boundary = 0
        # The pending object's bytes, by reference, while it is small; once
        # it is larger than max_items bytes, the counter of its values.
        self._kept: list[bytes | memoryview] = []
        self._counter: ItemCounter | None = None

    def feed(self, data: bytes | bytearray | memoryview) -> list[Any]:
        # The docstring is MsgpackDecoder.feed's.
        if self._unusable:
            raise self._refuse()
        out: list[Any] = []
        if type(data) is not bytes:
            # Pieces of the pending object are kept by reference, which is
            # only safe for immutable bytes: the caller may reuse a bytearray.
            data = bytes(data)
        size = len(data)
        pos = 0
        limit = self._max_buffer_bytes
        window = self._max_items
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
                take = min(room, window)
                piece = data if not pos and size <= take else memoryview(data)[pos : pos + take]
                counter = self._counter
                if counter is None and self._fed - self._boundary + len(piece) > window:
                    # The pending object would pass max_items bytes: from here
                    # on it could hold too many values, so count them, from its
                    # first byte, before the unpacker builds any more of them.
                    counter = self._counter = ItemCounter(window)
                    for kept in self._kept:
                        self._count(counter, kept)
                    self._kept = []
                if counter is not None and not counter.ended:
                    # A large object: its values are counted before they are built.
                    # (An ended counter met bytes that are not msgpack: the
                    # unpacker is fed them as they are, and says so.)
                    used = self._count(counter, piece)
                    if used < len(piece):
                        piece = memoryview(piece)[:used]  # the object ends in it
                start = self._fed
                self._unpacker.feed(piece)  # copies
                self._fed += len(piece)
                pos += len(piece)
                self._drain(piece, start, out)
                self._track(piece, start)
        except StreamDecodeError as err:
            return self._fail(err, out)
        return out

    def _track(self, piece: bytes | memoryview, start: int) -> None:
        """Keep the pending object's bytes (by reference) until it is counted."""
        boundary = self._boundary
        if boundary > start:
            # An object ended in this piece: what is pending starts after it.
            self._counter = None
            self._kept = [memoryview(piece)[boundary - start :]] if boundary < self._fed else []
        elif self._counter is None:
            self._kept.append(piece)

    def _count(self, counter: ItemCounter, piece: bytes | memoryview) -> int:
        try:
            return counter.feed(piece)
        except TooManyItems as exc:
            raise items_error(
                self._max_items,
                self._boundary,  # a limit is reported at the start of its object
                f"a msgpack object's containers announce {exc.announced} values or more",
            ) from None

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
            limit = cap_error(
                exc,
                self._boundary,  # a limit is reported at the start of its object
                max_items=self._max_items,
                max_bytes=self._max_buffer_bytes,
                bytes_keyword="max_buffer_bytes",
            )
            raise (limit or invalid_msgpack(exc, where, byte)) from exc
