"""Redaction: one routine and one mask for every key that must never be shown.

Errors, reprs and log lines may quote text that came from a server or a
proxy, and a misbehaving one may echo the request's headers back. Everything
quoted passes through :func:`redact` first, which masks the secrets the
caller knows of, anything shaped like an ``Authorization`` credential, and
the key shapes a provider names (``sk-...``, ``pst-...``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ._request import Secret

__all__ = ["MASK", "redact"]

MASK = "[redacted]"
"""What every redacted secret is replaced with, everywhere."""

# "Bearer <token>" / "Basic <token>" quoted back by a server: the scheme stays,
# the credential goes, whatever the key looks like.
_CREDENTIAL = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{6,}")
# Shorter values are too likely to occur in ordinary words to be masked safely.
_MIN_SECRET = 6


def redact(
    text: str,
    secrets: Iterable[Secret | str | None] = (),
    *,
    patterns: Iterable[str | re.Pattern[str]] = (),
) -> str:
    """``text`` with every secret, credential and key-shaped word replaced by :data:`MASK`.

    Args:
        text: What is about to be shown (an error message, a log line).
        secrets: Keys, tokens and header values to mask wherever they occur.
        patterns: Regular expressions of a provider's key shapes (for keys the
            caller does not know, such as one a proxy quotes back).
    """
    values = []
    for secret in secrets:
        value = secret.get() if isinstance(secret, Secret) else secret
        if value and len(value) >= _MIN_SECRET:
            values.append(value)
    # Longest first: a key is masked whole even when a shorter secret is part of it.
    for value in sorted(values, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    text = _CREDENTIAL.sub(lambda match: f"{match[1]} {MASK}", text)
    for pattern in patterns:
        text = re.sub(pattern, MASK, text)
    return text
