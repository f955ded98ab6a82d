"""Google's errors as imagestream's typed errors, with every key and token masked.

HTTP errors (and an error object inside a stream) have one shape::

    {"error": {"code": 429, "message": "...", "status": "RESOURCE_EXHAUSTED",
               "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                            "retryDelay": "34.4s"}, ...]}}

The canonical ``status`` picks the class (the HTTP code breaks ties); a
``RetryInfo.retryDelay`` becomes ``retry_after``, which the core's retry
honours before the first byte. Some gateways answer with a JSON list of one
such object, or with no JSON at all: both are handled.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from imagestream import (
    AuthenticationError,
    InvalidRequestError,
    ProviderError,
    QuotaExceededError,
    RateLimitError,
    Secret,
    ServerError,
    error_for_status,
)
from imagestream.provider import redact

__all__ = ["KEY_PATTERNS", "error_from_object", "error_parser"]

KEY_PATTERNS = (r"\bAIza[0-9A-Za-z_\-]{20,}", r"\bya29\.[0-9A-Za-z_\-.]{10,}")
"""Google API keys and OAuth access tokens, masked even when they are not ours."""

_MAX_MESSAGE = 500

_BY_STATUS: dict[str, type[ProviderError]] = {
    "RESOURCE_EXHAUSTED": RateLimitError,
    "UNAUTHENTICATED": AuthenticationError,
    "PERMISSION_DENIED": AuthenticationError,
    "INVALID_ARGUMENT": InvalidRequestError,
    "FAILED_PRECONDITION": InvalidRequestError,
    "NOT_FOUND": InvalidRequestError,
    "OUT_OF_RANGE": InvalidRequestError,
    "INTERNAL": ServerError,
    "UNAVAILABLE": ServerError,
    "DEADLINE_EXCEEDED": ServerError,
    "UNKNOWN": ServerError,
}

_HINTS: dict[str, str] = {
    "RESOURCE_EXHAUSTED": "wait and try again, or check the quota of the project or key",
    "UNAUTHENTICATED": "check the key or token (GEMINI_API_KEY; for Vertex, ADC or --key)",
    "PERMISSION_DENIED": "the key or account may not use this model or project",
    "INVALID_ARGUMENT": "Google refused a parameter; the message says which",
    "FAILED_PRECONDITION": "the model may not be available in this location or for this account",
}


def _seconds(delay: object) -> float | None:
    """``"34.4s"`` (a protobuf Duration in JSON) as seconds."""
    if isinstance(delay, str) and (match := re.fullmatch(r"\s*(\d+(?:\.\d+)?)s\s*", delay)):
        return float(match[1])
    return None


def _retry_delay(details: object) -> float | None:
    for detail in details if isinstance(details, list) else ():
        if isinstance(detail, Mapping) and str(detail.get("@type", "")).endswith("RetryInfo"):
            return _seconds(detail.get("retryDelay"))
    return None


def _quota_failure(details: object) -> bool:
    """True when a 429 says a daily or free-tier quota is used up (waiting a minute won't do)."""
    for detail in details if isinstance(details, list) else ():
        if isinstance(detail, Mapping) and str(detail.get("@type", "")).endswith("QuotaFailure"):
            ids = " ".join(
                str(v.get("quotaId", ""))
                for v in detail.get("violations") or []
                if isinstance(v, Mapping)
            )
            return "PerDay" in ids
    return False


def error_from_object(
    error: Mapping[str, Any],
    *,
    provider: str,
    secrets: Iterable[Secret] = (),
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> ProviderError:
    """The typed error for a Google error object (the value of ``"error"``)."""
    code = error.get("code")
    http = status if status is not None else code if isinstance(code, int) else None
    canonical = str(error.get("status") or "") or None
    message = redact(
        str(error.get("message") or "Google reported an error"), secrets, patterns=KEY_PATTERNS
    )
    details = error.get("details")
    cls = _BY_STATUS.get(canonical or "")
    if cls is RateLimitError and _quota_failure(details):
        cls = QuotaExceededError
    if http is not None:
        built = error_for_status(
            http,
            message[:_MAX_MESSAGE],
            provider=provider,
            headers=headers,
            code=canonical,
            cls=cls,
        )
    else:
        built = (cls or ServerError)(message[:_MAX_MESSAGE], provider=provider, code=canonical)
    delay = _retry_delay(details)
    if delay is not None:
        built.retry_after = delay
    built.hint = _HINTS.get(canonical or "") or (
        "Google failed on its side; try again" if http and http >= 500 else None
    )
    return built


def error_parser(
    provider: str, secrets: Iterable[Secret]
) -> Callable[[int, bytes, Mapping[str, str]], ProviderError]:
    """The ``parse_error`` for :meth:`imagestream.HttpClient.send`."""
    kept = tuple(secrets)

    def parse(status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        try:
            data: Any = json.loads(body) if body else None
        except ValueError:
            data = None
        if isinstance(data, list) and data and isinstance(data[0], Mapping):
            data = data[0]  # some gateways wrap the error in a list
        if isinstance(data, Mapping) and isinstance(data.get("error"), Mapping):
            return error_from_object(
                data["error"], provider=provider, secrets=kept, status=status, headers=headers
            )
        # Not Google's JSON (a proxy's page): quote a little of it.
        text = " ".join(body.decode("utf-8", "replace").split())[:200] or f"HTTP {status}"
        error = error_for_status(
            status, redact(text, kept, patterns=KEY_PATTERNS), provider=provider, headers=headers
        )
        return error

    return parse
