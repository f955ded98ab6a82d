"""Defaults in one place: timeouts, retries and size limits."""

from __future__ import annotations

import os

CONNECT_TIMEOUT = 10.0
"""Seconds to open a connection (TCP and TLS)."""

STALL_TIMEOUT = 300.0
"""Seconds the server may stay silent between two chunks (or before the first).

Generous because a high-quality image can take well over a minute before its
first byte; there is deliberately no total timeout, which would kill long
generations that are still making progress.
"""

MAX_RETRIES = 2
"""Extra attempts after a retryable failure (408, 409, 429, 5xx, connection errors)."""

BACKOFF_INITIAL = 0.5
"""First retry delay in seconds; doubles each attempt, with jitter."""

BACKOFF_MAX = 8.0
"""Upper bound of a computed retry delay."""

RETRY_AFTER_MAX = 60.0
"""A server's ``Retry-After`` longer than this is not waited for: the error is raised."""

RETRY_AFTER_CAP = 3600.0
"""Largest ``retry_after`` an error ever carries, in seconds.

A server asking for a longer wait (or for an absurd one: ``1e400``, a
40-digit number, a date in the year 9999) is reported as this, so that a
caller's ``sleep(error.retry_after)`` always returns.
"""

MAX_ERROR_BODY = 64 * 1024
"""Bytes of an error response read to build the error message."""

MAX_RESPONSE_BYTES = 256 * 1024 * 1024
"""Largest non-streamed response body read into memory (several 4K images in base64)."""

MAX_IMAGE_PIXELS = 8192 * 8192
"""Pixel cap of the validation middleware: larger images are refused (decompression bombs)."""

MAX_PROMPT_CHARS = 32_000
"""Prompt length cap of the validation middleware."""

MAX_CONNECTIONS = 1000
"""Connections one HTTP client keeps open at once, across hosts (aiohttp's own default is 100).

High enough that 500 concurrent streams are never queued behind each other;
set ``IMAGESTREAM_MAX_CONNECTIONS`` (``0``: no limit) to change it.
"""


def max_connections() -> int:
    """:data:`MAX_CONNECTIONS`, or ``IMAGESTREAM_MAX_CONNECTIONS`` when that is a whole number."""
    value = os.environ.get("IMAGESTREAM_MAX_CONNECTIONS", "").strip()
    return int(value) if value.isdigit() else MAX_CONNECTIONS
