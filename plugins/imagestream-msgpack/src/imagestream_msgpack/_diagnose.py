"""Turn msgpack's exceptions into imagestream errors that carry stream offsets.

Only the failure path runs this code. msgpack's own exceptions say what went
wrong but not where (``FormatError`` even has an empty message), and
``unpackb`` does not say where it stopped at all; the offset comes from
``Unpacker.tell()``, which after a failure points at the byte the parser was
looking at.
"""

from __future__ import annotations

import re

from imagestream.errors import DecoderLimitError, StreamDecodeError

from ._msgpack import UNPACK_ERRORS, FormatError, OutOfData, StackError, new_unpacker

__all__ = ["cap_error", "frame_error", "invalid_msgpack"]

_PREFIX_BYTES = 4
# msgpack's words when a header announces more than a max_*_len allows.
_CAP = re.compile(r"(\d+) exceeds max_(array|map|str|bin|ext)_len\((\d+)\)")


def describe(exc: Exception, byte: int | None) -> str:
    """Say in words what msgpack refused; ``byte`` is the byte it stopped at, if known."""
    if isinstance(exc, FormatError):
        if byte is not None:
            return f"byte 0x{byte:02x} cannot start a msgpack value"
        return "a byte that cannot start a msgpack value"
    if isinstance(exc, StackError):
        return "msgpack containers nested too deeply"
    # Invalid UTF-8 in a string, a map key that is not a string, a malformed
    # timestamp: msgpack's message is already specific.
    return f"msgpack value refused: {str(exc) or type(exc).__name__}"


def invalid_msgpack(exc: Exception, offset: int, byte: int | None) -> StreamDecodeError:
    """The error for bad msgpack at absolute stream ``offset`` (plain framing)."""
    return StreamDecodeError(describe(exc, byte), offset=offset)


def frame_error(exc: Exception, payload: memoryview, frame_offset: int) -> StreamDecodeError:
    """Explain why a complete frame's payload is not exactly one msgpack object.

    Errors about the frame as a whole are reported at its length prefix;
    errors about particular bytes at those bytes, naming the frame.

    Args:
        exc: What ``unpackb`` raised for the payload.
        payload: The payload, without its length prefix.
        frame_offset: Stream offset of the frame's length prefix.
    """
    size = len(payload)
    context = f"frame starting at byte {frame_offset}"
    if not size:
        return StreamDecodeError(
            "empty frame",
            offset=frame_offset,
            hint="a frame holds exactly one msgpack object",
        )
    # A streaming unpacker is the same C parser as unpackb, so it fails the
    # same way, and its tell() says where.
    unpacker = new_unpacker(size)
    unpacker.feed(payload)
    try:
        unpacker.unpack()
    except OutOfData:
        return StreamDecodeError(
            f"frame payload ends inside a msgpack value (a {size}-byte payload)",
            offset=frame_offset,
            hint="the length prefix is smaller than the object it frames",
        )
    except UNPACK_ERRORS as err:
        where = unpacker.tell()
        byte = payload[where] if where < size else None
        return StreamDecodeError(
            f"{context}: {describe(err, byte)}", offset=frame_offset + _PREFIX_BYTES + where
        )
    end = unpacker.tell()
    if end >= size:
        # Cannot happen while both parsers agree; keep the original reason.
        return StreamDecodeError(f"invalid frame: {describe(exc, None)}", offset=frame_offset)
    return StreamDecodeError(
        f"{context}: {size - end} trailing bytes after its msgpack object",
        offset=frame_offset + _PREFIX_BYTES + end,
        hint="a frame holds exactly one msgpack object",
    )


def cap_error(
    exc: Exception, offset: int, *, max_items: int, max_bytes: int, bytes_keyword: str
) -> DecoderLimitError | None:
    """The typed error for msgpack's own refusal of a container or string length.

    ``None`` when ``exc`` is not one: then it is malformed input, not a limit.
    """
    from ._items import items_error

    match = _CAP.search(str(exc)) if isinstance(exc, ValueError) else None
    if match is None:
        return None
    count, kind = int(match[1]), match[2]
    if kind in ("array", "map"):
        values = count * 2 if kind == "map" else count
        return items_error(max_items, offset, f"a msgpack {kind} announces {values} values")
    return DecoderLimitError(
        bytes_keyword, max_bytes, offset=offset, what=f"a msgpack {kind} announces {count} bytes"
    )
