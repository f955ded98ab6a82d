"""Reliability holes: absurd ``Retry-After`` values, and URLs quoted with their credentials."""

from __future__ import annotations

import asyncio
import base64
import email.utils
import logging
import math
import socket
import time
from collections.abc import Awaitable, Callable, Mapping

import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from imagestream import _defaults
from imagestream._http import HttpClient
from imagestream._retry import RetryPolicy, clamp_retry_after, parse_retry_after
from imagestream._status import error_for_status
from imagestream.errors import APIConnectionError, ConfigurationError, ProviderError, RateLimitError

Serve = Callable[[Callable[[web.Request], Awaitable[web.StreamResponse]]], Awaitable[str]]

CAP = _defaults.RETRY_AFTER_CAP
FAST = RetryPolicy(max_retries=2, initial=0.01, maximum=0.02)


def _closed_port() -> int:
    """A port that was just bound and released, so nothing listens there."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


def _in_range(value: float | None) -> bool:
    return value is None or (
        isinstance(value, float) and math.isfinite(value) and 0 <= value <= CAP
    )


# --- Retry-After --------------------------------------------------------------------------


def test_the_cap_is_documented_and_sane() -> None:
    assert _defaults.RETRY_AFTER_MAX <= CAP < math.inf


@pytest.mark.parametrize(
    "value",
    ["-10", "-0.5", "-0", "nan", "NaN", "inf", "-inf", "Infinity", "1e400", "1e3", "+5", "0x10",
     "1_000", "\u0661\u0662", "", "   ", "soon"],
)  # fmt: skip
@pytest.mark.parametrize("header", ["Retry-After", "retry-after-ms"])
def test_junk_negative_and_non_finite_waits_are_ignored(header: str, value: str) -> None:
    assert parse_retry_after({header: value}) is None


@pytest.mark.parametrize("value", ["9" * 40, "1" + "0" * 400, "4000000", "99999999.5"])
@pytest.mark.parametrize("header", ["Retry-After", "retry-after-ms"])
def test_huge_waits_are_capped(header: str, value: str) -> None:
    assert parse_retry_after({header: value}) == CAP


def test_junk_milliseconds_fall_back_to_a_sane_retry_after() -> None:
    assert parse_retry_after({"retry-after-ms": "-5", "Retry-After": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "nan", "Retry-After": "-2"}) is None


def test_http_dates() -> None:
    assert parse_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert parse_retry_after({"Retry-After": "Mon, 01 Jan 0001 00:00:00 GMT"}) == 0.0
    assert parse_retry_after({"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"}) == CAP
    soon = parse_retry_after({"Retry-After": email.utils.formatdate(time.time() + 30, usegmt=True)})
    assert soon is not None and 25 <= soon <= 31
    # "-0000" (UTC, unqualified) gives a naive datetime: read as UTC, not local time.
    unqualified = email.utils.formatdate(time.time() + 30).rsplit(" ", 1)[0] + " -0000"
    later = parse_retry_after({"Retry-After": unqualified})
    assert later is not None and later <= 31


@settings(deadline=None, max_examples=300)
@given(
    header=st.sampled_from(["Retry-After", "retry-after-ms", "RETRY-AFTER"]),
    value=st.one_of(
        st.text(max_size=60),
        st.from_regex(r"\A\s*[-+]?[0-9]{0,500}(\.[0-9]{0,20})?([eE][-+]?[0-9]{1,4})?\s*\Z"),
        st.floats().map(repr),
        st.integers().map(str),
        st.datetimes().map(lambda d: email.utils.format_datetime(d) + " GMT"),
        st.builds(
            "{}, {} {} {} {}:{}:{} {}".format,
            st.sampled_from(["Mon", "Fri", "x"]),
            st.integers(-5, 99),
            st.sampled_from(["Jan", "Dec", "Foo"]),
            st.integers(-1, 100_000),
            st.integers(-1, 99),
            st.integers(-1, 99),
            st.integers(-1, 99),
            st.sampled_from(["GMT", "-0000", "+9999", "-2400", "UTC", ""]),
        ),
    ),
)
def test_any_header_gives_none_or_a_finite_wait_within_the_cap(header: str, value: str) -> None:
    assert _in_range(parse_retry_after({header: value}))


@settings(deadline=None)
@given(
    value=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(10**400), max_value=10**400),
        st.none(),
        st.booleans(),
        st.text(max_size=5),
    )
)
def test_clamp_always_gives_a_wait_one_can_sleep_for(value: object) -> None:
    assert _in_range(clamp_retry_after(value))


@pytest.mark.parametrize("bad", [math.nan, -10.0, -math.inf])
def test_policy_backs_off_instead_of_retrying_at_once(bad: float) -> None:
    policy = RetryPolicy(max_retries=3, initial=0.5, maximum=4.0)
    delay = policy.delay(1, bad)
    assert delay is not None and 0.25 <= delay <= 0.5


@pytest.mark.parametrize("huge", [math.inf, 1e300, 10**400])
def test_policy_gives_up_on_endless_waits(huge: float) -> None:
    assert RetryPolicy(max_retries=3).delay(1, huge) is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "-10"}, None),
        ({"Retry-After": "nan"}, None),
        ({"Retry-After": "inf"}, None),
        ({"Retry-After": "1e400"}, None),
        ({"Retry-After": "9" * 40}, CAP),
        ({"Retry-After": "5"}, 5.0),
    ],
)
def test_errors_carry_a_sane_retry_after(
    headers: Mapping[str, str], expected: float | None
) -> None:
    error = error_for_status(429, "slow down", provider="p", headers=headers)
    assert isinstance(error, RateLimitError)
    assert error.retry_after == expected


async def test_client_backs_off_on_negative_retry_after(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    """``Retry-After: -10`` is not "retry now": the backoff applies between the attempts."""
    seen: list[float] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append(time.monotonic())
        if len(seen) < 3:
            return web.Response(status=503, text="busy", headers={"Retry-After": "-10"})
        return web.Response(text="ok")

    url = await serve(handler)
    http = HttpClient(retry=RetryPolicy(max_retries=2, initial=0.2, maximum=0.2))
    try:
        with caplog.at_level(logging.INFO, logger="imagestream.http"):
            response = await http.send("GET", url, provider="p")
        response.release()
    finally:
        await http.close()
    assert len(seen) == 3
    assert seen[1] - seen[0] >= 0.09 and seen[2] - seen[1] >= 0.09
    assert "retrying in 0.00s" not in caplog.text


async def test_client_clamps_a_parsers_endless_retry_after(serve: Serve) -> None:
    """A provider's own parser (a body's ``retryDelay``) cannot hand callers ``inf``."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=429, text="later")

    def parse(status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        error = error_for_status(status, body.decode(), provider="p", headers=headers)
        error.retry_after = math.inf
        return error

    url = await serve(handler)
    http = HttpClient(retry=FAST)
    try:
        with pytest.raises(RateLimitError) as caught:
            await asyncio.wait_for(http.send("GET", url, provider="p", parse_error=parse), 10)
    finally:
        await http.close()
    assert caught.value.retry_after == CAP


# --- URL redaction ------------------------------------------------------------------------

SECRET_URL = "http://user:pa55@127.0.0.1:{port}/x?token=SECRET"


def _shown(error: BaseException) -> str:
    """Everything a user may be shown of ``error``."""
    return " | ".join([str(error), repr(error), str(getattr(error, "hint", None))])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://user:pa55@127.0.0.1:8/x?token=SECRET", "http://[redacted]@127.0.0.1:8/x?token=[redacted]"),
        ("see https://me@host/p", "see https://[redacted]@host/p"),
        ("proxy http://u:p@ss@proxy:3128 failed", "proxy http://[redacted]@proxy:3128 failed"),
        ("svn+ssh://me:pw@host/x", "svn+ssh://[redacted]@host/x"),
        ("https://h/?a=1&api_key=K&key=K2&access_token=T&sig=S&signature=S2&password=P&secret=Z&b=2",
         "https://h/?a=1&api_key=[redacted]&key=[redacted]&access_token=[redacted]&sig=[redacted]"
         "&signature=[redacted]&password=[redacted]&secret=[redacted]&b=2"),
        ("https://b.example/c?sv=2020&X-Amz-Signature=abc&se=1", "https://b.example/c?sv=2020&X-Amz-Signature=[redacted]&se=1"),
        ("https://h/cb#access_token=T&state=s", "https://h/cb#access_token=[redacted]&state=s"),
        ("Endpoint('http://h/v1?key=K1')", "Endpoint('http://h/v1?key=[redacted]')"),
        ("https://h/v1?api-version=2024-01-01", "https://h/v1?api-version=2024-01-01"),
        ("http://[::1]:8/x and key=value prose", "http://[::1]:8/x and key=value prose"),
    ],
)  # fmt: skip
def test_redact_masks_url_credentials_and_keeps_the_address(text: str, expected: str) -> None:
    from imagestream.provider import redact

    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    ["a." * 40_000 + "://", "?" + "a" * 80_000 + "=", "&" * 80_000 + "=x", "x://" * 20_000,
     "http://" + "@" * 80_000, ("?" + "k" * 100) * 800 + "="],
)  # fmt: skip
def test_redact_takes_linear_time_on_hostile_text(text: str) -> None:
    from imagestream.provider import redact

    start = time.perf_counter()
    redact(text)
    assert time.perf_counter() - start < 1.0


def test_url_secrets() -> None:
    from imagestream._redact import url_secrets

    url = "http://user:pa55@h:1/x?token=SECRET&api-version=2024-01-01&alt=sse#access_token=TT"
    basic = base64.b64encode(b"user:pa55").decode()  # what aiohttp sends for them
    assert url_secrets(url) == ("pa55", basic, "SECRET", "TT")
    assert url_secrets(None) == () and url_secrets("http://[::1") == ()


async def test_connection_error_shows_host_and_port_not_credentials(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = _closed_port()
    http = HttpClient(retry=FAST)
    try:
        with caplog.at_level(logging.DEBUG), pytest.raises(APIConnectionError) as caught:
            await http.send(
                "GET",
                SECRET_URL.format(port=port),
                provider="p",
                headers={"x-api-key": "k" * 8},
            )
    finally:
        await http.close()
    shown = _shown(caught.value) + caplog.text
    assert "pa55" not in shown and "SECRET" not in shown
    assert f"127.0.0.1:{port}" in str(caught.value)


async def test_credentials_in_the_url_and_an_authorization_header_are_refused() -> None:
    """aiohttp's bare ValueError becomes a ConfigurationError that shows no credential."""
    port = _closed_port()
    http = HttpClient(retry=FAST)
    try:
        with pytest.raises(ConfigurationError) as caught:
            await http.send(
                "GET",
                SECRET_URL.format(port=port),
                provider="p",
                headers={"Authorization": "Bearer abcdefgh"},
            )
    finally:
        await http.close()
    shown = _shown(caught.value)
    assert "pa55" not in shown and "SECRET" not in shown and "abcdefgh" not in shown
    assert f"127.0.0.1:{port}" in str(caught.value)


async def test_an_invalid_url_is_not_quoted_whole() -> None:
    http = HttpClient(retry=FAST)
    try:
        with pytest.raises(APIConnectionError) as caught:
            await http.send("GET", "http://user:pa55@:80/x?token=SECRET", provider="p")
    finally:
        await http.close()
    shown = _shown(caught.value)
    assert "pa55" not in shown and "SECRET" not in shown


async def test_an_error_body_echoing_the_urls_secrets_is_masked(serve: Serve) -> None:
    async def echo(request: web.Request) -> web.StreamResponse:
        return web.Response(
            status=400, text=f"bad request to {request.url} (token {request.query['token']})"
        )

    url = await serve(echo)
    http = HttpClient(retry=FAST)
    try:
        with pytest.raises(ProviderError) as caught:
            await http.send("GET", url + "/x?token=SECRET-VALUE-123", provider="p")
    finally:
        await http.close()
    assert "SECRET-VALUE-123" not in _shown(caught.value)
    assert "bad request to" in str(caught.value)


def test_a_request_never_shows_the_credentials_of_its_base_url() -> None:
    from imagestream import ConfigurationError, ImageRequest

    url = "http://user:pa55@127.0.0.1:9/x?token=SECRET"
    shown = repr(ImageRequest(prompt="x", base_url=url))
    assert "pa55" not in shown and "SECRET" not in shown and "127.0.0.1:9" in shown
    for bad in (
        "http://user:pa55@[::1:99/x?token=SECRET",
        "http://user:pa55@h:99999/?token=SECRET",
    ):
        with pytest.raises(ConfigurationError) as caught:
            ImageRequest(prompt="x", base_url=bad)
        assert "pa55" not in str(caught.value) and "SECRET" not in str(caught.value)


@pytest.mark.parametrize("value", [math.inf, 1e400, 10**40, -10.0, math.nan])
def test_retry_after_is_bounded_whoever_sets_it(value: float) -> None:
    """A provider's parser setting retry_after directly (a body's retryDelay) is clamped too."""
    from imagestream.errors import RateLimitError

    error = RateLimitError("slow down", retry_after=value)
    assert error.retry_after is None or 0 <= error.retry_after <= 3600
    error.retry_after = value
    assert error.retry_after is None or math.isfinite(error.retry_after)
