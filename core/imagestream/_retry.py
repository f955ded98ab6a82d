"""When and how long to wait before retrying a request."""

from __future__ import annotations

import email.utils
import math
import random
import re
import time
from collections.abc import Mapping
from datetime import UTC

import attrs

from . import _defaults

__all__ = ["RetryPolicy", "clamp_retry_after", "parse_retry_after"]

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})

# RFC 9110's delay-seconds is 1*DIGIT; a fraction is accepted too (some
# servers send one). A sign, an exponent, "nan" or "inf" make it junk, not a
# wait: "-10" must not mean "retry at once, without backoff".
_DELAY = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)


def clamp_retry_after(value: object) -> float | None:
    """``value`` as a wait the caller can sleep for: ``None``, or finite in [0, cap].

    The cap is :data:`imagestream._defaults.RETRY_AFTER_CAP` (an hour). Not a
    number, NaN and negative values are ``None`` (the normal backoff applies);
    longer waits, infinity included, become the cap.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        seconds = float(value)
    except OverflowError:  # an int too large for a float: a very long wait
        return _defaults.RETRY_AFTER_CAP
    if math.isnan(seconds) or seconds < 0:
        return None
    return min(seconds, _defaults.RETRY_AFTER_CAP)


def _delay(text: str, scale: float = 1.0) -> float | None:
    text = text.strip()
    if not _DELAY.fullmatch(text):
        return None
    # float() of a 400-digit number is inf, never an error: capped below.
    return clamp_retry_after(float(text) / scale)


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked us to wait, from ``retry-after-ms`` or ``Retry-After``.

    ``Retry-After`` may be seconds or an HTTP date. The result is ``None`` (use
    the normal backoff) or a finite number of seconds from 0 to
    :data:`~imagestream._defaults.RETRY_AFTER_CAP`: anything unparsable,
    negative, NaN or infinite is ignored, a longer wait is capped, and a date
    in the past means 0.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    ms = lowered.get("retry-after-ms")
    if isinstance(ms, str) and (seconds := _delay(ms, 1000.0)) is not None:
        return seconds
    value = lowered.get("retry-after")
    if not isinstance(value, str):
        return None
    if (seconds := _delay(value)) is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value)
        if when.tzinfo is None:  # "-0000": UTC, said without committing to it
            when = when.replace(tzinfo=UTC)
        remaining = when.timestamp() - time.time()
    except (TypeError, ValueError, IndexError, OverflowError, OSError):
        return None
    return clamp_retry_after(max(0.0, remaining))


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
        # Whoever built the error, a wait that is NaN, negative or endless is
        # not honoured as it stands (see clamp_retry_after).
        retry_after = clamp_retry_after(retry_after)
        if retry_after is not None:
            return retry_after if retry_after <= self.retry_after_max else None
        ceiling = min(self.maximum, self.initial * 2 ** (attempt - 1))
        # Full jitter spreads clients that failed together.
        return random.uniform(ceiling / 2, ceiling)


NO_RETRY = RetryPolicy(max_retries=0)
