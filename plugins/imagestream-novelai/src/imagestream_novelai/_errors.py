"""NovelAI's errors as imagestream's typed errors, with the token never quoted.

HTTP errors come as ``{"statusCode": <int>, "message": "<text>"}``; the HTTP
status picks the error class (400 InvalidRequestError, 401 AuthenticationError,
402 QuotaExceededError, 409 ConflictError, 429 RateLimitError, 5xx
ServerError). Errors inside a stream have no recorded shape: an ``error``
event type and a ``message`` or ``error`` field are what third-party notes
describe, so any of those is accepted.

Every text quoted from the server passes through the kit's
:func:`~imagestream.provider.redact` first, with NovelAI's token shape
(``pst-...``) as a pattern: a proxy or a server that echoes the request's
headers must not put the token into an exception message, a log line or a
traceback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

from imagestream import ProviderError, QuotaExceededError, RateLimitError, ServerError
from imagestream.provider import ErrorParser, error_for_status, redact

__all__ = ["PROVIDER", "error_from_event", "error_parser", "scrub"]

PROVIDER: Final = "novelai"

# A persistent token quoted back without its "Bearer " (the kit masks that form).
_TOKEN_SHAPE: Final = re.compile(r"pst-[A-Za-z0-9_\-]{3,}")
_MAX_MESSAGE: Final = 500

_HINTS: Final[Mapping[int, str]] = {
    400: "NovelAI refused a parameter; the message says which",
    401: "check NOVELAI_API_KEY: it must be a persistent API token (pst-...) from Account Settings",
    402: "this needs an active NovelAI subscription, or more Anlas for this size and step count",
    409: "NovelAI reported a conflict; try again in a moment",
    429: (
        "NovelAI runs one generation at a time per account; wait for the other one "
        "(another program, or the web app) to finish"
    ),
}


def scrub(text: str, secret: str | None = None) -> str:
    """``text`` without ``secret`` and without anything shaped like a NovelAI token."""
    return redact(text, (secret,), patterns=(_TOKEN_SHAPE,))


def _message(body: bytes) -> str:
    """The message of an error body: its JSON's ``message`` (or ``error``), else its text."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text
    return str(data.get("message") or data.get("error") or text) if isinstance(data, Mapping) else text


def error_parser(secret: str | None) -> ErrorParser:
    """The ``parse_error`` for :meth:`imagestream.HttpClient.send`, redacting ``secret``."""

    def parse(status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        message = scrub(_message(body), secret)[:_MAX_MESSAGE] or f"HTTP {status}"
        error = error_for_status(status, message, provider=PROVIDER, headers=headers)
        error.hint = _HINTS.get(status, "NovelAI failed on its side; try again later" if status >= 500 else None)
        return error

    return parse


def _status_of(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    # isascii: "²".isdigit() is true, but int("²") fails.
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def error_from_event(event: Mapping[str, Any], secret: str | None) -> ProviderError:
    """The typed error for an error event received inside the stream.

    A status code in the event (``statusCode``, ``status`` or ``code``)
    picks the class as for HTTP errors. Without one the message is all
    there is: the account's concurrency lock and missing Anlas are
    recognised by their wording, and anything else is taken as a failure on
    NovelAI's side.
    """
    raw = event.get("message") or event.get("error") or event.get("detail") or "generation failed"
    if isinstance(raw, Mapping):  # {"error": {"message": ...}} nests it one level down
        # skipkeys: a msgpack map may have bytes keys, which JSON cannot write.
        raw = raw.get("message") or json.dumps(dict(raw), default=str, skipkeys=True)
    message = scrub(str(raw), secret)[:_MAX_MESSAGE]
    status = next(
        (code for key in ("statusCode", "status", "code") if (code := _status_of(event.get(key))) is not None),
        None,
    )
    text = f"error event in the stream: {message}"
    if status is not None and status >= 400:
        error = error_for_status(status, text, provider=PROVIDER)
        error.hint = _HINTS.get(status)
        return error
    lowered = message.lower()
    cls: type[ProviderError]
    if "concurrent" in lowered or "too many" in lowered:
        cls = RateLimitError
    elif "anlas" in lowered or "subscription" in lowered or "insufficient" in lowered:
        cls = QuotaExceededError
    else:
        cls = ServerError
    status_hint = {RateLimitError: 429, QuotaExceededError: 402}.get(cls)
    return cls(text, provider=PROVIDER, hint=_HINTS.get(status_hint) if status_hint else None)
