"""Strict base64 decoding, as fast as the machine allows.

Image payloads arrive as megabytes of base64; decoding them is most of the
time between the last byte of a final image arriving and its bytes being
usable. pybase64 (the ``fast`` extra) decodes with SIMD and validates; without
it, binascii's default mode plus two checks is about twice as fast as
binascii's ``strict_mode`` and accepts exactly the same inputs.
"""

from __future__ import annotations

import binascii
import importlib
from types import ModuleType

__all__ = ["FAST_BASE64", "decode_base64", "encode_base64", "encode_base64_bytes"]


def _optional(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:  # depends on the environment
        return None


_pybase64 = _optional("pybase64")

FAST_BASE64 = _pybase64 is not None
"""True when pybase64 is installed and used."""


def decode_base64(b64: str) -> bytes:
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
    data = binascii.a2b_base64(b64)
    if len(data) != length // 4 * 3 - pad:
        raise binascii.Error("a character outside the base64 alphabet")
    return data


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
