"""Animus's errors as imagestream's typed errors, never quoting a key or token.

Error bodies are JSON with a ``message`` (animus-client reads it first),
else a ``detail`` (FastAPI's shape), else an ``error`` (a string or an
object with a ``message``); anything else is quoted as text. The HTTP status
picks the class through the kit's :func:`~imagestream.error_for_status`
(401/403 authentication, 402 out of credit, 429 rate limit, 5xx server);
wording about content policy or compliance makes it a
:class:`~imagestream.ContentPolicyError` whatever the status.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from imagestream import ContentPolicyError, ProviderError, ServerError
from imagestream.provider import ErrorParser, error_for_status, redact

from ._config import KEY_ENV, PROVIDER, TOKEN_ENV

__all__ = [
    "error_parser",
    "exchange_error_parser",
    "failed_generation",
    "message_of",
    "policy_refusal",
    "scrub",
]

_MAX_MESSAGE: Final = 500

_POLICY_WORDS: Final = (
    "content policy",
    "content_policy",
    "compliance",
    "nsfw",
    "safety",
    "moderation",
    "prohibited",
)

_HINTS: Final[Mapping[int, str]] = {
    401: (
        f"the token was refused: check {KEY_ENV} (exchanged for a token) or the token "
        f"given with -o token / {TOKEN_ENV}"
    ),
    402: "the account lacks the plan or the credits this generation needs",
    403: "the key or token is not allowed to use this endpoint",
    429: "Animus is rate limiting this account: wait a moment and try again",
}


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret (key, token) and anything credential-shaped masked."""
    return redact(text, tuple(secrets))


def message_of(data: Any) -> str | None:
    """The human message of an error object, or ``None`` when it has none."""
    if isinstance(data, str):
        return data
    if not isinstance(data, Mapping):
        return None
    for name in ("message", "detail", "error", "error_message"):
        value = data.get(name)
        if isinstance(value, str) and value.strip():
            return value
        if isinstance(value, Mapping):
            nested = message_of(value)
            if nested:
                return nested
        if isinstance(value, list) and value:  # FastAPI's validation errors
            return "; ".join(
                str(item.get("msg", item)) if isinstance(item, Mapping) else str(item)
                for item in value[:5]
            )
    return None


def _body_message(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text
    return message_of(data) or text


def policy_refusal(message: str) -> bool:
    """True when ``message`` says a safety or content policy refused the request."""
    lowered = message.lower()
    return any(word in lowered for word in _POLICY_WORDS)


def error_parser(secrets: Iterable[str | None], *, doing: str = "") -> ErrorParser:
    """The ``parse_error`` for :meth:`imagestream.HttpClient.send`, masking ``secrets``.

    ``doing`` starts the message (``"exchanging the API key for a token failed: "``).
    """
    masked = tuple(secrets)

    def parse(status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        message = scrub(_body_message(body), masked)[:_MAX_MESSAGE] or f"HTTP {status}"
        cls = ContentPolicyError if status < 500 and policy_refusal(message) else None
        error = error_for_status(
            status, doing + message, provider=PROVIDER, headers=headers, cls=cls
        )
        error.hint = _HINTS.get(
            status, "Animus failed on its side; try again later" if status >= 500 else None
        )
        return error

    return parse


def exchange_error_parser(key: str) -> ErrorParser:
    """The ``parse_error`` of the key exchange: every failure says so, a refusal names the key variable."""
    base = error_parser((key,), doing="exchanging the API key for a token failed: ")

    def parse(status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        error = base(status, body, headers)
        if status in (401, 403):
            error.hint = f"check {KEY_ENV} (or --key): Animus did not accept it"
        return error

    return parse


def failed_generation(
    message: str | None, generation_id: str, secrets: Iterable[str | None]
) -> ProviderError:
    """The error of a generation whose status says it failed."""
    text = scrub(message or "no reason given", secrets)[:_MAX_MESSAGE]
    said = f"generation {generation_id} failed: {text}"
    if policy_refusal(text):
        return ContentPolicyError(
            said, provider=PROVIDER, code="generation_failed", hint="rephrase the prompt"
        )
    return ServerError(
        said, provider=PROVIDER, code="generation_failed", hint="try again, or with another prompt"
    )
