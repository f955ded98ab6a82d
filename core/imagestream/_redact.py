"""Redaction: one routine and one mask for every key that must never be shown.

Errors, reprs and log lines may quote text that came from a server or a
proxy, and a misbehaving one may echo the request's headers back. Everything
quoted passes through :func:`redact` first, which masks the secrets the
caller knows of, anything shaped like an ``Authorization`` credential, the
key shapes a provider names (``sk-...``, ``pst-...``), and the credentials a
URL may carry: its ``user:password@`` and the values of query parameters
named like a secret (``token``, ``key``, ``api_key``, ``access_token``,
``sig``, ``signature``, ``password``, ``secret``, ...). Host, port and path
stay, so a message still says where it went. Every URL shown anywhere (an
error, a hint, a log line, a repr) goes through :func:`redact`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ._secret import Secret

__all__ = ["MASK", "redact", "url_secrets"]

MASK = "[redacted]"
"""What every redacted secret is replaced with, everywhere."""

# "Bearer <token>" / "Basic <token>" quoted back by a server: the scheme stays,
# the credential goes, whatever the key looks like.
_CREDENTIAL = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{6,}")
# Shorter values are too likely to occur in ordinary words to be masked safely.
_MIN_SECRET = 6
# "scheme://user:password@host": everything up to the last "@" before the
# path. The scheme and host stay. The scheme's length is bounded so that a
# long run of "a.a.a." costs linear time, not quadratic.
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]{0,31}://)[^/?#\s]*@")
# "?token=...", "&X-Amz-Signature=...", "#access_token=...": a query (or
# fragment) parameter whose name holds one of these words. Masking an
# innocent one ("keyword") costs nothing; showing a token costs a lot. The
# name is checked apart, so that no text makes the expression backtrack.
_QUERY_PARAM = re.compile(r"([?&;#][^=&#?\s\"'<>]{0,100}=)([^&#\s\"'<>]+)")
_SECRET_NAME = re.compile(r"(?i)token|key|secret|passw|pwd|sig|auth|credential|session|code")


def _mask_param(match: re.Match[str]) -> str:
    return f"{match[1]}{MASK}" if _SECRET_NAME.search(match[1]) else match[0]


def redact(
    text: str,
    secrets: Iterable[Secret | str | None] = (),
    *,
    patterns: Iterable[str | re.Pattern[str]] = (),
) -> str:
    """``text`` with every secret, credential, key-shaped word and URL credential masked.

    URL credentials are ``user:password@`` and the values of query
    parameters named like a secret; they are replaced by :data:`MASK`, like
    the rest.

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
    if "://" in text:
        text = _URL_USERINFO.sub(lambda match: f"{match[1]}{MASK}@", text)
    if "=" in text:
        text = _QUERY_PARAM.sub(_mask_param, text)
    for pattern in patterns:
        text = re.sub(pattern, MASK, text)
    return text


def url_secrets(url: str | None) -> tuple[str, ...]:
    """The credentials ``url`` carries: its password (and the Basic token made of it) and secret-named query values.

    For masking them wherever else they are quoted (a server echoing them in
    a body, say), where :func:`redact` cannot tell them from other words.
    """
    if not url or not any(mark in url for mark in "@?#"):
        return ()  # no password, query or fragment: nothing to parse (the usual URL)
    from urllib.parse import parse_qsl, urlsplit

    try:
        parts = urlsplit(url)
        found = [parts.password or ""]
        if parts.password:
            # What the client sends for them (aiohttp turns user:password into
            # Basic auth): a server echoing that header shows this, not the password.
            import base64

            pair = f"{parts.username or ''}:{parts.password}".encode()
            found.append(base64.b64encode(pair).decode("ascii"))
    except ValueError:
        return ()
    for query in (parts.query, parts.fragment):
        found.extend(
            value
            for name, value in parse_qsl(query, keep_blank_values=True)
            if _SECRET_NAME.search(name)
        )
    return tuple(value for value in found if value)
