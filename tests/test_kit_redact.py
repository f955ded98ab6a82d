"""One redaction routine and one mask."""

from __future__ import annotations

import re

import pytest

from imagestream import Secret
from imagestream.provider import MASK, redact

KEY = "sk-proj-DO-NOT-LEAK-0123456789"


def test_known_secrets_are_masked_everywhere() -> None:
    text = f"bad key {KEY}; again: {KEY}"
    assert redact(text, [KEY]) == f"bad key {MASK}; again: {MASK}"
    assert redact(text, [Secret(KEY)]) == f"bad key {MASK}; again: {MASK}"


def test_longest_secret_first() -> None:
    # A header value and the bare token inside it: the whole value goes, no half-masked rest.
    assert redact(f"echo: Bearer {KEY}", [KEY, f"Bearer {KEY}"]) == f"echo: {MASK}"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "Basic"])
def test_credentials_quoted_back_are_masked_without_knowing_them(scheme: str) -> None:
    assert redact(f"Authorization: {scheme} abcdef123456") == f"Authorization: {scheme} {MASK}"


def test_provider_key_shapes() -> None:
    pattern = re.compile(r"\bpst-[A-Za-z0-9_\-]{3,}")
    assert redact("token pst-abc123 refused", patterns=[pattern]) == f"token {MASK} refused"
    assert redact("token sk-abc123", patterns=[r"\bsk-[A-Za-z0-9]{4,}"]) == f"token {MASK}"


def test_short_or_empty_secrets_are_not_masked() -> None:
    # Masking "ab" would garble ordinary words; a real key is never that short.
    assert redact("abba cab", ["ab", "", None]) == "abba cab"


def test_plain_text_is_untouched() -> None:
    assert redact("the bearer of bad news") == "the bearer of bad news"
    assert MASK == "[redacted]"
