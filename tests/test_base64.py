"""The fast strict base64 decoder accepts canonical base64 and nothing strict mode refuses."""

from __future__ import annotations

import base64
import binascii

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagestream import _base64

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/= \n-_!"


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
    "text", ["QQ=", "QQ==QQ==", "Q Q==", "QQ==\n", "QQ=A", "QUJD!", "QUJD-_==", "====", "Q==="]
)
def test_invalid_payloads_are_refused(text: str, mode: str) -> None:
    assert _strict(text) is None
    assert _ours(text) is None


@settings(max_examples=500, deadline=None)
@given(text=st.text(alphabet=ALPHABET, max_size=24))
def test_stdlib_mode_agrees_with_strict_binascii(text: str) -> None:
    saved = _base64._pybase64
    _base64._pybase64 = None
    try:
        ours, strict = _ours(text), _strict(text)
        if ours is not None:
            assert ours == strict  # never accepts what strict mode refuses
        elif strict is not None:
            # Refusing is allowed only for non-canonical text strict mode
            # tolerates (such as surplus padding after a full quad).
            assert base64.b64encode(strict).decode() != text
    finally:
        _base64._pybase64 = saved
