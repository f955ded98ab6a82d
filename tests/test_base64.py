"""The base64 decoder: canonical text strictly and fast, the forms servers send normalised."""

from __future__ import annotations

import base64
import binascii
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagestream import _base64

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/= \n\r-_!"


def _strict(text: str) -> bytes | None:
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        return None


def _ours(text: str) -> bytes | None:
    try:
        return _base64.decode_base64(text)
    except (binascii.Error, ValueError):
        return None


def _reference(text: str) -> bytes | None:
    """The accepted forms, decoded by the standard library in the plainest way."""
    text = text.strip(" \t\r\n\x0b\x0c")
    if re.search(r"\r(?!\n)", text):
        return None  # a carriage return must come with its line feed
    data = text.replace("\r", "").replace("\n", "")
    if re.search(r"[^A-Za-z0-9+/=_-]", data):
        return None
    if re.search(r"[-_]", data) and re.search(r"[+/]", data):
        return None
    bare = data.rstrip("=")
    if "=" in bare or len(bare) % 4 == 1:
        return None
    if len(data) - len(bare) > -len(bare) % 4:
        return None
    padded = bare + "=" * (-len(bare) % 4)
    return base64.urlsafe_b64decode(padded) if "-" in bare or "_" in bare else _strict(padded)


@pytest.fixture(params=["stdlib", "pybase64"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "stdlib":
        monkeypatch.setattr(_base64, "_pybase64", None)
    elif _base64._pybase64 is None:
        pytest.skip("pybase64 (the fast extra) is not installed")
    return str(request.param)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=64))
def test_valid_payloads_round_trip(data: bytes) -> None:
    text = base64.b64encode(data).decode()
    assert _base64.decode_base64(text) == data
    saved = _base64._pybase64
    _base64._pybase64 = None
    try:
        assert _base64.decode_base64(text) == data
    finally:
        _base64._pybase64 = saved


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("QQ==QQ==", 2),  # data after padding
        ("Q Q==", 1),  # a space inside the data
        ("QQ=A", 2),
        ("QUJD!", 4),
        ("QUJD-+==", 5),  # both alphabets
        ("====", 0),  # padding and nothing else
        ("Q===", 0),  # one character into a group
        ("QUJD=", 4),  # padding where none belongs (binascii's strict mode lets it by)
        ("QQ===", 2),  # more padding than belongs
        ("QUJDQ", 4),
        ("QUJDé", 4),
        ("data:image/png,QUJD", 0),  # a data: URL that is not base64
        ("QU\rJD", 2),  # a carriage return alone is not a line break
    ],
)
def test_invalid_payloads_are_refused_with_the_offset(text: str, offset: int, mode: str) -> None:
    with pytest.raises(_base64.Base64Error) as info:
        _base64.decode_base64(text)
    assert info.value.offset == offset
    assert f"at offset {offset}" in str(info.value)
    assert isinstance(info.value, binascii.Error)  # what callers already catch


@pytest.mark.parametrize(
    ("text", "data"),
    [
        ("QQ=", b"A"),  # short padding
        ("QQ", b"A"),  # no padding
        ("QUI", b"AB"),
        ("QQ==\n", b"A"),
        ("  QUJD\r\n", b"ABC"),
        ("QU\nJD", b"ABC"),
        ("QUJD\r\nQUJD", b"ABCABC"),
        ("QUJD\nQQ\n==", b"ABCA"),  # padding on a line of its own
        ("-_-_", base64.urlsafe_b64decode("-_-_")),
        ("data:image/png;base64,QUJD", b"ABC"),
        ("DATA:image/png;charset=x;BASE64,QUJD", b"ABC"),
        ("data:;base64,QQ", b"A"),
        ("", b""),
    ],
)
def test_accepted_forms(text: str, data: bytes, mode: str) -> None:
    assert _base64.decode_base64(text) == data
    assert _base64.normalise_base64(text) == base64.b64encode(data).decode()
    assert _base64.canonical_base64(text) == base64.b64encode(data).decode()
    assert _base64.decoded_size(text) == len(data)


def test_canonical_text_is_never_normalised(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    """Clean input takes the strict pass alone: no second look, no copy."""

    def refuse(text: str) -> str:
        raise AssertionError("normalised canonical text")

    monkeypatch.setattr(_base64, "normalise_base64", refuse)
    text = base64.b64encode(bytes(range(256)) * 10).decode()
    assert _base64.decode_base64(text) == bytes(range(256)) * 10
    assert _base64.canonical_base64(text) is text


@settings(max_examples=500, deadline=None)
@given(text=st.text(alphabet=ALPHABET, max_size=24))
def test_agrees_with_strict_binascii_and_the_reference(text: str) -> None:
    saved = _base64._pybase64
    _base64._pybase64 = None
    try:
        ours, strict, reference = _ours(text), _strict(text), _reference(text)
        if strict is not None and base64.b64encode(strict).decode() == text:
            assert ours == strict  # canonical text: exactly what strict mode gives
        assert ours == reference  # everything else: exactly the accepted forms
    finally:
        _base64._pybase64 = saved


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=80), n=st.integers(min_value=0, max_value=90))
def test_head_and_tail_of_wrapped_url_safe_unpadded_text(data: bytes, n: int) -> None:
    text = base64.urlsafe_b64encode(data).decode().rstrip("=")
    wrapped = "data:image/png;base64," + "\r\n".join(
        text[i : i + 7] for i in range(0, len(text), 7)
    )
    assert _base64.base64_head(wrapped, n) == data[:n]
    assert _base64.base64_tail(wrapped, n) == (data[-n:] if n else b"")
    assert _base64.decoded_size(wrapped) == len(data)


def test_head_and_tail_of_garbage_do_not_raise() -> None:
    for text in ("%%%%", "QUJDé", "data:x", "====", "Q"):
        assert isinstance(_base64.base64_head(text, 8), bytes)
        assert isinstance(_base64.base64_tail(text, 8), bytes)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=80), n=st.integers(min_value=0, max_value=90))
def test_head_and_tail_of_canonical_text(data: bytes, n: int) -> None:
    text = base64.b64encode(data).decode()
    assert _base64.base64_head(text, n) == data[:n]
    assert _base64.base64_tail(text, n) == (data[-n:] if n else b"")
    assert _base64.decoded_size(text) == len(data)
