"""HTTP statuses as typed errors: the one table every provider's error parsing starts from.

Kept apart from the HTTP client so that a provider's error module can use it
at import time without loading asyncio or aiohttp.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ._retry import parse_retry_after
from .errors import (
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    ProviderError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
)

__all__ = ["ErrorParser", "error_for_status"]

ErrorParser = Callable[[int, bytes, Mapping[str, str]], ProviderError]
"""Turns an error response (status, body, headers) into a typed error."""

_STATUS_ERRORS: dict[int, type[ProviderError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    402: QuotaExceededError,
    403: AuthenticationError,
    404: InvalidRequestError,
    409: ConflictError,
    413: InvalidRequestError,
    422: InvalidRequestError,
    429: RateLimitError,
}


def error_for_status(
    status: int,
    message: str,
    *,
    provider: str | None = None,
    headers: Mapping[str, str] | None = None,
    request_id_header: str = "x-request-id",
    code: str | None = None,
    error_type: str | None = None,
    cls: type[ProviderError] | None = None,
) -> ProviderError:
    """The typed error for an HTTP status (a provider may choose ``cls`` itself)."""
    if cls is None:
        cls = _STATUS_ERRORS.get(status) or (ServerError if status >= 500 else ProviderError)
    headers = headers or {}
    lowered = {k.lower(): v for k, v in headers.items()}
    return cls(
        message,
        provider=provider,
        status=status,
        request_id=lowered.get(request_id_header.lower()),
        code=code,
        error_type=error_type,
        retry_after=parse_retry_after(headers),
    )
