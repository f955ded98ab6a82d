"""Errors as OpenAI clients expect them: ``{"error": {"message", "type", "param", "code"}}``.

Before a stream starts an error is an HTTP status with that body; once it has
started it travels in-band (the gateway's handlers write it as an event).
Messages come from imagestream's typed errors, which never hold a provider's
key, or from the gateway's own checks; anything else is "the server failed".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from imagestream import (
    AuthenticationError,
    ContentPolicyError,
    ImagestreamError,
    InvalidRequestError,
    MissingAPIKeyError,
    ProviderError,
    QuotaExceededError,
    RateLimitError,
    UnknownProviderError,
)

from ._errors import status_of

__all__ = [
    "GATEWAY_PREFIX",
    "GatewayError",
    "gateway_error",
    "is_gateway_path",
    "json_object",
    "openai_error_response",
    "openai_http_error",
]

GATEWAY_PREFIX = "/v1/"
"""Every route under this prefix answers errors in OpenAI's shape."""


def is_gateway_path(path: str) -> bool:
    """True for the gateway's routes (``/v1/...``)."""
    return path.startswith(GATEWAY_PREFIX)


class GatewayError(Exception):
    """An error as the gateway shows it to an OpenAI client.

    Args:
        message: What went wrong, for a person.
        status: The HTTP status (when the stream has not started).
        type: OpenAI's error type (``invalid_request_error``, ``server_error``, ...).
        param: The request field at fault, if one is.
        code: A machine-readable code (``model_not_found``, ``unknown_parameter``, ...).
        retry_after: Seconds the client should wait (429s).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.param = param
        self.code = code
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        """The ``error`` object."""
        return {"message": self.message, "type": self.type, "param": self.param, "code": self.code}


def _message(error: ImagestreamError) -> str:
    return f"{error.message} (hint: {error.hint})" if error.hint else error.message


def gateway_error(error: BaseException) -> GatewayError:
    """``error`` as OpenAI would report it: status, type and code chosen by its class.

    Upstream refusals of the request (an invalid request, a safety block) are
    the client's to fix, so they are 400s as OpenAI sends them; upstream rate
    limits and quotas are 429s so clients back off; other upstream failures are
    502s; a provider the server has no key for is a 503.
    """
    if isinstance(error, GatewayError):
        return error
    if not isinstance(error, ImagestreamError):
        return GatewayError("the server failed", status=500, type="server_error")
    message = _message(error)
    upstream_code = getattr(error, "code", None) if isinstance(error, ProviderError) else None
    upstream_code = upstream_code if isinstance(upstream_code, str) else None
    retry_after = getattr(error, "retry_after", None)
    if isinstance(error, MissingAPIKeyError):
        # Not the client's to fix, and which variable holds a key is the server's business.
        return GatewayError(
            f"{error.provider}: this server has no API key for it",
            status=503,
            type="server_error",
            code="provider_not_configured",
        )
    if isinstance(error, UnknownProviderError):
        return GatewayError(message, status=404, param="model", code="model_not_found")
    if isinstance(error, RateLimitError | QuotaExceededError):
        quota = isinstance(error, QuotaExceededError)
        return GatewayError(
            message,
            status=429,
            type="insufficient_quota" if quota else "requests",
            code="insufficient_quota" if quota else "rate_limit_exceeded",
            retry_after=retry_after,
        )
    if isinstance(error, AuthenticationError):
        if error.provider is None:  # this server's own token
            return GatewayError(message, status=401, code="invalid_api_key")
        return GatewayError(message, status=502, type="server_error", code="upstream_auth_failed")
    if isinstance(error, ContentPolicyError):
        return GatewayError(
            message,
            status=400,
            type="image_generation_user_error",
            code=upstream_code or "moderation_blocked",
        )
    if isinstance(error, InvalidRequestError):
        return GatewayError(message, status=400, code=upstream_code)
    status = status_of(error)
    if status == 400:
        return GatewayError(message, status=400)
    if isinstance(error, ProviderError):
        return GatewayError(message, status=502, type="server_error", code="upstream_error")
    return GatewayError(message, status=500, type="server_error")


def openai_error_response(
    error: BaseException, headers: Mapping[str, str] | None = None
) -> web.Response:
    """An HTTP error response in OpenAI's shape (429s carry ``Retry-After``)."""
    found = gateway_error(error)
    extra = dict(headers or {})
    if found.retry_after is not None:
        extra["Retry-After"] = str(max(1, round(found.retry_after)))
    return web.Response(
        status=found.status,
        text=json.dumps({"error": found.body()}),
        content_type="application/json",
        headers=extra,
    )


def openai_http_error(request: web.Request, status: int, reason: str) -> web.Response:
    """aiohttp's own refusals (404, 405, 413) on gateway routes, in OpenAI's shape."""
    if status == 413:
        message, code = "the request body is too large", "request_too_large"
    elif status in (404, 405):
        message, code = f"Invalid URL ({request.method} {request.path})", None
    else:
        message, code = reason, None
    kind = "invalid_request_error" if status < 500 else "server_error"
    return openai_error_response(GatewayError(message, status=status, type=kind, code=code))


async def json_object(request: web.Request) -> Mapping[str, Any]:
    """The request's JSON body, which must be an object (``GatewayError`` otherwise)."""
    try:
        body = await request.json()
    except ValueError:
        raise GatewayError(
            "We could not parse the JSON body of your request.", code="invalid_json"
        ) from None
    if not isinstance(body, Mapping):
        raise GatewayError("The body must be a JSON object.", code="invalid_json")
    return body
