"""Errors as the server shows them: a status, and ``{"error": {"type", "message", "hint"}}``.

Messages are imagestream's typed errors, which never hold a provider's key;
the server adds nothing from its own configuration to them.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from imagestream import (
    AuthenticationError,
    ConfigurationError,
    ImagestreamError,
    MissingAPIKeyError,
    ProviderError,
    RateLimitError,
    UnknownDecoderError,
    UnknownProviderError,
    ValidationError,
)

__all__ = ["error_body", "error_response", "status_of"]


def status_of(error: BaseException) -> int:
    """The HTTP status that describes ``error`` to a client of this server."""
    if isinstance(error, MissingAPIKeyError):
        return 503  # the server is not set up for that provider: not the client's fault
    if isinstance(error, RateLimitError) and error.provider is None:
        return 429  # this server's own limits
    if isinstance(error, AuthenticationError) and error.provider is None:
        return 401  # this server's token
    if isinstance(error, UnknownProviderError | UnknownDecoderError):
        return 404
    if isinstance(error, ConfigurationError | ValidationError):
        return 400
    if isinstance(error, ProviderError):
        return 502  # the upstream provider failed
    return 500


def error_body(error: BaseException) -> dict[str, Any]:
    """``{"error": {"type", "message", "hint"}}`` for any exception (internals stay private)."""
    if isinstance(error, ImagestreamError):
        return {
            "error": {"type": type(error).__name__, "message": error.message, "hint": error.hint}
        }
    return {"error": {"type": "InternalError", "message": "the server failed", "hint": None}}


def error_response(error: BaseException, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON error response; 429s carry ``Retry-After``."""
    extra = dict(headers or {})
    retry_after = getattr(error, "retry_after", None)
    if isinstance(error, RateLimitError) and retry_after is not None:
        extra["Retry-After"] = str(max(1, round(retry_after)))
    return web.Response(
        status=status_of(error),
        text=json.dumps(error_body(error)),
        content_type="application/json",
        headers=extra,
    )
