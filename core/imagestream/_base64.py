"""Base64 decoding: canonical input fast, the forms real servers send normalised.

Image payloads arrive as megabytes of base64; decoding them is most of the
time between the last byte of a final image arriving and its bytes being
usable. pybase64 (the ``fast`` extra) decodes with SIMD and validates; without
it, binascii's default mode plus two checks is about twice as fast as
binascii's ``strict_mode`` and accepts exactly the same inputs.

Canonical base64 (standard alphabet, padded, nothing else) takes that strict
path and nothing more. Only when it fails is the text looked at again and
normalised (:func:`normalise_base64`), accepting exactly these deviations:

* line breaks (``\\n`` or ``\\r\\n``) anywhere, as MIME wraps at 76 columns
  and PEM at 64, and whitespace around the whole payload;
* the URL-safe alphabet (``-`` and ``_`` instead of ``+`` and ``/``);
* missing padding (``QQ`` or ``QQ=`` for ``QQ==``);
* a ``data:<type>;base64,`` prefix.

Still refused, with the offset of the culprit in the text as it came
(:class:`Base64Error`): any other character (spaces or tabs inside the data
included, and a carriage return without its line feed), both alphabets in one
payload, ``=`` before the end, more padding than the length calls for, and a
length one character into a 4-character group (which no byte count encodes to).
"""

from __future__ import annotations

import binascii
import importlib
import io
import re
import threading
from collections.abc import Iterable
from types import ModuleType

__all__ = [
    "FAST_BASE64",
    "Base64Error",
    "Base64Pieces",
    "base64_head",
    "base64_tail",
    "canonical_base64",
    "decode_base64",
    "decoded_size",
    "encode_base64",
    "encode_base64_bytes",
    "normalise_base64",
]


def _optional(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:  # depends on the environment
        return None


_pybase64 = _optional("pybase64")

FAST_BASE64 = _pybase64 is not None
"""True when pybase64 is installed and used."""


class Base64Error(binascii.Error):
    """Base64 that even the lenient reading refuses; the message says what and where.

    A :class:`binascii.Error` (so a ``ValueError``), as the strict decoders raise.

    Attributes:
        offset: Index in the text as given (``data:`` header and line breaks
            counted) of the character at fault, or ``None`` when no single
            character is.
    """

    def __init__(self, message: str, offset: int | None) -> None:
        super().__init__(message)
        self.offset = offset


def _decode_strict(b64: str) -> bytes:
    """Decode canonical base64 (standard alphabet, padded); ``binascii.Error`` otherwise.

    Without pybase64: the padding must be at most two ``=`` at the end of a
    length that is a multiple of 4, and the decoded length must be exactly what
    that length promises. binascii's default mode skips characters outside the
    alphabet (whitespace included), so any such character makes the output
    shorter and fails the second check.
    """
    if _pybase64 is not None:
        try:
            decoded: bytes = _pybase64.b64decode(b64, validate=True)
        except ValueError as exc:  # pybase64 raises binascii.Error, a ValueError
            raise binascii.Error(str(exc)) from None
        return decoded
    length = len(b64)
    if length % 4:
        raise binascii.Error("the length is not a multiple of 4")
    first_pad = b64.find("=")
    pad = 0 if first_pad < 0 else length - first_pad
    if pad > 2 or (pad and b64[first_pad:] != "=" * pad):
        raise binascii.Error("padding inside the data")
    try:
        data = binascii.a2b_base64(b64)
    except ValueError as exc:  # a non-ASCII str
        raise binascii.Error(str(exc)) from None
    if len(data) != length // 4 * 3 - pad:
        raise binascii.Error("a character outside the base64 alphabet")
    return data


def decode_base64(b64: str) -> bytes:
    """Decode base64: canonical text strictly and fast, the accepted deviations normalised.

    See the module docstring for what is accepted. Canonical text is decoded
    in one strict pass with no copy; anything else is decoded only after that
    pass fails, from its :func:`normalise_base64` form.

    Raises:
        Base64Error: The text is not base64 even read leniently; the message
            names the fault and its offset.
    """
    try:
        return _decode_strict(b64)
    except binascii.Error:
        pass
    canonical = normalise_base64(b64)
    try:
        return _decode_strict(canonical)
    except binascii.Error as exc:  # normalise_base64 let through what it should not
        raise Base64Error(f"not base64: {exc}", None) from None


# -- normalising --------------------------------------------------------------

_SPACE = " \t\r\n\x0b\x0c"
_PADDING_OR_SPACE = _SPACE + "="
_BREAKS = b"\r\n"
_STANDARD = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_ACCEPTED = _STANDARD + b"-_=" + _BREAKS
_URL_SAFE = bytes.maketrans(b"-_", b"+/")
_NOT_ACCEPTED = re.compile(r"[^A-Za-z0-9+/=\r\n_-]")
_LONE_CR = re.compile(r"\r(?!\n)")
_DATA_URL_MAX = 256  # how far to look for the comma that ends a data: URL's header


def _payload_start(text: str) -> int:
    """Where the base64 starts: after a ``data:...;base64,`` header and leading whitespace."""
    start = 0
    if text[:5].lower() == "data:":
        comma = text.find(",", 0, _DATA_URL_MAX)
        if comma < 0:
            raise Base64Error("the data: URL at offset 0 has no ',' ending its header", 0)
        params = text[5:comma].split(";")
        if len(params) < 2 or params[-1].strip().lower() != "base64":
            raise Base64Error(f"the data: URL at offset 0 is not base64: {text[: comma + 1]!r}", 0)
        start = comma + 1
    end = len(text)
    while start < end and text[start] in _SPACE:
        start += 1
    return start


def _payload_end(text: str, start: int) -> int:
    end = len(text)
    while end > start and text[end - 1] in _SPACE:
        end -= 1
    return end


def normalise_base64(text: str) -> str:
    """The canonical form of base64 in any of the accepted forms (see the module docstring).

    Raises:
        Base64Error: A refused form; the message names the fault and its
            offset in ``text``.
    """
    start = _payload_start(text)
    end = _payload_end(text, start)
    try:
        raw = text[start:end].encode("ascii")
        refused = bool(raw.translate(None, _ACCEPTED))
    except UnicodeEncodeError:
        raw, refused = b"", True
    if refused:
        bad = _NOT_ACCEPTED.search(text, start, end)
        assert bad is not None
        char, at = bad.group(), bad.start()
        if char in _SPACE:
            raise Base64Error(
                f"{char!r} at offset {at} is whitespace inside the data (only line breaks may be)",
                at,
            )
        raise Base64Error(f"{char!r} at offset {at} is not a base64 character", at)
    if b"\r" in raw:
        lone = _LONE_CR.search(text, start, end)
        if lone is not None:
            at = lone.start()
            raise Base64Error(
                f"'\\r' at offset {at} is a carriage return without a line feed after it", at
            )
    url_safe = [i for i in (raw.find(b"-"), raw.find(b"_")) if i >= 0]
    standard = [i for i in (raw.find(b"+"), raw.find(b"/")) if i >= 0]
    if url_safe and standard:
        first_url, first_std = start + min(url_safe), start + min(standard)
        raise Base64Error(
            f"{text[first_url]!r} at offset {first_url} is from the URL-safe alphabet (-_) and "
            f"{text[first_std]!r} at offset {first_std} from the standard one (+/): "
            "one payload cannot mix them",
            max(first_url, first_std),
        )
    first_pad = raw.find(b"=")
    if first_pad >= 0 and raw[first_pad:].translate(None, b"=" + _BREAKS):
        at = start + first_pad
        raise Base64Error(f"'=' at offset {at} is padding inside the data", at)
    cleaned = raw.translate(_URL_SAFE if url_safe else None, _BREAKS)
    data = cleaned.rstrip(b"=")
    pads = len(cleaned) - len(data)
    over = len(data) % 4
    if over == 1:
        at = start + (first_pad if first_pad >= 0 else len(raw)) - 1
        while text[at] in "\r\n":
            at -= 1
        raise Base64Error(
            f"the data ends at offset {at}, one character into a 4-character group, "
            "which no number of bytes encodes to (truncated, or a character lost)",
            at,
        )
    needed = (4 - over) % 4
    if pads > needed:
        at = start + first_pad
        raise Base64Error(
            f"{pads} '=' of padding at offset {at}, after {len(data)} characters, "
            f"where {needed} belong",
            at,
        )
    return data.decode("ascii") + "=" * needed


def _looks_canonical(text: str) -> bool:
    """True unless a cheap look (no copy; a few memchr scans) finds an accepted deviation."""
    return not (
        len(text) % 4
        or text[:5].lower() == "data:"
        or "\n" in text  # every accepted line break has one
        or "-" in text
        or "_" in text
        or (text and (text[0] in _SPACE or text[-1] in _SPACE))
    )


def canonical_base64(text: str) -> str:
    """``text`` in canonical form for passing on: ``text`` itself when it already is.

    Text that is not base64 at all is returned as it came: whoever decodes it
    gets the error.
    """
    if _looks_canonical(text):
        return text
    try:
        return normalise_base64(text)
    except Base64Error:
        return text


# -- sizes and partial decoding, without decoding it all ----------------------


def _data_bounds(text: str) -> tuple[int, int]:
    """``(start, end)`` of the data: after any ``data:`` header, before padding and whitespace."""
    try:
        start = _payload_start(text)
    except Base64Error:
        start = 0
    end = len(text)
    while end > start and text[end - 1] in _PADDING_OR_SPACE:
        end -= 1
    return start, end


def _data_span(text: str) -> tuple[int, int, int]:
    """:func:`_data_bounds` and the number of data characters between them.

    That number leaves out line breaks: finding out whether there are any
    costs a scan without a copy (every accepted one has a ``\n``), counting
    them happens only if there are.
    """
    start, end = _data_bounds(text)
    count = end - start
    if text.find("\n", start, end) >= 0:
        count -= text.count("\n", start, end) + text.count("\r", start, end)
    return start, end, count


def decoded_size(text: str) -> int:
    """How many bytes ``text`` decodes to, computed without decoding."""
    return _data_span(text)[2] * 3 // 4


def _clean(piece: str) -> bytes:
    """A window of the payload as standard-alphabet base64, best effort, for a partial decode."""
    raw = piece.encode("ascii", "ignore")
    return raw.translate(_URL_SAFE, _BREAKS + b" \t\x0b\x0c=")


def _lenient(quads: bytes) -> bytes:
    try:
        return binascii.a2b_base64(quads)
    except (binascii.Error, ValueError):
        return b""


def base64_head(text: str, n: int) -> bytes:
    """The first ``n`` decoded bytes (fewer if the payload is shorter), decoding only those.

    Best effort, for sniffing: any accepted form works, text that is not
    base64 gives garbage or ``b""`` (full decoding reports the fault).
    """
    wanted = (n + 2) // 3 * 4
    start, end = _data_bounds(text)
    take = wanted
    while True:
        window = _clean(text[start : start + take])
        if len(window) >= wanted or start + take >= end:
            break
        take *= 2
    window = window[:wanted]
    if len(window) % 4 == 1:
        window = window[:-1]
    return _lenient(window + b"=" * (-len(window) % 4))[:n]


def base64_tail(text: str, n: int) -> bytes:
    """The last ``n`` decoded bytes (fewer if the payload is shorter), decoding only those.

    Best effort, like :func:`base64_head`. The groups of four line up from the
    start of the data; without line breaks their phase is known from the
    length alone, with them the breaks are counted once.
    """
    wanted = (n + 2) // 3 * 4 + 4
    start, end, count = _data_span(text)
    over = count % 4  # characters of the last, partial group
    take = wanted
    while True:
        from_ = max(start, end - take)
        window = _clean(text[from_:end])
        if len(window) >= wanted or from_ == start:
            break
        take *= 2
    body = window[: len(window) - over]
    body = body[len(body) % 4 :]
    last = window[len(window) - over :] if over > 1 else b""
    return _lenient(body + last + b"=" * (-len(last) % 4))[-n:] if n else b""


# -- encoding -----------------------------------------------------------------


def encode_base64_bytes(data: bytes) -> bytes:
    """Standard, padded base64 without newlines, as ASCII bytes (no text copy)."""
    if _pybase64 is not None:
        encoded: bytes = _pybase64.b64encode(data)
        return encoded
    return binascii.b2a_base64(data, newline=False)


def encode_base64(data: bytes) -> str:
    """Standard, padded base64 without newlines."""
    if _pybase64 is not None:
        encoded: str = _pybase64.b64encode_as_string(data)
        return encoded
    return binascii.b2a_base64(data, newline=False).decode("ascii")


# -- base64 held in pieces ----------------------------------------------------

Piece = tuple[bytes, int, int]
"""``(buffer, start, end)``: the text ``buffer[start:end]``, held without slicing it."""

_GONE: Piece = (b"", 0, 0)
_CLEAN = _STANDARD + b"-_"  # characters a window can hold and still be read as it is
_BLOCK = 64 * 1024  # characters decoded at once: the temporary bytes of each step stay small
# Characters of text to be decoded early that are held before decoding starts
# without pybase64: what a streamed image holds beyond its bytes stays under it.
_HOLD = 4 * 2**20
_EDGE = 64  # how far from the end trailing padding and whitespace are looked for


def _decode_body(block: bytes | memoryview) -> bytes:
    """Decode whole 4-character groups that must hold no padding; ``binascii.Error`` otherwise.

    A character outside the alphabet, or ``=`` anywhere, makes the output
    shorter than three bytes per group (binascii skips the one and stops at
    the other; pybase64 refuses both), so one length check covers them.
    """
    if _pybase64 is not None:
        try:
            decoded: bytes = _pybase64.b64decode(block, validate=True)
        except ValueError as exc:
            raise binascii.Error(str(exc)) from None
    else:
        decoded = binascii.a2b_base64(block)
    if len(decoded) * 4 != len(block) * 3:
        raise binascii.Error("not canonical base64")
    return decoded


class Base64Pieces:
    """Base64 text held as the ASCII pieces it arrived in, neither joined nor copied.

    What :meth:`~imagestream.ImageData.from_base64_pieces` keeps. Decoding
    writes piece after piece into one buffer and lets each piece go once it
    is decoded, so the whole text and the whole bytes are never held
    together. The outcome is exactly :func:`decode_base64`'s for the joined
    text: canonical text is checked piece by piece as strictly as whole;
    anything else is joined back (the part already decoded is re-encoded,
    which gives back its text exactly) and decoded by :func:`decode_base64`,
    which normalises it or says what is wrong.

    Made empty and open (``Base64Pieces()``), it takes the pieces as they
    arrive (:meth:`add`, then :meth:`close`). With pybase64, which decodes
    faster than text arrives over any network, and ``decode_early``, each
    piece is decoded as it is added and not kept: the text never piles up.
    The standard library's decoder takes about as long as the network, so
    without pybase64 the first ``_HOLD`` characters are kept, as references,
    and only a text that grows past them is decoded (what was kept, then
    each piece as it arrives): an image that is never looked at costs no
    decoding, and a large one never holds much text beside its bytes.
    Without ``decode_early`` the pieces are kept and decoded when the bytes
    are first needed. Either way the bytes are only *handed out* on demand.

    The sizes and the first and last bytes are read from the ends of the
    pieces when the text is plain (no ``data:`` header, no line breaks, no
    leading whitespace: all base64 from a JSON string is), else from the
    joined text. A lock makes decoding and reading safe across threads.
    """

    __slots__ = (
        "_ascii",
        "_carry",
        "_decoded",
        "_hold",
        "_last",
        "_lock",
        "_open",
        "_out",
        "_pieces",
        "_plain",
        "_text",
        "_vouched",
        "length",
    )

    def __init__(
        self,
        pieces: Iterable[bytes | bytearray | memoryview | Piece] | None = None,
        *,
        decode_early: bool = True,
    ) -> None:
        self._pieces: list[Piece] = []
        self.length = 0
        """Characters of text (bytes of the pieces)."""
        self._decoded: bytes | None = None
        self._last = b""  # decoded as it arrived: the text of the last group, as it came
        self._ascii: bool | None = None  # whether every piece is ASCII, once looked at
        self._vouched = True  # every piece so far was added as ASCII without a line feed
        self._text: str | None = None
        self._plain: int | None = -1  # not looked at yet; then the data length, or None
        self._lock = threading.Lock()
        self._open = True
        # Decoding as pieces arrive (open and with pybase64 only): the bytes so
        # far, and the text not decoded yet.
        eager = pieces is None and decode_early and _pybase64 is not None
        self._out: io.BytesIO | None = io.BytesIO() if eager else None
        self._carry = b""
        # Without pybase64, a text meant to be decoded early is held up to
        # _HOLD characters (a preview-sized image may never be needed, and
        # binascii is slow), then decoded from there on as it arrives.
        self._hold = _HOLD if pieces is None and decode_early and not eager else None
        if pieces is None:
            return
        for piece in pieces:
            if isinstance(piece, tuple):
                self.add(*piece)
            else:
                buffer = piece if isinstance(piece, bytes) else bytes(piece)
                self.add(buffer, 0, len(buffer))
        self.close()

    # -- taking the pieces -------------------------------------------------------

    def add(self, buffer: bytes, start: int, end: int, *, ascii_line: bool = False) -> None:
        """Take the text ``buffer[start:end]``, the next piece (kept, or decoded and let go).

        ``ascii_line=True`` vouches that the piece is ASCII and holds no line
        feed (the caller has just scanned it, or it is part of one line):
        while every piece is vouched for, the sizes and the last bytes are
        read without scanning the pieces again. Vouch only for what is
        certain: a wrong vouch gives wrong sizes, ends and
        :meth:`canonical_bytes` (decoding still checks every character).
        """
        if not 0 <= start <= end <= len(buffer):
            raise ValueError(f"piece bounds {start}:{end} outside {len(buffer)} bytes")
        with self._lock:
            if not self._open:
                raise RuntimeError("this Base64Pieces is closed")
            if end == start:
                return
            if not ascii_line:
                self._vouched = False
            self.length += end - start
            if self._out is None:
                self._pieces.append((buffer, start, end))
                if self._hold is not None and self.length > self._hold:
                    self._start_decoding()
                return
            self._decode_piece(buffer, start, end)

    def _start_decoding(self) -> None:
        """Decode the pieces held so far, letting each go, and go on as they arrive."""
        self._hold = None
        held, self._pieces = self._pieces, []
        out = self._out = io.BytesIO()
        for index, piece in enumerate(held):
            held[index] = _GONE
            if self._out is out:
                self._decode_piece(*piece)
            else:  # not canonical: the text is kept from there on
                self._pieces.append(piece)

    def _decode_piece(self, buffer: bytes, start: int, end: int) -> None:
        """Decode the next piece as it arrives (all but the text's last group)."""
        assert self._out is not None
        carry = self._carry
        if end - start < _EDGE:
            # Small pieces gather in the carry (a copy of a few bytes).
            carry += buffer[start:end]
            if len(carry) < _EDGE:
                self._carry = carry
                return
            buffer, start, end, carry = carry, 0, len(carry), b""
        # Everything but the last group and the part of one after it:
        # the end of the text, which padding may close, is decoded last.
        total = len(carry) + end - start
        cut = end - (4 + total % 4)
        try:
            parts, rest = _decode_run(carry, buffer, start, cut)
        except binascii.Error:
            self._stop_decoding(carry, buffer, start, end)
            return
        assert not rest
        for part in parts:
            self._out.write(part)
        self._carry = buffer[cut:end]

    def close(self) -> None:
        """No more pieces: the text is complete."""
        with self._lock:
            if not self._open:
                return
            self._open = False
            out = self._out
            if out is None:
                return
            carry = self._carry
            self._out = None
            self._carry = b""
            try:
                if len(carry) % 4:
                    raise binascii.Error("the length is not a multiple of 4")
                body = _decode_body(carry[:-4])
                last = _decode_strict(carry[-4:].decode("ascii")) if carry else b""
            except (binascii.Error, UnicodeDecodeError):
                self._pieces = [*self._decoded_text(out), (carry, 0, len(carry))]
                return
            out.write(body)
            out.write(last)
            # Exactly as long as what was written: getvalue() hands the buffer over.
            self._decoded = out.getvalue()
            # Kept as it came: its unused bits need not be zero ("QR==").
            self._last = carry[-4:]

    def _stop_decoding(self, carry: bytes, buffer: bytes, start: int, end: int) -> None:
        """Not canonical: keep the text from now on (what was decoded, encoded back)."""
        assert self._out is not None
        self._pieces = [*self._decoded_text(self._out), (carry, 0, len(carry))]
        self._pieces.append((buffer, start, end))
        self._out = None
        self._carry = b""

    @staticmethod
    def _decoded_text(out: io.BytesIO) -> list[Piece]:
        # Decoded from whole groups of the alphabet only: encoding it again
        # gives back its text exactly.
        text = encode_base64_bytes(out.getvalue())
        return [(text, 0, len(text))]

    # -- the text ---------------------------------------------------------------

    def text(self) -> str:
        """The whole text, joined (a copy; read as UTF-8, invalid bytes as U+FFFD)."""
        with self._lock:
            return self._joined()

    def text_size(self) -> int:
        """The text's size in UTF-8, decoded as :meth:`text` decodes it (its length if ASCII)."""
        with self._lock:
            if self._text is not None:
                text = self._text
                return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
            if self._decoded is not None or self._all_ascii():
                return self.length
            return len(self._joined().encode("utf-8", "surrogatepass"))

    def _all_ascii(self) -> bool:
        if self._ascii is None:
            # The whole buffer when the piece is most of it (no copy), else the
            # piece alone: a buffer holding several images is not scanned for each.
            self._ascii = self._vouched or all(
                (2 * (end - start) >= len(buffer) and buffer.isascii())
                or buffer[start:end].isascii()
                for buffer, start, end in self._pieces
            )
        return self._ascii

    def head_text(self, count: int) -> str:
        """The first ``count`` characters of the text (all of it if shorter)."""
        with self._lock:
            if self._decoded is not None and self.length > count + 8:
                return encode_base64(self._decoded[: (count + 3) // 4 * 3])[:count]
            if self._pieces:
                return self._front(count).decode("utf-8", "replace")
            return self._joined()[:count]

    def _joined(self) -> str:
        if self._text is not None:
            return self._text
        if self._decoded is not None:
            if not self._last:
                return encode_base64(self._decoded)
            # The last group as it came: its unused bits need not be zero ("QR==").
            body = len(self._decoded) - len(_decode_strict(self._last.decode("ascii")))
            return encode_base64(self._decoded[:body]) + self._last.decode("ascii")
        return _join(self._pieces)

    def _front(self, count: int) -> bytes:
        """The first ``count`` bytes of the text (all of it if shorter)."""
        out: list[bytes] = []
        for buffer, start, end in self._pieces:
            take = min(count, end - start)
            out.append(buffer[start : start + take])
            count -= take
            if not count:
                break
        return b"".join(out)

    def _back(self, count: int) -> bytes:
        """The last ``count`` bytes of the text (all of it if shorter)."""
        out: list[bytes] = []
        for buffer, start, end in reversed(self._pieces):
            take = min(count, end - start)
            out.append(buffer[end - take : end])
            count -= take
            if not count:
                break
        return b"".join(reversed(out))

    def _data_length(self) -> int | None:
        """Characters of data (trailing padding and whitespace left out) when the text is plain.

        Plain: no ``data:`` header, no leading whitespace and no line break, so
        the data starts at 0 and every character up to its end counts.
        ``None`` otherwise (and while undecided what is left is the text's own).
        """
        if self._plain != -1:
            return self._plain
        plain: int | None = None
        front = self._front(5)
        if (
            self._text is None
            and self._decoded is None
            and front.lower() != b"data:"
            and (not front or front[0] not in _SPACE_BYTES)
            and (
                self._vouched
                or all(buffer.find(b"\n", start, end) < 0 for buffer, start, end in self._pieces)
            )
            and self._all_ascii()
        ):
            back = self._back(_EDGE)
            data_end = len(back.rstrip(_PADDING_OR_SPACE_BYTES))
            if data_end or len(back) < _EDGE:
                plain = self.length - (len(back) - data_end)
        self._plain = plain
        return plain

    # -- decoding ---------------------------------------------------------------

    def decode(self) -> bytes:
        """The decoded bytes, exactly as :func:`decode_base64` gives them for the text.

        Raises:
            Base64Error: The text is not base64 even read leniently.
        """
        self.close()
        with self._lock:
            if self._decoded is not None:
                return self._decoded
            if self._text is None:
                decoded = self._decode_pieces()
                if decoded is not None:
                    self._decoded = decoded
                    self._pieces = []
                    return decoded
            assert self._text is not None
            return decode_base64(self._text)

    def _decode_pieces(self) -> bytes | None:
        """Strict decoding, piece by piece, each piece let go once decoded.

        ``None`` when the text is not canonical: then ``_text`` holds it, whole.
        """
        length = self.length
        if not length:
            return b""
        pieces = self._pieces
        last = self._back(4)
        try:
            if length % 4:
                raise binascii.Error("the length is not a multiple of 4")
            tail = _decode_strict(last.decode("ascii"))
        except (binascii.Error, UnicodeDecodeError):
            self._keep_text(_join(pieces))
            return None
        body_end = length - 4
        size = body_end // 4 * 3 + len(tail)
        out = _Output(size)
        carry = b""
        offset = 0
        for index, (buffer, start, end) in enumerate(pieces):
            cut = min(end, start + max(0, body_end - offset))
            offset += end - start
            try:
                parts, rest = _decode_run(carry, buffer, start, cut)
            except binascii.Error:
                # What was decoded so far came from whole groups of the
                # alphabet: encoding it again gives back its text exactly.
                done = encode_base64_bytes(out.written())
                self._keep_text(
                    _join([(done, 0, len(done)), (carry, 0, len(carry)), *pieces[index:]])
                )
                return None
            for part in parts:
                out.write(part)
            carry = rest
            pieces[index] = _GONE
        assert not carry
        out.write(tail)
        self._last = last  # the text of the last group, as it came
        return out.result()

    def _keep_text(self, text: str) -> None:
        """Hold the text whole from now on (the pieces, partly gone, are dropped)."""
        self._text = text
        self._pieces = []
        self._plain = None

    # -- reading without decoding it all -----------------------------------------

    def decoded_size(self) -> int:
        """What :func:`decoded_size` gives for the text."""
        with self._lock:
            if self._decoded is not None:
                return len(self._decoded)
            data_length = self._data_length()
            if data_length is not None:
                return data_length * 3 // 4
            return decoded_size(self._joined())

    def head(self, n: int) -> bytes:
        """What :func:`base64_head` gives for the text, from its first characters when it can."""
        with self._lock:
            if self._decoded is not None:
                return self._decoded[:n]
            if self._text is None:
                # At least 5: a plain window must also rule out a "data:" header.
                wanted = (n + 2) // 3 * 4
                front = self._front(max(5, wanted))
                if len(front) >= max(5, wanted) and not front.translate(None, _STANDARD):
                    # Standard alphabet only (no header, no padding, nothing to
                    # clean): what base64_head would decode, decoded directly.
                    return binascii.a2b_base64(front[:wanted])[:n]
                # A window of plain alphabet reads the same alone as in the whole.
                if len(front) == self.length or not front.translate(None, _CLEAN):
                    return base64_head(front.decode("utf-8", "replace"), n)
            return base64_head(self._joined(), n)

    def tail(self, n: int) -> bytes:
        """What :func:`base64_tail` gives for the text, from its last characters when it can."""
        with self._lock:
            if self._decoded is not None:
                return self._decoded[-n:] if n > 0 else b""
            data_length = self._data_length()
            if data_length is not None:
                wanted = (n + 2) // 3 * 4 + 4
                # Cut at a multiple of 4 from the start, so the groups line up as in the whole.
                skip = max(0, data_length - wanted - 4) // 4 * 4
                back = self._back(self.length - skip)
                data = back[: data_length - skip]
                if not data.translate(None, _STANDARD):
                    return _plain_tail(data, n)
                if not data.translate(None, _CLEAN):
                    return base64_tail(back.decode("ascii"), n)
            return base64_tail(self._joined(), n)

    def canonical_bytes(self) -> bytes | None:
        """The text as ASCII bytes (one copy) when it is canonical already, else ``None``."""
        with self._lock:
            if self._decoded is not None and self._last:
                # Decoded as it arrived (so canonical): encoded again, straight to bytes.
                last = self._last
                body = len(self._decoded) - len(_decode_strict(last.decode("ascii")))
                if encode_base64_bytes(self._decoded[body:]) == last:
                    return encode_base64_bytes(self._decoded)
                return encode_base64_bytes(self._decoded[:body]) + last
            if self._decoded is not None or self._text is not None:
                return None
            if self.length % 4 or self._data_length() is None:
                return None
            if any(
                buffer.find(b"-", start, end) >= 0 or buffer.find(b"_", start, end) >= 0
                for buffer, start, end in self._pieces
            ):
                return None
            if self._back(1) in _SPACE_BYTES_SET:
                return None
            return b"".join([memoryview(buffer)[start:end] for buffer, start, end in self._pieces])


_SPACE_BYTES = _SPACE.encode("ascii")
_SPACE_BYTES_SET = {bytes([byte]) for byte in _SPACE_BYTES}
_PADDING_OR_SPACE_BYTES = _PADDING_OR_SPACE.encode("ascii")


class _Output:
    """The decoded bytes, written into one buffer that ends up exactly ``size`` long.

    The buffer grows by doubling up to ``size`` rather than being allocated
    whole at once: the pieces decoded so far are let go meanwhile, so the
    text still held plus the buffer stay well under text plus bytes (about
    1.7 times the bytes at most, against 2.3 for both whole). A few
    reallocations, which glibc does in place or by remapping for buffers
    this large. ``getvalue()`` of a buffer exactly full hands the buffer
    itself over: no copy at the end.
    """

    __slots__ = ("_allocated", "_io", "_size")

    def __init__(self, size: int) -> None:
        self._io = io.BytesIO()
        self._size = size
        self._allocated = 0
        self._grow(min(size, max(2**20, size // 8)))

    def _grow(self, allocated: int) -> None:
        position = self._io.tell()
        self._io.seek(allocated - 1)
        self._io.write(b"\0")
        self._io.seek(position)
        self._allocated = allocated

    def write(self, part: bytes) -> None:
        end = self._io.tell() + len(part)
        if end > self._allocated:
            self._grow(min(self._size, max(end, 2 * self._allocated)))
        self._io.write(part)

    def written(self) -> bytes:
        return self._io.getvalue()[: self._io.tell()]

    def result(self) -> bytes:
        assert self._io.tell() == self._size == self._allocated
        return self._io.getvalue()


def _plain_tail(data: bytes, n: int) -> bytes:
    """:func:`base64_tail` of data of the standard alphabet only, its groups lined up from 0."""
    if not n:
        return b""
    window = data[max(0, len(data) - ((n + 2) // 3 * 4 + 4)) :]
    over = len(data) % 4  # characters of the last, partial group
    body = window[: len(window) - over]
    body = body[len(body) % 4 :]
    last = window[len(window) - over :] if over > 1 else b""
    return _lenient(body + last + b"=" * (-len(last) % 4))[-n:]


def _join(pieces: list[Piece]) -> str:
    """The text of ``pieces``: UTF-8, as in the JSON string it came from (bad bytes as U+FFFD)."""
    return b"".join([memoryview(buffer)[start:end] for buffer, start, end in pieces]).decode(
        "utf-8", "replace"
    )


def _decode_run(carry: bytes, buffer: bytes, start: int, end: int) -> tuple[list[bytes], bytes]:
    """Decode ``carry + buffer[start:end]`` up to its last whole group; return the rest too."""
    parts: list[bytes] = []
    if carry:
        need = -len(carry) % 4
        if end - start < need:
            return parts, carry + buffer[start:end]
        parts.append(_decode_body(carry + buffer[start : start + need]))
        start += need
    whole = start + (end - start) // 4 * 4
    view = memoryview(buffer)
    while start < whole:
        step = min(whole, start + _BLOCK)
        parts.append(_decode_body(view[start:step]))
        start = step
    return parts, buffer[whole:end]
