"""The length-prefixed framing of NovelAI's ``/ai/generate-image-stream``.

Each frame is a 4-byte big-endian unsigned length ``N`` followed by ``N``
bytes holding exactly one msgpack object. Frame boundaries have nothing to do
with the boundaries of the chunks the network delivers.

How the hot path is kept cheap (measured with ``bench/bench_msgpack.py``):

* A frame that lies whole inside one chunk is not copied at all: ``unpackb``
  reads it through a ``memoryview`` of the chunk.
* Chunks that cannot complete the pending frame are kept as a list of
  pieces and a running length; such a chunk costs one method call, an
  ``append`` and an addition. Nothing is copied until the frame is complete.
* A complete frame that holds one large ``bin`` (an image) is decoded by
  :mod:`._splice`, which copies the image's bytes once, straight from the
  pieces into the ``bytes`` object that becomes the value. Any other frame is
  joined once (``b"".join``) and decoded from that buffer. Joining first and
  letting ``unpackb`` copy the image again measured up to twice as slow as
  decoding a contiguous buffer; with the splice, the image bytes cost what
  they cost there: one copy.
* The length prefix is read with ``struct.unpack_from`` in place, and checked
  against ``max_frame_bytes`` as soon as its 4 bytes are there, before a
  single payload byte is kept.
* ``msgpack.unpackb`` runs once per complete frame, in C. It also enforces
  "exactly one object": it raises on trailing bytes and on too few.
* A frame larger than ``max_items`` bytes (1 MiB by default; NovelAI's final
  images may be) could hold more than ``max_items`` values, so its headers
  are walked (:mod:`._items`) before it is decoded, and it is refused if its
  containers, nested ones included, announce more. A frame that arrives in
  pieces is walked piece by piece as they arrive, so a header announcing
  millions of values fails at once, not after 60 MB have been awaited; a
  bin is skipped by its length, so a large image costs a few steps. Smaller
  frames cannot hold that many values and are not walked.

Memory: the pending frame (at most ``max_frame_bytes``) is held as the
caller's own chunks, plus, for a moment, the decoded value, whose containers
hold at most ``max_items`` values.
"""

from __future__ import annotations

import struct
from typing import Any, Literal

from imagestream.errors import DecoderLimitError, StreamDecodeError, StreamTruncatedError

from ._decoder import DEFAULT_MAX_BUFFER_BYTES, DEFAULT_MAX_FRAME_BYTES, MsgpackDecoder
from ._diagnose import frame_error
from ._items import ItemCounter, TooManyItems, check_items, items_error
from ._msgpack import UNPACK_ERRORS, unpackb
from ._splice import MIN_SPLICE_BYTES, splice

__all__ = ["LengthPrefixedDecoder"]

_PREFIX = 4
_read_prefix = struct.Struct(">I").unpack_from


class LengthPrefixedDecoder(MsgpackDecoder):
    """:class:`MsgpackDecoder` for ``framing="length-prefixed"``.

    Offsets in errors are absolute stream offsets: the frame's length prefix
    for errors about the frame as a whole (too large, truncated, empty, too
    few bytes for its object), the offending byte otherwise.
    """

    __slots__ = ("_base", "_counter", "_have", "_need", "_pieces", "_size")

    framing: Literal["length-prefixed"] = "length-prefixed"

    def __init__(
        self,
        *,
        framing: Literal["length-prefixed"] = "length-prefixed",
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
        # The pending, incomplete frame: pieces of the stream from offset
        # _base on, _have bytes in all. Invariant: when _have is 0, _pieces is
        # empty, _size is -1 and _need is _PREFIX.
        self._pieces: list[bytes | memoryview] = []
        self._have = 0
        self._base = 0
        self._size = -1  # its payload length, -1 while the prefix is incomplete
        self._need = _PREFIX  # pending bytes needed before anything can happen
        # Counts the values of a pending frame larger than max_items bytes.
        self._counter: ItemCounter | None = None

    def feed(self, data: bytes | bytearray | memoryview) -> list[Any]:
        # The docstring is MsgpackDecoder.feed's.
        if self._unusable:
            raise self._refuse()
        if not data:
            return []
        if type(data) is not bytes:
            # Pending chunks are kept by reference until their frame is
            # complete, which is only safe for immutable bytes: the caller may
            # reuse a bytearray.
            data = bytes(data)
        have = self._have
        if have:
            have += len(data)
            if have < self._need:
                # The common case: one more piece of a large frame.
                self._pieces.append(data)
                self._have = have
                if self._counter is not None:
                    try:
                        self._count(data)
                    except StreamDecodeError as err:
                        return self._fail(err, [])
                return []
        out: list[Any] = []
        try:
            if have:
                self._pieces.append(data)
                self._have = have
                self._complete(out)
            else:
                self._scan(data, out)
        except StreamDecodeError as err:
            return self._fail(err, out)
        return out

    def _finish(self) -> None:
        if not self._have:
            return
        if self._size < 0:
            message = f"stream ended inside a length prefix ({self._have} of {_PREFIX} bytes)"
        else:
            got = self._have - _PREFIX
            message = f"stream ended inside a frame ({got} of its {self._size} payload bytes)"
        self._pieces = []  # let the chunks go now
        raise StreamTruncatedError(message, offset=self._base)

    def _scan(self, data: bytes | memoryview, out: list[Any]) -> None:
        """Decode the frames that lie whole in ``data``; keep the rest pending.

        Nothing is pending when this runs, so ``data`` starts a frame.
        """
        view = memoryview(data)
        end = len(view)
        pos = 0
        base = self._base
        limit = self._max_frame_bytes
        items = self._max_items
        while end - pos >= _PREFIX:
            size = _read_prefix(view, pos)[0]
            if size > limit:
                raise self._too_large(size, base + pos)
            stop = pos + _PREFIX + size
            if stop > end:
                self._size = size
                self._need = _PREFIX + size
                if size > items:
                    # Counted as it arrives, from this first piece on.
                    self._base = base + pos
                    self._counter = ItemCounter(items)
                    self._count(view[pos + _PREFIX : end])
                break
            out.append(_decode(view[pos + _PREFIX : stop], base + pos, items))
            pos = stop
        self._base = base + pos
        if pos < end:
            self._pieces.append(view[pos:] if pos else data)
            self._have = end - pos

    def _complete(self, out: list[Any]) -> None:
        """The pending bytes reached ``_need``: read the prefix, or the frame."""
        if self._size < 0:
            # Fewer than _PREFIX bytes were pending before the newest piece.
            head = b"".join(self._pieces[:-1])
            taken = _PREFIX - len(head)  # bytes of the newest piece in the prefix
            head += bytes(self._pieces[-1][:taken])
            size = _read_prefix(head)[0]
            if size > self._max_frame_bytes:
                raise self._too_large(size, self._base)
            self._size = size
            self._need = _PREFIX + size
            if size > self._max_items:
                self._counter = ItemCounter(self._max_items)
                # The payload's first bytes, up to the frame's end.
                self._count(memoryview(self._pieces[-1])[taken : taken + size])
            if self._have < self._need:
                return
        elif self._counter is not None:
            # The newest piece completes the frame: count its part of it.
            last = self._pieces[-1]
            self._count(memoryview(last)[: len(last) - (self._have - self._need)])
        pieces = self._pieces
        need = self._need
        excess = self._have - need
        rest: memoryview | None = None
        if excess:
            # Only the newest piece can reach past the frame (the frame was
            # incomplete before it came), so 0 < cut <= len(last).
            last = memoryview(pieces[-1])
            cut = len(last) - excess
            pieces[-1] = last[:cut]
            rest = last[cut:]
        start = self._base
        # A frame counted as it arrived is not walked again.
        items = self._max_items if self._counter is None else None
        self._pieces = []
        self._have = 0
        self._size = -1
        self._need = _PREFIX
        self._base = start + need
        self._counter = None
        # A frame too small to hold a large bin is not worth the walk.
        value = splice(pieces, need) if need > MIN_SPLICE_BYTES else None
        if value is None:
            frame = b"".join(pieces)
            value = _decode(memoryview(frame)[_PREFIX:], start, items)
        out.append(value)
        if rest is not None:
            self._scan(rest, out)

    def _count(self, piece: bytes | memoryview) -> None:
        """Walk the next bytes of the pending frame's payload (``_counter`` is set)."""
        counter = self._counter
        assert counter is not None
        try:
            counter.feed(piece)
        except TooManyItems as exc:
            raise items_error(
                self._max_items,
                self._base + _PREFIX + exc.at,
                f"the frame's containers announce {exc.announced} values or more",
            ) from None

    def _too_large(self, size: int, offset: int) -> DecoderLimitError:
        # Raised from the prefix alone: the payload is neither awaited nor kept.
        return DecoderLimitError(
            "max_frame_bytes",
            self._max_frame_bytes,
            offset=offset,
            what=f"a length prefix announces a {size}-byte frame",
        )


def _decode(payload: memoryview, frame_offset: int, max_items: int | None) -> Any:
    """Decode a frame's payload, which must be exactly one msgpack object.

    ``max_items``: count its values first if it is larger than this many
    bytes (``None``: they were counted already).
    """
    if max_items is not None and len(payload) > max_items:
        # Large enough to hold more values than allowed: count them first.
        check_items(payload, max_items, frame_offset + _PREFIX)
    try:
        return unpackb(payload, raw=False)
    except UNPACK_ERRORS as exc:
        raise frame_error(exc, payload, frame_offset) from exc
