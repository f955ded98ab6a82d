"""Count a frame's msgpack values before decoding it: the byte cap does not bound memory.

A frame of ``max_frame_bytes`` may hold a bin (an image: its bytes cost what
they weigh) or millions of one-byte values: a 60 MB array of nils decodes to
a 480 MB list, an array of empty maps to several gigabytes. msgpack's own
``max_array_len`` and ``max_map_len`` cap one container, not the sum over
nested ones. So a frame that is large enough to hold more than ``max_items``
values (one byte each at least) is walked here first, skipping strings, bins
and extensions by their lengths, and refused as soon as its containers
announce more than ``max_items`` values in all, before one of them is built.

The walk reads headers only: at most ``max_items`` steps of Python, and far
fewer for the frames NovelAI sends (a map of a few scalars and one bin).
Smaller frames are not walked: their value count is below the limit anyway.
Malformed bytes are left to ``unpackb``, which says what is wrong and where.
"""

from __future__ import annotations

from imagestream.errors import DecoderLimitError

__all__ = ["ItemCounter", "TooManyItems", "check_items", "items_error"]


def _sizes() -> tuple[bytes, dict[int, tuple[int, int, int]]]:
    """The fixed size of each scalar's first byte (0: not a fixed-size scalar), and
    for each sized type, (length width, extra header bytes, values per count)."""
    fixed = bytearray(256)
    for kind in (*range(0x00, 0x80), *range(0xE0, 0x100), 0xC0, 0xC2, 0xC3):
        fixed[kind] = 1  # fixints, nil, false, true
    for kind in range(0xA0, 0xC0):
        fixed[kind] = 1 + (kind & 0x1F)  # fixstr
    for kind, size in ((0xCA, 5), (0xCB, 9), (0xCC, 2), (0xCD, 3), (0xCE, 5), (0xCF, 9),
                       (0xD0, 2), (0xD1, 3), (0xD2, 5), (0xD3, 9),
                       (0xD4, 3), (0xD5, 4), (0xD6, 6), (0xD7, 10), (0xD8, 18)):  # fmt: skip
        fixed[kind] = size  # floats, ints, fixext
    sized = {
        0xC4: (1, 0, 0), 0xC5: (2, 0, 0), 0xC6: (4, 0, 0),  # bin: skip the data
        0xD9: (1, 0, 0), 0xDA: (2, 0, 0), 0xDB: (4, 0, 0),  # str: skip the data
        0xC7: (1, 1, 0), 0xC8: (2, 1, 0), 0xC9: (4, 1, 0),  # ext: a type byte, then data
        0xDC: (2, 0, 1), 0xDD: (4, 0, 1),  # array16/32: n values follow
        0xDE: (2, 0, 2), 0xDF: (4, 0, 2),  # map16/32: n keys and n values follow
    }  # fmt: skip
    return bytes(fixed), sized


_FIXED, _SIZED = _sizes()


def items_error(limit: int, offset: int, what: str) -> DecoderLimitError:
    """The error for more than ``limit`` values in one frame or object."""
    error = DecoderLimitError("max_items", limit, offset=offset, what=what)
    # DecoderLimitError counts bytes; this limit counts values.
    error.message = f"max_items={limit} values exceeded ({what}) at byte {offset}"
    error.args = (error.message,)
    return error


class TooManyItems(Exception):
    """Raised by :meth:`ItemCounter.feed`; the caller makes it a DecoderLimitError.

    Attributes:
        announced: The values announced so far, more than the limit.
        at: The offset of the header that took them past it, counted from
            the object's first byte.
    """

    def __init__(self, announced: int, at: int) -> None:
        super().__init__(announced, at)
        self.announced = announced
        self.at = at


class ItemCounter:
    """Counts the values one msgpack object's containers announce, fed its bytes in pieces.

    Walks headers only (strings, bins and extensions are skipped by their
    lengths), so a piece costs a Python step per value it starts, not per
    byte. Stops at the end of the object; malformed bytes stop the counting
    too (the decoder reports them).
    """

    __slots__ = ("_announced", "_carry", "_header", "_limit", "_seen", "_skip", "_walked")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._announced = 0  # values announced by the containers walked so far
        self._walked = 0  # values started, the top-level one included
        self._skip = 0  # bytes of the current value still to pass over
        self._carry = b""  # the start of a header cut by the end of a piece
        self._header = 0  # that header's length
        self._seen = 0  # bytes walked so far

    @property
    def ended(self) -> bool:
        """True once the object's last byte has been walked (or bytes were not msgpack)."""
        return self._walked > self._announced

    def feed(self, data: bytes | memoryview) -> int:
        """Walk the next bytes; return how many of them belong to the object.

        Raises:
            TooManyItems: The object's containers announce more values than the limit.
        """
        size = len(data)
        pos = 0
        if self._carry:
            pos = min(self._header - len(self._carry), size)
            self._carry += bytes(data[:pos])
            if len(self._carry) < self._header:
                self._seen += pos
                return pos
            header, self._carry = self._carry, b""
            self._sized(header[0], int.from_bytes(header[1:], "big"), self._seen + pos)
        while True:
            if self._skip:
                if self._skip >= size - pos:
                    self._skip -= size - pos
                    self._seen += size
                    return size
                pos += self._skip
                self._skip = 0
            if self._walked > self._announced or pos >= size:
                self._seen += pos
                return pos
            kind = data[pos]
            self._walked += 1
            step = _FIXED[kind]
            if step:
                self._skip = step - 1
                pos += 1
            elif 0x80 <= kind <= 0x9F:  # fixmap, fixarray
                self._announced += (kind & 0x0F) * (2 if kind < 0x90 else 1)
                pos += 1
                self._check(self._seen + pos - 1)
            elif kind in _SIZED:
                end = pos + 1 + _SIZED[kind][0]
                if end > size:
                    self._carry = bytes(data[pos:])
                    self._header = end - pos
                    self._seen += size
                    return size
                self._sized(kind, int.from_bytes(data[pos + 1 : end], "big"), self._seen + end)
                pos = end
            else:  # 0xc1, never valid: the decoder reports it
                self._announced = -1  # ended: nothing more is walked
                self._seen += pos
                return pos

    def _sized(self, kind: int, count: int, after: int) -> None:
        """Apply a sized header whose last byte is just before stream position ``after``."""
        width, extra, per = _SIZED[kind]
        if per:
            self._announced += count * per
            self._check(after - 1 - width)
        else:
            self._skip = extra + count

    def _check(self, at: int) -> None:
        if self._announced > self._limit:
            raise TooManyItems(self._announced, at)


def check_items(payload: bytes | memoryview, limit: int, offset: int) -> None:
    """Raise DecoderLimitError if ``payload``'s containers announce more than ``limit`` values.

    ``payload`` may be the first bytes of a frame only: what is missing is
    not counted. Bytes after the object, or bytes that are not msgpack, end
    the walk (``unpackb`` reports them).

    Args:
        payload: One frame's msgpack bytes (a single object), or its start.
        limit: The most values (array elements, map keys and map values) allowed.
        offset: The stream offset of ``payload``'s first byte, for the error.
    """
    try:
        ItemCounter(limit).feed(payload)
    except TooManyItems as exc:
        raise items_error(
            limit, offset + exc.at, f"its containers announce {exc.announced} values or more"
        ) from None
