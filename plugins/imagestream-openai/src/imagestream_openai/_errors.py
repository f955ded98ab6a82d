"""OpenAI error bodies and in-stream error events, mapped to imagestream's typed errors.

The HTTP status alone is not enough: OpenAI answers 429 both for "slow down"
and for "out of credit", and 400 both for a bad parameter and for a safety
refusal. The error's ``type`` and ``code`` decide, the status only breaks ties.
The same mapping serves errors that arrive inside a stream (``error`` events,
flat or with the fields nested under ``error``, and ``response.failed``).

API keys never reach a message: the kit's :func:`~imagestream.provider.redact`
masks the request's key and anything shaped like an OpenAI key before an
error is built.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from imagestream.errors import (
    AuthenticationError,
    ContentPolicyError,
    InvalidRequestError,
    ProviderError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
)
from imagestream.provider import ErrorParser, Secret, error_for_status, redact

from ._json import loads

__all__ = ["KEY_PATTERNS", "error_from_event", "http_error_parser"]

_PROVIDER = "openai"
_MAX_MESSAGE = 500

KEY_PATTERNS = (re.compile(r"\bsk-[A-Za-z0-9_*\-]{4,}"),)
"""OpenAI's key shape for :func:`~imagestream.provider.redact`: keys start ``sk-``
(``sk-proj-...``, ``sk-svcacct-...``); OpenAI's own 401 message quotes a
partly masked key, and a gateway might quote a whole one."""

_QUOTA = frozenset(
    {"insufficient_quota", "billing_hard_limit_reached", "billing_not_active", "quota_exceeded"}
)
_RATE = frozenset(
    {"rate_limit_exceeded", "rate_limit_error", "requests", "tokens", "concurrency_limit_exceeded"}
)
_POLICY = frozenset(
    {
        "moderation_blocked",
        "content_policy_violation",
        "image_content_policy_violation",
        "content_filter",
        "safety_violation",
    }
)
_AUTH = frozenset(
    {
        "invalid_api_key",
        "authentication_error",
        "permission_error",
        "unauthorized",
        "invalid_organization",
        "invalid_project",
    }
)
_SERVER = frozenset(
    {
        "server_error",
        "internal_error",
        "api_error",
        "service_unavailable",
        "engine_overloaded",
        "overloaded",
    }
)
_INVALID = frozenset(
    {
        "invalid_request_error",
        "unknown_parameter",
        "invalid_value",
        "invalid_prompt",
        "image_generation_user_error",
        "invalid_image",
        "invalid_image_format",
        "invalid_base64_image",
        "invalid_image_url",
        "image_too_large",
        "image_too_small",
        "image_parse_error",
        "unsupported_image_media_type",
        "empty_image_file",
        "image_file_too_large",
        "image_file_not_found",
        "model_not_found",
    }
)


def _classify(error_type: str | None, code: str | None) -> type[ProviderError] | None:
    """The error class the type/code pair names, or ``None`` to decide by status."""
    names = {str(name).lower() for name in (error_type, code) if name}
    # Order matters: a safety refusal is sent with type image_generation_user_error,
    # which alone would read as an invalid request.
    for group, cls in (
        (_POLICY, ContentPolicyError),
        (_QUOTA, QuotaExceededError),
        (_RATE, RateLimitError),
        (_AUTH, AuthenticationError),
        (_SERVER, ServerError),
        (_INVALID, InvalidRequestError),
    ):
        if names & group:
            return cls
    if any("policy" in name or "moderation" in name or "safety" in name for name in names):
        return ContentPolicyError
    return None


def _fields(error: Any) -> tuple[str, str | None, str | None, str | None]:
    """(message, type, code, param) of an OpenAI error object (or a bare string)."""
    if isinstance(error, str):
        return error, None, None, None
    if not isinstance(error, Mapping):
        return "", None, None, None

    def text(name: str) -> str | None:
        value = error.get(name)
        return str(value) if value is not None and value != "" else None

    return text("message") or "", text("type"), text("code"), text("param")


def _message(message: str, param: str | None, key: Secret | None, fallback: str) -> str:
    message = message.strip() or fallback
    if param and param not in message:
        message = f"{message} (param: {param})"
    return redact(message, (key,), patterns=KEY_PATTERNS)[:_MAX_MESSAGE]


def http_error_parser(key: Secret | None) -> ErrorParser:
    """An ``ErrorParser`` for :meth:`imagestream.HttpClient.send` that knows OpenAI's bodies."""

    def parse(status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        error: Any = None
        try:
            data = loads(body) if body else None
        except ValueError:
            data = None
        if isinstance(data, Mapping):
            error = data.get("error", data)
        if error is None:
            # Not JSON (a proxy's HTML page, say): quote a little of it.
            error = body.decode("utf-8", "replace").strip()[:200]
        message, error_type, code, param = _fields(error)
        cls = _classify(error_type, code)
        if cls is InvalidRequestError and status in (401, 403):
            # A missing or malformed key comes back 401 with the generic
            # type invalid_request_error and no code: the status says what it is.
            cls = AuthenticationError
        return error_for_status(
            status,
            _message(message, param, key, f"HTTP {status} with no error message"),
            provider=_PROVIDER,
            headers=headers,
            code=code,
            error_type=error_type,
            cls=cls,
        )

    return parse


def error_from_event(
    payload: Mapping[str, Any],
    *,
    key: Secret | None = None,
    headers: Mapping[str, str] | None = None,
) -> ProviderError:
    """The typed error for an in-stream failure event.

    Accepts the three shapes seen on the wire: ``{"type": "error", "code",
    "message", "param"}`` (the SDK's shape), ``{"type": "error", "error":
    {...}}`` (recorded traffic) or ``{"error": {...}}`` with no type (an
    Images API stream), and ``{"type": "response.failed", "response":
    {"error": {...}}}``.
    """
    event_type = payload.get("type")
    if event_type in ("response.failed", "response.incomplete"):
        response = payload.get("response")
        response = response if isinstance(response, Mapping) else {}
        error: Any = response.get("error")
        if error is None and event_type == "response.incomplete":
            details = response.get("incomplete_details")
            reason = details.get("reason") if isinstance(details, Mapping) else None
            error = {
                "message": f"the response is incomplete ({reason or 'no reason given'})",
                "code": reason,
            }
        fallback = "the response failed"
    else:
        error = (
            payload.get("error") if isinstance(payload.get("error"), (Mapping, str)) else payload
        )
        fallback = "the stream reported an error"
    message, error_type, code, param = _fields(error)
    if error is payload and error_type == "error":
        error_type = None  # the flat shape: "error" is the event's type, not the error's
    cls = _classify(error_type, code) or ProviderError
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    return cls(
        _message(message, param, key, fallback),
        provider=_PROVIDER,
        request_id=lowered.get("x-request-id"),
        code=code,
        error_type=error_type,
    )
