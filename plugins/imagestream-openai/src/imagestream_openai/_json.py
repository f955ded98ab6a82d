"""Event JSON: orjson when the ``fast`` extra is installed, the standard library otherwise.

OpenAI puts whole images inside JSON as base64, so one event of a streamed
generation is often 2 MB or more. Such an event never becomes a string here:
:class:`ImageLifter`, the SSE decoder's data sink, reads its bytes as they
arrive, keeps each image string as references to those bytes
(:class:`LiftedBase64`, decoded only when the image is used, straight into
the image's bytes) and hands the decoder the small rest of the JSON, which
:meth:`ImageLifter.loads` parses. :func:`loads_event` does the same for an
event that came as text, with one slice per image; :func:`loads` and
:func:`dumps` are the plain parser and writer for everything else.
"""

from __future__ import annotations

import importlib
import json
import re
import secrets
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from imagestream import ImageData

__all__ = [
    "FAST_JSON",
    "ImageLifter",
    "LiftedBase64",
    "dumps",
    "loads",
    "loads_body",
    "loads_event",
]


def _optional(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:  # pragma: no cover - depends on the environment
        return None


_orjson = _optional("orjson")

FAST_JSON = _orjson is not None
"""True when orjson parses and writes JSON."""


def _json_loads(data: str | bytes) -> Any:
    return json.loads(data)


def _json_dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


loads: Callable[[str | bytes], Any] = _orjson.loads if _orjson is not None else _json_loads
"""Parse JSON text or UTF-8 bytes."""

dumps: Callable[[Any], bytes] = _orjson.dumps if _orjson is not None else _json_dumps
"""Serialise to compact UTF-8 JSON bytes."""


# Events at least this long may hold an image; smaller ones are parsed as they are.
_LARGE_EVENT = 16 * 1024
# String values at least this long are lifted out before parsing.
_LARGE_VALUE = 4 * 1024
# The fields OpenAI puts images in, then the quote that opens the value. A
# match is always a real key: inside a JSON string the quote after the name
# would be escaped. Whitespace is bounded so that a key cut between two pieces
# of a stream is always seen whole in _SCAN_BACK bytes.
_IMAGE_KEY = re.compile(r'"(?:b64_json|partial_image_b64|result)"[ \t\n\r]{0,32}:[ \t\n\r]{0,32}"')
_IMAGE_KEY_BYTES = re.compile(_IMAGE_KEY.pattern.encode("ascii"))
_SCAN_BACK = 96
# A placeholder as written in the JSON text, and the string it parses to.
_PLACEHOLDER = "\\u0000imagestream-image-"
_SENTINEL = "\x00imagestream-image-"


def loads_event(data: str) -> Any:
    """Parse one event's JSON, lifting its multi-megabyte base64 strings out first.

    A JSON parser must scan every character of a string value for quotes and
    escapes and then copy it; for a 2 MB image that scan is most of the cost of
    the event. Base64 holds neither quotes nor backslashes, so each long value
    of an image field is cut out with one slice instead, a short placeholder is
    parsed in its place, and the slice is put back where the placeholder
    landed. Anything unexpected (an escape inside the value, a placeholder that
    cannot be found again) falls back to parsing the whole text, so the result
    is always exactly what :func:`loads` returns.

    A match of ``"result":"`` (or ``"result": "``) is always a real key:
    inside a JSON string every quote is escaped, so the pattern cannot occur
    within another value.
    """
    if len(data) < _LARGE_EVENT:
        return loads(data)
    # JSON must escape NUL, so a string that already looks like a placeholder
    # shows up as this exact text; then every placeholder found later might not
    # be ours. One C-speed search rules that out.
    if _PLACEHOLDER in data:
        return loads(data)
    parts: list[str] = []
    values: list[str] = []
    position = 0  # where the text not yet copied to parts starts
    cursor = 0
    while (match := _IMAGE_KEY.search(data, cursor)) is not None:
        start = match.end()
        end = data.find('"', start)
        if end < 0:
            return loads(data)
        if end - start >= _LARGE_VALUE:
            value = data[start:end]
            if "\\" in value:
                return loads(data)
            parts.append(data[position:start])
            parts.append(f"{_PLACEHOLDER}{len(values)}")
            values.append(value)
            position = end
        # The search resumes after the value, so it never scans an image.
        cursor = end + 1
    if not values:
        return loads(data)
    parts.append(data[position:])
    try:
        payload = loads("".join(parts))
    except ValueError:
        return loads(data)  # the error, as the text itself gives it
    if _restore(payload, values) != len(values):
        return loads(data)
    return payload


def loads_body(body: bytes) -> Any:
    """A whole response body (a non-streamed image is as large): its images lifted, not copied."""
    # ASCII only: a body that is not is decoded strictly whole, as before (a
    # sink reads bytes that are not UTF-8 as U+FFFD, as an event stream does).
    if len(body) >= _LARGE_EVENT and body.isascii():
        lifter = ImageLifter()
        sink = lifter()
        sink.write(body, 0, len(body))
        text, _ = sink.close()
        return lifter.loads(text)
    return loads_event(body.decode("utf-8"))


def _restore(node: Any, values: list[str]) -> int:
    """Put the lifted values back in place of their placeholders; return how many.

    Every placeholder in ``node`` is one of ours (``loads_event`` checked that
    the text held none before), so each is replaced by the value it indexes.
    """
    restored = 0
    if isinstance(node, dict):
        items: Any = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return 0
    for name, value in items:
        if isinstance(value, str):
            if value.startswith(_SENTINEL):
                node[name] = values[int(value[len(_SENTINEL) :])]
                restored += 1
        elif isinstance(value, (dict, list)):
            restored += _restore(value, values)
    return restored


# -- images read out of a stream as it arrives ---------------------------------

Piece = tuple[bytes, int, int]


class LiftedBase64:
    """One image string of an event, read out of the stream as it arrived.

    What an image field's value is in a payload :meth:`ImageLifter.loads`
    returns, where :func:`loads` would give a ``str``: the holder
    :meth:`imagestream.ImageData.base64_receiver` made, which decoded each
    piece of the string as it came (with the ``fast`` extra) or kept it as a
    reference to the body (without). :meth:`image` wraps it: no copy, and
    the bytes handed out only when they are used.

    Attributes:
        size: The string's length in characters.
    """

    __slots__ = ("_held", "_image", "size")

    def __init__(self, held: Any, size: int) -> None:
        self._held = held
        self.size = size
        self._image: ImageData | None = None

    def text(self) -> str:
        """The string itself (a copy)."""
        return self._held.text() if self._image is None else self._image.b64

    def raw(self) -> bytes:
        return self.text().encode("utf-8", "surrogatepass")

    def text_size(self) -> int:
        """The string's size in UTF-8 (its length when, as base64 is, it is ASCII)."""
        return int(self._held.text_size())

    def image(self, mime_type: str | None) -> ImageData:
        """The image, declared as ``mime_type`` (made once; the same pieces after that)."""
        import attrs

        from imagestream import ImageData

        if self._image is None:
            self._image = ImageData.from_base64_pieces(self._held, mime_type)
        elif self._image.declared_mime_type != mime_type:
            return attrs.evolve(self._image, declared_mime_type=mime_type)
        return self._image

    def __repr__(self) -> str:
        return f"<LiftedBase64 of {self.size} characters>"


# The placeholders' token: random, made once per process (a server never sees
# it, so it cannot write one), not once per stream (a system call each).
# Names of their own: _PLACEHOLDER and _SENTINEL above are loads_event's.
_TOKEN = secrets.token_hex(8)
_LIFTED_MARKER = f"\\u0000{_TOKEN}-"  # as written in the JSON text
_LIFTED_SENTINEL = f"\x00{_TOKEN}-"  # the string that text parses to
_LIFTED_MARKED = re.compile(re.escape(_LIFTED_MARKER) + r"(\d+)")


class ImageLifter:
    """The images of one stream's large events, read out as the bytes arrive.

    Pass it as the SSE decoder's ``data_sink`` (:meth:`decoder`): each long
    ``data`` line then goes to a :class:`_Sink`, which keeps the line's JSON
    but for the image strings (the values of ``b64_json``,
    ``partial_image_b64`` and ``result``, whatever the key order and the
    spacing), holds those as :class:`LiftedBase64` and puts a placeholder in
    their place. :meth:`loads` parses an event's data and puts the images
    back where the placeholders land. The result is what :func:`loads` gives
    for the event's own text, but for those strings: a strange value (an
    escape inside it, a short one) or a placeholder that does not land where
    it should gives the text back to the parser whole.

    The placeholders carry a random token made when the module is loaded,
    which no server ever sees, so none can write one that is taken for a
    lifted image.
    """

    def __init__(self) -> None:
        self._lifted: dict[int, LiftedBase64] = {}
        self._count = 0

    def __call__(self) -> _Sink:
        """A sink for one long ``data`` line (the ``data_sink`` factory)."""
        return _Sink(self)

    def decoder(self, get_decoder: Callable[..., Any]) -> Any:
        """An ``sse`` decoder that hands this lifter its long lines.

        ``get_decoder`` is ``context.get_decoder``. An ``sse`` decoder from
        another plugin that has no ``data_sink`` option is used as it is:
        events then come as text and :meth:`loads` lifts their images from it.
        """
        from imagestream.errors import ConfigurationError

        try:
            return get_decoder("sse", data_sink=self)
        except (ConfigurationError, TypeError):
            return get_decoder("sse")

    def _register(self, lifted: LiftedBase64) -> bytes:
        number = self._count
        self._count += 1
        self._lifted[number] = lifted
        return f"{_LIFTED_MARKER}{number}".encode("ascii")

    def loads(self, data: str) -> Any:
        """Parse an event's data: :func:`loads_event`, with this stream's lifted images put back."""
        if not self._lifted or _LIFTED_MARKER not in data:
            return loads_event(data)
        try:
            payload = loads(data)
        except ValueError:
            return loads_event(self._original(data))  # the error, as the text gives it
        restored: list[int] = []
        self._restore(payload, restored)
        if len(restored) != data.count(_LIFTED_MARKER):
            return loads_event(self._original(data))
        for number in restored:
            self._lifted.pop(number, None)
        return payload

    def _original(self, data: str) -> str:
        """``data`` as it came: each placeholder replaced by its string (and let go)."""

        def text(match: re.Match[str]) -> str:
            lifted = self._lifted.pop(int(match[1]), None)
            return match[0] if lifted is None else lifted.text()

        return _LIFTED_MARKED.sub(text, data)

    def _restore(self, node: Any, restored: list[int]) -> None:
        """Put each lifted image in place of its placeholder in ``node``; note which went."""
        if isinstance(node, dict):
            items: Any = node.items()
        elif isinstance(node, list):
            items = enumerate(node)
        else:
            return
        sentinel = _LIFTED_SENTINEL
        for name, value in items:
            if isinstance(value, str):
                if value.startswith(sentinel):
                    number = value[len(sentinel) :]
                    lifted = self._lifted.get(int(number)) if number.isdigit() else None
                    if lifted is not None:
                        node[name] = lifted
                        restored.append(int(number))
            elif isinstance(value, (dict, list)):
                self._restore(value, restored)


class _Sink:
    """One long ``data`` line of JSON, as it arrives: image strings lifted out, the rest kept.

    Outside an image string, each piece is searched for an image key (with
    the last bytes kept before it, for a key cut between pieces) and kept
    (copied: it is the small part of the event). Inside one, the piece is
    searched for the closing quote and a backslash only, both ``memchr``
    scans, checked for ASCII (vouched for to the receiver: a line holds no
    line feed, so it need not scan the piece again), and given to a base64
    receiver
    (:meth:`imagestream.ImageData.base64_receiver`) once the string has
    reached 4 KiB; a string that ends shorter is kept as it is. A backslash
    inside a string (an escape: ``\\/`` from some proxies) gives up lifting
    for the rest of the line, which the JSON parser then reads as it came.
    """

    __slots__ = (
        "_lifter",
        "_parts",
        "_passthrough",
        "_receiver",
        "_scan",
        "_value",
        "_value_ascii",
        "_value_size",
    )

    def __init__(self, lifter: ImageLifter) -> None:
        self._lifter = lifter
        self._parts: list[bytes | LiftedBase64] = []
        self._value: list[Piece] | None = None  # the image string being read, until 4 KiB
        self._receiver: Any = None  # then what takes it
        self._value_size = 0
        self._value_ascii = True  # every piece of the string read so far is ASCII
        self._scan = b""  # the last bytes kept since the last string, for a cut key
        self._passthrough = False

    def write(self, chunk: bytes, start: int, end: int) -> None:
        """Take ``chunk[start:end]``, the next bytes of the line's value."""
        if self._passthrough:
            self._parts.append(chunk[start:end])
            return
        position = start
        while position < end:
            value = self._value
            if value is None:
                found = self._find_key(chunk, position, end)
                if found < 0:
                    self._keep(chunk, position, end)
                    return
                self._keep(chunk, position, found)
                self._value = []
                self._value_size = 0
                self._value_ascii = True
                position = found
                continue
            quote = chunk.find(b'"', position, end)
            stop = end if quote < 0 else quote
            if stop > position:
                if chunk.find(b"\\", position, stop) >= 0:
                    # An escape: the parser must read this string, and the
                    # quote found may be an escaped one. Lift no more.
                    self._parts.extend(self._value_raw())
                    self._passthrough = True
                    self._parts.append(chunk[position:end])
                    return
                self._value_size += stop - position
                # Checked now, while the piece is in cache: with the line feed
                # the SSE line cannot hold, the receiver need not scan it again.
                # The whole chunk when the piece is most of it (no copy).
                ascii_line = (
                    chunk.isascii()
                    if 2 * (stop - position) >= len(chunk)
                    else chunk[position:stop].isascii()
                )
                if self._receiver is not None:
                    self._receiver.add(chunk, position, stop, ascii_line=ascii_line)
                else:
                    value.append((chunk, position, stop))
                    self._value_ascii = self._value_ascii and ascii_line
                    if self._value_size >= _LARGE_VALUE:
                        self._start_receiver(value)
            if quote < 0:
                return
            self._end_value()
            position = quote  # the closing quote is kept text

    def _start_receiver(self, value: list[Piece]) -> None:
        from imagestream import ImageData

        # A final image is decoded as it arrives (with the fast extra): it is
        # the one that gets saved, and its base64 then never piles up. A
        # preview (its event said so before its image) waits until shown.
        preview = any(isinstance(part, bytes) and b"partial_image" in part for part in self._parts)
        receiver = ImageData.base64_receiver(decode_early=not preview)
        for piece in value:
            receiver.add(*piece, ascii_line=self._value_ascii)
        value.clear()
        self._receiver = receiver

    def _value_raw(self) -> list[bytes]:
        """The string read so far, as it came (and reading it ends)."""
        value, receiver = self._value, self._receiver
        self._value = self._receiver = None
        if receiver is not None:
            receiver.close()
            return [receiver.text().encode("utf-8", "surrogatepass")]
        return [buffer[start:end] for buffer, start, end in value or ()]

    def _find_key(self, chunk: bytes, start: int, end: int) -> int:
        """Where the value of the next image key starts in ``chunk[start:end]``, or -1."""
        scan = self._scan
        if scan:
            probe = scan + chunk[start : start + _SCAN_BACK]
            match = _IMAGE_KEY_BYTES.search(probe)
            # Every match wholly in the kept text was found when it was kept.
            if match is not None and match.start() < len(scan) < match.end():
                return start + match.end() - len(scan)
        found = _IMAGE_KEY_BYTES.search(chunk, start, end)
        return -1 if found is None else found.end()

    def _keep(self, chunk: bytes, start: int, end: int) -> None:
        if end > start:
            kept = chunk[start:end]
            self._parts.append(kept)
            self._scan = (self._scan + kept[-_SCAN_BACK:])[-_SCAN_BACK:]

    def _end_value(self) -> None:
        self._scan = b""
        receiver = self._receiver
        if receiver is None:
            self._parts.extend(self._value_raw())
            return
        receiver.close()
        self._parts.append(LiftedBase64(receiver, self._value_size))
        self._value = self._receiver = None

    def close(self) -> tuple[str, int]:
        """The line's JSON with a placeholder for each lifted image, and the line's own size."""
        if self._value is not None:
            # The string never ended (not JSON): the parser gets it as it came.
            self._parts.extend(self._value_raw())
        register = self._lifter._register
        pieces: list[bytes] = []
        size = 0
        for part in self._parts:
            if isinstance(part, LiftedBase64):
                placeholder = register(part)
                pieces.append(placeholder)
                size += part.text_size() - len(placeholder)
            else:
                pieces.append(part)
        self._parts = []
        # Cut only next to quotes, the kept bytes decode as they would whole.
        text = b"".join(pieces).decode("utf-8", "replace")
        size += len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
        return text, size
