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
import re
from types import ModuleType

__all__ = [
    "FAST_BASE64",
    "Base64Error",
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
