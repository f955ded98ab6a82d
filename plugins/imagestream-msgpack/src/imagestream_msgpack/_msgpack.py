"""The one module that imports ``msgpack``, which ships no type information.

Everything else in the package goes through the typed names below, so the
``type: ignore`` stays in a single place and the rest is checked strictly.

The decoding options are fixed here for both framings: ``raw=False`` (msgpack
strings become ``str``), the library's default ``strict_map_key=True`` (map
keys must be ``str`` or ``bytes``; NovelAI's keys are strings, and refusing
other keys keeps hostile input from building dicts keyed by arbitrary
objects) and the default ``ext_hook`` (unknown extension types come out as
``msgpack.ExtType`` values, nothing is executed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol, cast

import msgpack  # type: ignore[import-untyped]

__all__ = [
    "UNPACK_ERRORS",
    "FormatError",
    "OutOfData",
    "StackError",
    "StreamUnpacker",
    "new_unpacker",
    "unpackb",
]

unpackb: Callable[..., Any] = msgpack.unpackb
"""``msgpack.unpackb``; call it with ``raw=False``.

Bound directly (not wrapped in a Python function) because the length-prefixed
decoder calls it once per frame on its hot path.
"""

FormatError: type[Exception] = msgpack.FormatError
"""A byte that no msgpack type starts with (``0xc1``)."""

StackError: type[Exception] = msgpack.StackError
"""Containers nested deeper than the library allows."""

OutOfData: type[Exception] = msgpack.OutOfData
"""The input ended inside a value."""

UNPACK_ERRORS: tuple[type[Exception], ...] = (ValueError, msgpack.UnpackException)
"""What decoding bad input can raise.

``FormatError``, ``StackError``, ``ExtraData``, invalid UTF-8, a refused map
key, a bad timestamp and ``unpackb``'s "incomplete input" are all
``ValueError``; ``OutOfData`` and ``BufferFull`` derive only from
``UnpackException``.
"""


class StreamUnpacker(Protocol):
    """The part of ``msgpack.Unpacker`` this package uses."""

    def feed(self, next_bytes: bytes | bytearray | memoryview) -> None:
        """Append bytes to the unpacker's buffer."""

    def __iter__(self) -> Iterator[Any]:
        """Yield each object that is complete in the buffer."""

    def unpack(self) -> Any:
        """Return the next object, or raise ``OutOfData``."""

    def tell(self) -> int:
        """Return how many input bytes the unpacker has read."""


def new_unpacker(max_buffer_size: int, max_items: int | None = None) -> StreamUnpacker:
    """Return a streaming ``msgpack.Unpacker`` with the package's options.

    Its per-value caps on strings, bins and extensions (``max_str_len``,
    ``max_bin_len``, ``max_ext_len``) are ``max_buffer_size``, the caller's
    cap for a whole object: a string or bin is only built once all its bytes
    are in the buffer, so a larger declared length could never complete
    anyway, and an image (a bin) may take all of it. Containers are capped by
    value count, not bytes: ``max_array_len`` is ``max_items`` and
    ``max_map_len`` half of it (a map entry is two values), so a 60 MB array
    of nils, half a gigabyte once decoded, is refused at its 5-byte header.
    Without ``max_items`` they follow ``max_buffer_size`` (msgpack's
    default), as :func:`unpackb` does from the length of its input.
    """
    items = max_buffer_size if max_items is None else min(max_items, max_buffer_size)
    return cast(
        StreamUnpacker,
        msgpack.Unpacker(
            raw=False,
            max_buffer_size=max_buffer_size,
            max_str_len=max_buffer_size,
            max_bin_len=max_buffer_size,
            max_ext_len=max_buffer_size,
            max_array_len=items,
            max_map_len=max(items // 2, 1),
        ),
    )
