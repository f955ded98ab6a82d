"""The public decoder class: options, the choice of framing, error semantics.

``MsgpackDecoder(framing=...)`` returns an instance of the subclass for that
framing (``_framed.LengthPrefixedDecoder`` or ``_plain.PlainDecoder``), the
way ``pathlib.Path`` picks a flavour. Each subclass implements ``feed`` in one
method, so a chunk that completes nothing costs a single Python call: the
length-prefixed decoder sees thousands of them per image.
"""

from __future__ import annotations

from typing import Any, Final, Literal, get_args

from imagestream.errors import ConfigurationError, StreamDecodeError

__all__ = [
    "BYTES_PER_ITEM",
    "DEFAULT_MAX_BUFFER_BYTES",
    "DEFAULT_MAX_FRAME_BYTES",
    "FRAMINGS",
    "MIN_MAX_ITEMS",
    "Framing",
    "MsgpackDecoder",
    "default_max_items",
]

Framing = Literal["length-prefixed", "plain"]
"""How msgpack objects are delimited in the stream."""

FRAMINGS: Final[tuple[str, ...]] = get_args(Framing)
"""Every accepted ``framing``, the default first."""

DEFAULT_MAX_FRAME_BYTES: Final = 64 * 2**20
"""Default ``max_frame_bytes``: 64 MiB, room for a multi-megabyte final PNG."""

DEFAULT_MAX_BUFFER_BYTES: Final = 64 * 2**20
"""Default ``max_buffer_bytes``: 64 MiB, the same room for one plain object."""

BYTES_PER_ITEM: Final = 64
"""The default ``max_items`` is the byte cap divided by this (1 Mi values for 64 MiB).

A decoded value costs a pointer at least, and up to about 70 bytes (an empty
map), whatever its one byte of msgpack: the byte caps alone let a 64 MiB
frame decode to gigabytes. One value per 64 bytes keeps a frame's decoded
containers within about the frame's own size, and leaves a bin, whatever its
size, one value.
"""

MIN_MAX_ITEMS: Final = 2**16
"""The default ``max_items`` is never lower than this (small byte caps)."""


def default_max_items(byte_cap: int) -> int:
    """The ``max_items`` a decoder with this byte cap uses unless told otherwise."""
    return max(byte_cap // BYTES_PER_ITEM, MIN_MAX_ITEMS)


class MsgpackDecoder:
    """Incremental msgpack stream decoder: bytes in, decoded values out.

    Feed it the stream's bytes in whatever pieces they arrive; each call
    returns the values those bytes completed, in stream order. The values are
    exactly what ``msgpack.unpackb(..., raw=False)`` returns: for NovelAI,
    one ``dict`` per frame, such as ``{"event_type": "intermediate",
    "samp_ix": 0, "step_ix": 3, "gen_id": "...", "sigma": 4.2, "image":
    b"\\xff\\xd8..."}``. The same values come out however the bytes are split.

    Args:
        framing: ``"length-prefixed"`` (the default): each frame is a 4-byte
            big-endian length ``N`` and ``N`` bytes holding exactly one
            msgpack object, as NovelAI's ``/ai/generate-image-stream`` sends
            with ``stream="msgpack"``. ``"plain"``: msgpack objects back to
            back.
        max_frame_bytes: Largest frame payload accepted (the value of a length
            prefix), length-prefixed framing only. A larger prefix raises at
            once, before any of its payload is awaited or kept.
        max_buffer_bytes: Largest object accepted, plain framing only. Bytes
            of an object that is still incomplete at this size are not kept:
            the decoder raises instead.
        max_items: The most msgpack values (array elements, map keys and map
            values) one frame or object may hold; ``None`` (the default):
            the framing's byte cap / :data:`BYTES_PER_ITEM` (1 Mi values for
            64 MiB), at least :data:`MIN_MAX_ITEMS`. The byte caps bound
            what arrives, this bounds what it decodes to: a 60 MB array of
            nils is half a gigabyte of list. An image is one value (a bin),
            whatever its size. Length-prefixed framing: a frame larger than
            ``max_items`` bytes is walked before it is decoded and refused if
            its containers hold more values in all. Plain framing: each array
            and map is refused beyond ``max_items`` values (msgpack's
            ``max_array_len`` / ``max_map_len``).

    Errors (all subclasses of :class:`imagestream.StreamDecodeError`, each
    with ``offset``, the absolute byte offset in the stream):

    * Bytes that are not msgpack, or a frame whose payload is not exactly one
      object: :class:`~imagestream.errors.StreamDecodeError`. Nothing is ever
      skipped to resynchronise.
    * A limit exceeded: :class:`~imagestream.errors.DecoderLimitError`,
      naming the keyword to raise (``max_frame_bytes``, ``max_buffer_bytes``
      or ``max_items``).
    * :meth:`close` while a frame or object is incomplete:
      :class:`~imagestream.errors.StreamTruncatedError`. An empty stream, or
      one that ends exactly between frames, closes cleanly.

    If a :meth:`feed` finds an error after completing values, it returns
    those values and the error is raised by the next :meth:`feed` or
    :meth:`close`: no complete value is lost, and what comes out before an
    error does not depend on the chunk boundaries. After an error the decoder
    is poisoned: every later :meth:`feed` or :meth:`close` raises a
    :class:`~imagestream.errors.StreamDecodeError` caused by the first error,
    with the same offset.

    Not thread-safe: one decoder reads one stream.
    """

    __slots__ = (
        "_closed",
        "_error",
        "_max_buffer_bytes",
        "_max_frame_bytes",
        "_max_items",
        "_reported",
        "_unusable",
    )

    framing: Framing
    """The framing this decoder reads (a class attribute of each subclass)."""

    def __new__(
        cls,
        *,
        framing: Framing = "length-prefixed",
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        max_buffer_bytes: int = DEFAULT_MAX_BUFFER_BYTES,
        max_items: int | None = None,
    ) -> MsgpackDecoder:
        if cls is not MsgpackDecoder:
            return super().__new__(cls)
        # The framings import msgpack (and msgpack imports datetime); doing it
        # here, not at the top, keeps plugin discovery cheap.
        if framing == "length-prefixed":
            from ._framed import LengthPrefixedDecoder

            return super().__new__(LengthPrefixedDecoder)
        if framing == "plain":
            from ._plain import PlainDecoder

            return super().__new__(PlainDecoder)
        raise ConfigurationError(
            f"unknown msgpack framing {framing!r}",
            hint="use " + " or ".join(repr(name) for name in FRAMINGS),
        )

    def __init__(
        self,
        *,
        framing: Framing = "length-prefixed",
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        max_buffer_bytes: int = DEFAULT_MAX_BUFFER_BYTES,
        max_items: int | None = None,
    ) -> None:
        # framing was used by __new__ to pick the subclass.
        _check_limit("max_frame_bytes", max_frame_bytes)
        _check_limit("max_buffer_bytes", max_buffer_bytes)
        if max_items is None:
            cap = max_frame_bytes if self.framing == "length-prefixed" else max_buffer_bytes
            max_items = default_max_items(cap)
        _check_limit("max_items", max_items, unit="values")
        self._max_frame_bytes = max_frame_bytes
        self._max_buffer_bytes = max_buffer_bytes
        self._max_items = max_items
        self._closed = False
        self._error: StreamDecodeError | None = None
        self._reported = False  # whether self._error has been raised yet
        # True once closed or failed: the one flag feed() checks on its hot path.
        self._unusable = False

    @property
    def max_frame_bytes(self) -> int:
        """The largest frame payload accepted (length-prefixed framing)."""
        return self._max_frame_bytes

    @property
    def max_buffer_bytes(self) -> int:
        """The largest object accepted (plain framing)."""
        return self._max_buffer_bytes

    @property
    def max_items(self) -> int:
        """The most msgpack values one frame or object may hold."""
        return self._max_items

    def feed(self, data: bytes | bytearray | memoryview) -> list[Any]:
        """Take the next bytes of the stream; return the values they completed.

        Args:
            data: The next bytes (``bytes``, ``bytearray`` or a byte
                ``memoryview``), in whatever piece the network delivered.
                Only immutable ``bytes`` may be kept by reference; other
                buffers are copied, so the caller may reuse them.

        Returns:
            The decoded values completed by these bytes, possibly none.

        Raises:
            StreamDecodeError: Malformed input, a limit exceeded, or an earlier
                error (the decoder is poisoned).
            ValueError: The decoder was closed.
        """
        raise NotImplementedError  # each framing's subclass implements it

    def close(self) -> list[Any]:
        """Signal the end of the stream.

        Returns:
            Always an empty list: every complete value was returned by
            :meth:`feed` already. Closing twice is allowed.

        Raises:
            StreamTruncatedError: The stream ended inside a frame or object.
            StreamDecodeError: An earlier error (the decoder is poisoned).
        """
        if self._error is not None:
            raise self._failure()
        if self._closed:
            return []
        self._closed = self._unusable = True
        try:
            self._finish()
        except StreamDecodeError as err:
            self._error = err
            self._reported = True
            raise
        return []

    def _finish(self) -> None:
        """Raise StreamTruncatedError if the stream stopped inside a value."""
        raise NotImplementedError

    def _refuse(self) -> Exception:
        """The exception for a feed() on a decoder that failed or was closed."""
        if self._error is not None:
            return self._failure()
        return ValueError("feed() called on a closed MsgpackDecoder")

    def _fail(self, error: StreamDecodeError, out: list[Any]) -> list[Any]:
        """Record ``error``; raise it now, or return ``out`` and raise it next time."""
        self._error = error
        self._unusable = True
        if out:
            return out  # values completed before the error are not lost
        self._reported = True
        raise error

    def _failure(self) -> StreamDecodeError:
        """The exception to raise now that the decoder has failed."""
        error = self._error
        assert error is not None
        if not self._reported:
            # An error deferred by feed(): raise it as it is, once.
            self._reported = True
            return error
        # error.message already ends with "at byte N"; the offset is set after
        # construction so that it is not repeated.
        poisoned = StreamDecodeError(
            f"msgpack decoder already failed: {error.message}",
            hint="use a new decoder for a new stream",
        )
        poisoned.offset = error.offset
        poisoned.__cause__ = error
        return poisoned

    def __repr__(self) -> str:
        state = "failed" if self._error else "closed" if self._closed else "open"
        return f"<MsgpackDecoder framing={self.framing!r} {state}>"


def _check_limit(name: str, value: object, *, unit: str = "bytes") -> None:
    # bool is an int subclass; max_frame_bytes=True is surely a mistake.
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        example = 64 * 2**20 if unit == "bytes" else 2**20
        raise ConfigurationError(
            f"{name} must be a positive number of {unit}, not {value!r}",
            hint=f"pass an int >= 1, e.g. {name}={example}",
        )
