"""Decode a frame that arrived in pieces with its image copied once, not twice.

A NovelAI frame is a map whose bulk is one ``bin`` value, the image. msgpack
decodes only from one contiguous buffer, so a frame that arrived in pieces
would be copied twice: once to join the pieces, then once more by msgpack
into the image's ``bytes``. Copying is most of the work of decoding such a
stream, so here the image's bytes are joined straight from the pieces into
the ``bytes`` object that becomes the value, and ``unpackb`` decodes the rest
of the frame with a nil in the image's place; the nil is then replaced.

The result is exactly what ``unpackb`` gives for the whole payload. msgpack
still parses every byte except the image's, which are opaque data anyway,
and :func:`splice` gives up, returning ``None`` so that the caller decodes
the frame the usual way, unless all of this holds: the payload is a map;
before the large bin, its keys are strings and its values scalars (the only
part walked here); the rest, with the nil, decodes to a dict with as many
keys as the map has entries (so no key repeats) and the nil at the bin's
key. Errors are never reported from here: giving up lets the usual path
raise them, with their offsets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from ._msgpack import UNPACK_ERRORS, unpackb

__all__ = ["MIN_SPLICE_BYTES", "find_large_bin", "splice"]

MIN_SPLICE_BYTES = 32 * 1024
"""Smallest bin worth splicing; smaller frames are simply joined."""

HEAD_BYTES = (256, 4096)
"""How far into the payload the bin's header is looked for: first a short
window (NovelAI's other entries take about 100 bytes), then a long one."""

_PREFIX = 4
_NIL = b"\xc0"
_MISSING = object()


def _scalar_sizes() -> bytes:
    """For each first byte, the total size of a scalar or fixstr; 0 for the rest."""
    sizes = bytearray(256)
    for kind in (*range(0x00, 0x80), *range(0xE0, 0x100), 0xC0, 0xC2, 0xC3):
        sizes[kind] = 1  # fixints, nil, false, true
    for kind in range(0xA0, 0xC0):
        sizes[kind] = 1 + (kind & 0x1F)  # fixstr
    for kind, size in ((0xCA, 5), (0xCB, 9), (0xCC, 2), (0xCD, 3), (0xCE, 5), (0xCF, 9),
                       (0xD0, 2), (0xD1, 3), (0xD2, 5), (0xD3, 9)):  # fmt: skip
        sizes[kind] = size  # floats, uints, ints
    return bytes(sizes)


# A table, not a chain of comparisons: the walk runs once per large frame and
# its Python overhead is a visible part of the decoding time.
_SCALAR_SIZE = _scalar_sizes()
# str and bin with an explicit length: the width of that length field.
_STR_WIDTH = {0xD9: 1, 0xDA: 2, 0xDB: 4}
_BIN_WIDTH = {0xC4: 1, 0xC5: 2, 0xC6: 4}


class Spot(NamedTuple):
    """Where the first large bin of a top-level map lies, relative to the payload."""

    entries: int  # the map's entry count
    key_start: int  # its key's first byte
    key_text: int  # the first byte of the key's UTF-8 text
    value_start: int  # the bin's header, right after the key
    data_start: int  # the bin's first data byte
    length: int  # the bin's length


def find_large_bin(head: bytes | memoryview, min_length: int = MIN_SPLICE_BYTES) -> Spot | None:
    """Find the first top-level bin of at least ``min_length`` bytes in a map.

    ``head`` is the start of the payload; it must reach past the bin's
    header. Returns ``None`` on anything else: not a map, a key that is not a
    string, a container or extension before the bin, or bytes that run out.
    """
    size = len(head)
    if not size:
        return None
    kind = head[0]
    if 0x80 <= kind <= 0x8F:
        entries, pos = kind & 0x0F, 1
    elif kind in (0xDE, 0xDF):
        pos = 3 if kind == 0xDE else 5  # map16, map32
        if size < pos:
            return None
        entries = int.from_bytes(head[1:pos], "big")
    else:
        return None
    for _ in range(entries):
        key_start = pos
        if pos >= size:
            return None
        kind = head[pos]
        if 0xA0 <= kind <= 0xBF:  # fixstr, the usual key
            key_text = pos + 1
            pos = key_text + (kind & 0x1F)
        else:
            width = _STR_WIDTH.get(kind)
            if width is None:
                return None
            sized = _sized(head, pos, width)
            if sized is None:
                return None
            key_text, pos = sized[0], sized[0] + sized[1]
        if pos >= size:
            return None
        kind = head[pos]
        step = _SCALAR_SIZE[kind]
        if step:
            pos += step
            continue
        bin_width = _BIN_WIDTH.get(kind)
        if bin_width is not None:
            sized = _sized(head, pos, bin_width)
            if sized is None:
                return None
            data_start, length = sized
            if length >= min_length:
                return Spot(entries, key_start, key_text, pos, data_start, length)
            pos = data_start + length
            continue
        end = _skip_long_str(head, pos, kind)
        if end is None:
            return None  # a container, an extension, or not msgpack
        pos = end
    return None


def _skip_long_str(head: bytes | memoryview, pos: int, kind: int) -> int | None:
    """The offset after the str8/16/32 at ``pos`` (first byte ``kind``), or None."""
    width = _STR_WIDTH.get(kind)
    if width is None:
        return None
    sized = _sized(head, pos, width)
    return None if sized is None else sized[0] + sized[1]


def _sized(head: bytes | memoryview, pos: int, width: int) -> tuple[int, int] | None:
    """(data start, data length) of the str or bin header at ``pos``."""
    start = pos + 1 + width
    if start > len(head):
        return None
    return start, int.from_bytes(head[pos + 1 : start], "big")


def splice(pieces: Sequence[bytes | memoryview], total: int) -> dict[Any, Any] | None:
    """Decode a complete frame held in ``pieces``, or return None to decline.

    Args:
        pieces: The frame, length prefix included, in order; ``total`` bytes.
        total: Their combined length.
    """
    for window in HEAD_BYTES:
        head = _head(pieces, total, window)
        spot = find_large_bin(head)
        if spot is not None:
            break
        if len(head) < window:
            return None  # the whole payload was looked at
    else:
        return None
    start = _PREFIX + spot.data_start
    stop = start + spot.length
    if stop > total:
        return None  # the frame ends inside the bin: the usual path says so
    # The piece holding the bin's first byte: one of the first few.
    first, pos = 0, 0
    while pos + len(pieces[first]) <= start:
        pos += len(pieces[first])
        first += 1
    first_cut = start - pos
    # The piece holding its last byte, found from the end: what follows the
    # bin is short, so both searches take a step or two, not one per piece.
    last, end = len(pieces) - 1, total
    while end - len(pieces[last]) >= stop:
        end -= len(pieces[last])
        last -= 1
    last_cut = stop - (end - len(pieces[last]))
    if first == last:
        image = bytes(memoryview(pieces[first])[first_cut:last_cut])
    else:
        image = b"".join(
            [memoryview(pieces[first])[first_cut:], *pieces[first + 1 : last],
             memoryview(pieces[last])[:last_cut]]
        )  # fmt: skip
    rest = b"".join(
        [head[: spot.value_start], _NIL, memoryview(pieces[last])[last_cut:], *pieces[last + 1 :]]
    )
    try:
        value = unpackb(rest, raw=False)
    except UNPACK_ERRORS:
        return None
    # The key's text decoded without errors inside ``rest``, so this cannot fail.
    key = str(head[spot.key_text : spot.value_start], "utf-8")
    if type(value) is not dict or len(value) != spot.entries:
        return None  # a repeated key: the usual path keeps msgpack's rule
    if value.get(key, _MISSING) is not None:
        return None
    value[key] = image
    return value


def _head(pieces: Sequence[bytes | memoryview], total: int, window: int) -> bytes:
    """The first ``window`` bytes of the payload (fewer if it is shorter).

    A ``bytes`` copy: the walk indexes it byte by byte, which is faster on
    ``bytes`` than on a ``memoryview``, and it is small.
    """
    want = min(total, _PREFIX + window)
    if len(pieces[0]) >= want:
        return bytes(memoryview(pieces[0])[_PREFIX:want])
    taken: list[bytes | memoryview] = []
    got = 0
    for piece in pieces:
        if got + len(piece) >= want:
            taken.append(memoryview(piece)[: want - got])
            break
        taken.append(piece)
        got += len(piece)
    return b"".join(taken)[_PREFIX:]
