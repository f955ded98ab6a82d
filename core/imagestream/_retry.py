"""When and how long to wait before retrying a request."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping

import attrs

from . import _defaults

__all__ = ["RetryPolicy", "parse_retry_after"]

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked us to wait, from ``retry-after-ms`` or ``Retry-After``.

    ``Retry-After`` may be seconds or an HTTP date; anything unparsable is ignored.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    ms = lowered.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@attrs.frozen
class RetryPolicy:
    """Retries with exponential backoff and full jitter, honouring ``Retry-After``.

    Attributes:
        max_retries: Extra attempts after the first.
        initial: First delay in seconds.
        maximum: Cap of a computed delay.
        retry_after_max: A server-requested wait longer than this is not honoured
            (the error is raised instead of sleeping for minutes).
        statuses: HTTP statuses worth retrying.
    """

    max_retries: int = _defaults.MAX_RETRIES
    initial: float = _defaults.BACKOFF_INITIAL
    maximum: float = _defaults.BACKOFF_MAX
    retry_after_max: float = _defaults.RETRY_AFTER_MAX
    statuses: frozenset[int] = RETRYABLE_STATUS

    def delay(self, attempt: int, retry_after: float | None = None) -> float | None:
        """Seconds to wait before retry number ``attempt`` (1-based), or ``None`` to give up."""
        if attempt > self.max_retries:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.retry_after_max else None
        ceiling = min(self.maximum, self.initial * 2 ** (attempt - 1))
        # Full jitter spreads clients that failed together.
        return random.uniform(ceiling / 2, ceiling)


NO_RETRY = RetryPolicy(max_retries=0)
