"""Tests for ``imagestream._retry``: ``Retry-After`` parsing and the backoff policy."""

from __future__ import annotations

import email.utils
import math
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagestream import _defaults
from imagestream._retry import NO_RETRY, RETRYABLE_STATUS, RetryPolicy, parse_retry_after


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"Retry-After-Ms": "250.5"}, 0.2505),
        ({"RETRY-AFTER-MS": "0"}, 0.0),
        ({"retry-after": "3"}, 3.0),
        ({"Retry-After": "0"}, 0.0),
        ({"Retry-After": "2.5"}, 2.5),
        ({"RETRY-AFTER": " 7 "}, 7.0),
    ],
)
def test_parse_retry_after_numbers(headers: dict[str, str], expected: float) -> None:
    result = parse_retry_after(headers)
    assert result is not None
    assert result == pytest.approx(expected)


def test_milliseconds_win_over_seconds() -> None:
    assert parse_retry_after({"Retry-After": "30", "retry-after-ms": "100"}) == pytest.approx(0.1)


def test_junk_milliseconds_fall_back_to_seconds() -> None:
    assert parse_retry_after({"retry-after-ms": "soon", "Retry-After": "4"}) == 4.0
    assert parse_retry_after({"retry-after-ms": "soon"}) is None


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"content-type": "application/json"},
        {"Retry-After": "soon"},
        {"Retry-After": ""},
        {"Retry-After": "Tomorrow at noon"},
        {"Retry-After": "1 hour"},
        {"Retry-After": "-4"},
        {"retry-after-ms": "-100"},
    ],
)
def test_parse_retry_after_junk_is_none(headers: dict[str, str]) -> None:
    assert parse_retry_after(headers) is None


def test_parse_retry_after_http_date_in_future() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    result = parse_retry_after({"Retry-After": when})
    assert result is not None
    # The date has one-second resolution and the clock moves: allow generous slack.
    assert 25 <= result <= 31


def test_parse_retry_after_http_date_in_past_is_zero() -> None:
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0


def test_parse_retry_after_accepts_any_mapping() -> None:
    """Works with case-insensitive multidicts too (what aiohttp gives)."""
    from multidict import CIMultiDict

    assert parse_retry_after(CIMultiDict({"Retry-After": "5"})) == 5.0


def test_retryable_statuses() -> None:
    assert {408, 409, 429, 500, 502, 503, 504} == RETRYABLE_STATUS
    for status in (400, 401, 403, 404, 422):
        assert status not in RETRYABLE_STATUS


def test_default_policy_values() -> None:
    policy = RetryPolicy()
    assert policy.max_retries == _defaults.MAX_RETRIES
    assert policy.initial == _defaults.BACKOFF_INITIAL
    assert policy.maximum == _defaults.BACKOFF_MAX
    assert policy.retry_after_max == _defaults.RETRY_AFTER_MAX
    assert policy.statuses == RETRYABLE_STATUS


def test_no_retry_policy_gives_up_at_once() -> None:
    assert NO_RETRY.delay(1) is None
    assert NO_RETRY.delay(1, retry_after=0.0) is None


def test_delay_gives_up_after_max_retries() -> None:
    policy = RetryPolicy(max_retries=3, initial=0.1, maximum=1.0)
    for attempt in (1, 2, 3):
        assert policy.delay(attempt) is not None
    assert policy.delay(4) is None
    assert policy.delay(4, retry_after=0.0) is None
    assert policy.delay(100) is None


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 5, 6])
def test_delay_is_full_jitter_under_exponential_ceiling(attempt: int) -> None:
    policy = RetryPolicy(max_retries=10, initial=0.5, maximum=4.0)
    ceiling = min(4.0, 0.5 * 2 ** (attempt - 1))
    samples = [policy.delay(attempt) for _ in range(300)]
    assert all(s is not None and ceiling / 2 <= s <= ceiling for s in samples)
    # Jitter really spreads the values over the range (a constant would fail this).
    values = [s for s in samples if s is not None]
    assert max(values) - min(values) > ceiling / 4


def test_delay_never_exceeds_maximum() -> None:
    policy = RetryPolicy(max_retries=50, initial=1.0, maximum=3.0)
    for attempt in range(1, 51):
        delay = policy.delay(attempt)
        assert delay is not None
        assert delay <= 3.0


def test_delay_grows_with_attempts() -> None:
    policy = RetryPolicy(max_retries=5, initial=1.0, maximum=100.0)
    first = [policy.delay(1) for _ in range(50)]
    fourth = [policy.delay(4) for _ in range(50)]
    assert max(d for d in first if d is not None) <= 1.0
    assert min(d for d in fourth if d is not None) >= 4.0


def test_retry_after_is_honoured_exactly() -> None:
    policy = RetryPolicy(max_retries=2, initial=5.0, maximum=10.0, retry_after_max=60.0)
    assert policy.delay(1, retry_after=0.0) == 0.0
    assert policy.delay(1, retry_after=12.5) == 12.5
    assert policy.delay(2, retry_after=60.0) == 60.0


def test_over_long_retry_after_gives_up() -> None:
    policy = RetryPolicy(max_retries=5, retry_after_max=10.0)
    assert policy.delay(1, retry_after=10.001) is None
    assert policy.delay(1, retry_after=3600.0) is None
    assert policy.delay(1, retry_after=math.inf) is None


@settings(deadline=None)  # a noisy machine must not turn slowness into failures
@given(
    attempt=st.integers(min_value=1, max_value=40),
    initial=st.floats(min_value=0.001, max_value=5.0),
    maximum=st.floats(min_value=0.001, max_value=30.0),
)
def test_delay_bounds_property(attempt: int, initial: float, maximum: float) -> None:
    policy = RetryPolicy(max_retries=40, initial=initial, maximum=maximum)
    delay = policy.delay(attempt)
    assert delay is not None
    ceiling = min(maximum, initial * 2 ** (attempt - 1))
    assert ceiling / 2 <= delay <= ceiling
