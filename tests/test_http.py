"""Tests for ``imagestream._http.HttpClient`` against a real local aiohttp server."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import pytest
from aiohttp import web

from imagestream._http import HttpClient, _default_parser, error_for_status
from imagestream._retry import RetryPolicy
from imagestream.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    ConflictError,
    ContentPolicyError,
    InvalidRequestError,
    ProviderError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    StreamInterruptedError,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Serve = Callable[[Handler], Awaitable[str]]

FAST = RetryPolicy(max_retries=2, initial=0.01, maximum=0.02)
TOKEN = "sk-live-DO-NOT-LEAK-9f8e7d6c5b4a"
PROVIDER = "testprov"


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    http = HttpClient(retry=FAST, connect_timeout=5.0, stall_timeout=10.0)
    try:
        yield http
    finally:
        await http.close()


def _closed_port() -> int:
    """A port that was just bound and released, so nothing listens there."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


def _scripted(*responses: Callable[[], web.StreamResponse]) -> tuple[Handler, list[web.Request]]:
    """A handler answering with ``responses`` in turn (the last one repeats)."""
    seen: list[web.Request] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append(request)
        await request.read()
        return responses[min(len(seen), len(responses)) - 1]()

    return handler, seen


def _ok(body: bytes = b"done") -> Callable[[], web.StreamResponse]:
    return lambda: web.Response(body=body)


def _status(
    status: int, body: str = "", headers: Mapping[str, str] | None = None
) -> Callable[[], web.StreamResponse]:
    return lambda: web.Response(status=status, text=body, headers=dict(headers or {}))


# --- success and retries ------------------------------------------------------------------


async def test_success_returns_response_and_body(serve: Serve, client: HttpClient) -> None:
    async def echo(request: web.Request) -> web.StreamResponse:
        payload = await request.json()
        return web.json_response(
            {"got": payload, "method": request.method, "x": request.headers.get("X-Test")}
        )

    url = await serve(echo)
    response = await client.send(
        "POST", url + "/v1/images", provider=PROVIDER, headers={"X-Test": "yes"}, json_body={"a": 1}
    )
    assert response.status == 200
    body = await client.read_body(response, provider=PROVIDER)
    assert json.loads(body) == {"got": {"a": 1}, "method": "POST", "x": "yes"}


async def test_iter_body_yields_everything(serve: Serve, client: HttpClient) -> None:
    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for i in range(5):
            await response.write(bytes([65 + i]) * 1000)
            await asyncio.sleep(0.01)
        await response.write_eof()
        return response

    url = await serve(chunked)
    response = await client.send("GET", url, provider=PROVIDER)
    pieces = [piece async for piece in client.iter_body(response, provider=PROVIDER)]
    assert b"".join(pieces) == b"".join(bytes([65 + i]) * 1000 for i in range(5))


async def test_server_error_then_success_is_retried(serve: Serve, client: HttpClient) -> None:
    handler, seen = _scripted(_status(500, "oops"), _ok(b"second time lucky"))
    url = await serve(handler)
    response = await client.send("GET", url, provider=PROVIDER)
    assert await client.read_body(response, provider=PROVIDER) == b"second time lucky"
    assert len(seen) == 2


async def test_rate_limit_with_retry_after_zero_then_success(
    serve: Serve, client: HttpClient
) -> None:
    handler, seen = _scripted(_status(429, "slow down", {"Retry-After": "0"}), _ok())
    url = await serve(handler)
    response = await client.send("GET", url, provider=PROVIDER)
    assert response.status == 200
    response.release()
    assert len(seen) == 2


async def test_rate_limit_exhausted_raises_rate_limit_error(
    serve: Serve, client: HttpClient
) -> None:
    handler, seen = _scripted(
        _status(429, '{"message": "too many"}', {"Retry-After": "0", "X-Request-Id": "req-42"})
    )
    url = await serve(handler)
    with pytest.raises(RateLimitError) as info:
        await client.send("GET", url, provider=PROVIDER)
    error = info.value
    assert error.status == 429
    assert error.retry_after == 0.0
    assert error.provider == PROVIDER
    assert error.request_id == "req-42"
    assert "too many" in str(error)
    assert len(seen) == 1 + FAST.max_retries


async def test_over_long_retry_after_is_not_waited_for(serve: Serve, client: HttpClient) -> None:
    handler, seen = _scripted(_status(429, "later", {"Retry-After": "3600"}))
    url = await serve(handler)
    started = time.monotonic()
    with pytest.raises(RateLimitError) as info:
        await client.send("GET", url, provider=PROVIDER)
    assert info.value.retry_after == 3600.0
    assert len(seen) == 1
    assert time.monotonic() - started < 10


async def test_server_errors_exhausted_raise_server_error(serve: Serve, client: HttpClient) -> None:
    handler, seen = _scripted(_status(503, "unavailable"))
    url = await serve(handler)
    with pytest.raises(ServerError) as info:
        await client.send("GET", url, provider=PROVIDER)
    assert info.value.status == 503
    assert len(seen) == 3


async def test_per_call_retry_policy_overrides(serve: Serve, client: HttpClient) -> None:
    handler, seen = _scripted(_status(500, "oops"))
    url = await serve(handler)
    with pytest.raises(ServerError):
        await client.send("GET", url, provider=PROVIDER, retry=RetryPolicy(max_retries=0))
    assert len(seen) == 1


async def test_bad_request_is_not_retried(serve: Serve, client: HttpClient) -> None:
    handler, seen = _scripted(_status(400, '{"message": "size must be 1024x1024"}'))
    url = await serve(handler)
    with pytest.raises(InvalidRequestError) as info:
        await client.send("POST", url, provider=PROVIDER, json_body={"size": "big"})
    assert len(seen) == 1
    assert info.value.status == 400
    assert str(info.value) == "testprov: size must be 1024x1024 [HTTP 400]"


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (401, AuthenticationError),
        (402, QuotaExceededError),
        (403, AuthenticationError),
        (404, InvalidRequestError),
        (413, InvalidRequestError),
        (422, InvalidRequestError),
        (418, ProviderError),
    ],
)
async def test_non_retryable_statuses_map_to_typed_errors(
    serve: Serve, client: HttpClient, status: int, cls: type[ProviderError]
) -> None:
    handler, seen = _scripted(_status(status, "no"))
    url = await serve(handler)
    with pytest.raises(ProviderError) as info:
        await client.send("GET", url, provider=PROVIDER)
    assert type(info.value) is cls
    assert info.value.status == status
    assert len(seen) == 1


async def test_custom_parse_error(serve: Serve, client: HttpClient) -> None:
    handler, seen = _scripted(_status(400, '{"code": "moderation_blocked"}', {"X-Custom": "abc"}))
    url = await serve(handler)
    calls: list[tuple[int, bytes, str | None]] = []

    def parse(status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        calls.append((status, body, headers.get("X-Custom")))
        return ContentPolicyError("refused by the safety system", provider=PROVIDER)

    with pytest.raises(ContentPolicyError) as info:
        await client.send("GET", url, provider=PROVIDER, parse_error=parse)
    assert calls == [(400, b'{"code": "moderation_blocked"}', "abc")]
    assert info.value.status == 400, "the status is filled in when the parser left it out"
    assert len(seen) == 1


async def test_custom_parse_error_on_retryable_status_is_retried(
    serve: Serve, client: HttpClient
) -> None:
    handler, seen = _scripted(_status(503, "busy"), _ok())
    url = await serve(handler)

    def parse(status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        return ServerError("busy", provider=PROVIDER, status=status)

    response = await client.send("GET", url, provider=PROVIDER, parse_error=parse)
    response.release()
    assert len(seen) == 2


async def test_body_factory_is_called_per_attempt(serve: Serve, client: HttpClient) -> None:
    """``data`` may be a callable: each attempt gets a fresh body."""
    bodies: list[bytes] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        bodies.append(await request.read())
        return web.Response(status=500 if len(bodies) < 3 else 200)

    url = await serve(handler)
    made: list[int] = []

    def factory() -> bytes:
        made.append(1)
        return f"attempt {len(made)}".encode()

    response = await client.send("POST", url, provider=PROVIDER, data=factory)
    response.release()
    assert bodies == [b"attempt 1", b"attempt 2", b"attempt 3"]


async def test_retries_are_logged(
    serve: Serve, client: HttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    handler, _ = _scripted(_status(502, "bad gateway"), _ok())
    url = await serve(handler)
    with caplog.at_level(logging.INFO, logger="imagestream.http"):
        response = await client.send("GET", url, provider=PROVIDER)
    response.release()
    assert any("retrying" in r.getMessage() for r in caplog.records)


# --- connection problems ------------------------------------------------------------------


async def test_connection_refused_raises_api_connection_error(client: HttpClient) -> None:
    port = _closed_port()
    with pytest.raises(APIConnectionError) as info:
        await client.send("GET", f"http://127.0.0.1:{port}/v1/x?key=abc", provider=PROVIDER)
    assert not isinstance(info.value, APITimeoutError)
    message = str(info.value)
    assert f"http://127.0.0.1:{port}" in message
    assert "/v1/x" not in message
    assert "key=abc" not in message
    assert info.value.provider == PROVIDER


@pytest.mark.parametrize(
    ("host", "reason"),
    [("127.0.0.1:{port}", "connection refused"), ("nothing.invalid", "host name does not resolve")],
)
async def test_why_a_connection_failed_is_said_in_words(
    client: HttpClient, host: str, reason: str
) -> None:
    url = f"http://{host.format(port=_closed_port())}/v1/x"
    with pytest.raises(APIConnectionError) as info:
        await client.send("GET", url, provider=PROVIDER)
    message = str(info.value)
    assert reason in message
    # Not aiohttp's wording, which names its own internals.
    for internal in ("Cannot connect", "ssl:", "Connect call failed", "ClientConnector"):
        assert internal not in message


async def test_no_headers_within_stall_timeout(serve: Serve, client: HttpClient) -> None:
    release = asyncio.Event()

    async def silent(request: web.Request) -> web.StreamResponse:
        await asyncio.wait_for(release.wait(), 10)
        return web.Response(text="too late")

    url = await serve(silent)
    started = time.monotonic()
    try:
        with pytest.raises(APITimeoutError):
            await client.send(
                "GET", url, provider=PROVIDER, stall_timeout=0.3, retry=RetryPolicy(max_retries=0)
            )
    finally:
        release.set()
    assert time.monotonic() - started < 8


async def _drain(client: HttpClient, response: Any, sink: bytearray) -> None:
    """Read a streamed body into ``sink`` until it ends or fails."""
    async for piece in client.iter_body(response, provider=PROVIDER):
        sink += piece


async def _stalling_server(serve: Serve, release: asyncio.Event) -> str:
    async def stall(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"first chunk")
        await asyncio.wait_for(release.wait(), 10)
        return response

    return await serve(stall)


async def test_stall_after_first_chunk_raises_timeout(serve: Serve, client: HttpClient) -> None:
    release = asyncio.Event()
    url = await _stalling_server(serve, release)
    received = bytearray()
    started = time.monotonic()
    try:
        response = await client.send("GET", url, provider=PROVIDER, stall_timeout=0.3)
        with pytest.raises(APITimeoutError) as info:
            await _drain(client, response, received)
    finally:
        release.set()
    assert bytes(received) == b"first chunk"
    assert "stalled" in str(info.value)
    assert "11 bytes" in str(info.value)
    assert info.value.hint is not None
    assert time.monotonic() - started < 8


async def test_stall_message_names_the_timeout_in_force(serve: Serve, client: HttpClient) -> None:
    release = asyncio.Event()
    url = await _stalling_server(serve, release)
    try:
        response = await client.send("GET", url, provider=PROVIDER, stall_timeout=0.3)
        with pytest.raises(APITimeoutError) as info:
            await _drain(client, response, bytearray())
    finally:
        release.set()
    assert "no data for 0.3s" in str(info.value)


async def test_connection_closed_mid_body_raises_stream_interrupted(
    serve: Serve, client: HttpClient
) -> None:
    async def half(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "1000"})
        await response.prepare(request)
        await response.write(b"x" * 400)
        await asyncio.sleep(0.05)
        assert request.transport is not None
        request.transport.close()
        return response

    url = await serve(half)
    response = await client.send("GET", url, provider=PROVIDER)
    received = bytearray()
    with pytest.raises(StreamInterruptedError) as info:
        await _drain(client, response, received)
    assert len(received) == 400
    assert info.value.status == 200
    assert "after 400 bytes" in str(info.value)


async def test_chunked_body_cut_raises_stream_interrupted(serve: Serve, client: HttpClient) -> None:
    async def cut(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"partial data")
        await asyncio.sleep(0.05)
        assert request.transport is not None
        request.transport.close()
        return response

    url = await serve(cut)
    response = await client.send("GET", url, provider=PROVIDER)
    with pytest.raises(StreamInterruptedError):
        await client.read_body(response, provider=PROVIDER)


async def test_read_body_over_limit_raises(serve: Serve, client: HttpClient) -> None:
    handler, _ = _scripted(_ok(b"z" * 5000))
    url = await serve(handler)
    response = await client.send("GET", url, provider=PROVIDER)
    with pytest.raises(ProviderError, match="larger than 1000 bytes") as info:
        await client.read_body(response, provider=PROVIDER, limit=1000)
    assert info.value.status == 200


async def test_read_body_at_limit_is_fine(serve: Serve, client: HttpClient) -> None:
    handler, _ = _scripted(_ok(b"z" * 1000))
    url = await serve(handler)
    response = await client.send("GET", url, provider=PROVIDER)
    assert await client.read_body(response, provider=PROVIDER, limit=1000) == b"z" * 1000


# --- secrets ------------------------------------------------------------------------------


def _all_text(error: BaseException) -> str:
    return " ".join([str(error), repr(error), repr(error.args), repr(vars(error))])


async def test_bearer_token_not_in_error_messages(serve: Serve, client: HttpClient) -> None:
    handler, seen = _scripted(_status(401, '{"message": "invalid api key"}'))
    url = await serve(handler)
    with pytest.raises(AuthenticationError) as info:
        await client.send(
            "GET", url, provider=PROVIDER, headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert seen[0].headers["Authorization"] == f"Bearer {TOKEN}", "the header was really sent"
    assert TOKEN not in _all_text(info.value)


async def test_bearer_token_not_in_connection_error(client: HttpClient) -> None:
    port = _closed_port()
    with pytest.raises(APIConnectionError) as info:
        await client.send(
            "GET",
            f"http://127.0.0.1:{port}/?api_key={TOKEN}",
            provider=PROVIDER,
            headers={"Authorization": f"Bearer {TOKEN}"},
            retry=RetryPolicy(max_retries=0),
        )
    assert TOKEN not in _all_text(info.value)


async def test_bearer_token_not_in_timeout_error(serve: Serve, client: HttpClient) -> None:
    release = asyncio.Event()
    url = await _stalling_server(serve, release)
    try:
        response = await client.send(
            "GET",
            url,
            provider=PROVIDER,
            headers={"Authorization": f"Bearer {TOKEN}"},
            stall_timeout=0.3,
        )
        with pytest.raises(APITimeoutError) as info:
            await client.read_body(response, provider=PROVIDER)
    finally:
        release.set()
    assert TOKEN not in _all_text(info.value)


async def test_url_credentials_not_in_connection_error(client: HttpClient) -> None:
    port = _closed_port()
    with pytest.raises(APIConnectionError) as info:
        await client.send(
            "GET",
            f"http://user:{TOKEN}@127.0.0.1:{port}/",
            provider=PROVIDER,
            retry=RetryPolicy(max_retries=0),
        )
    assert TOKEN not in str(info.value)


# --- session lifetime ---------------------------------------------------------------------


async def test_close_closes_the_session() -> None:
    http = HttpClient()
    session = http.session
    assert http.session is session, "the session is created once and reused"
    states = [session.closed]
    await http.close()
    states.append(session.closed)
    await http.close()  # closing twice is harmless
    fresh = http.session
    assert fresh is not session
    states.append(fresh.closed)
    await http.close()
    states.append(fresh.closed)
    assert states == [False, True, False, True]


async def test_connections_are_reused(serve: Serve, client: HttpClient) -> None:
    ports: list[int] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        ports.append(request.transport.get_extra_info("peername")[1])
        return web.Response(text="ok")

    url = await serve(handler)
    for _ in range(3):
        response = await client.send("GET", url, provider=PROVIDER)
        await client.read_body(response, provider=PROVIDER)
    assert len(set(ports)) == 1


# --- error_for_status and the default parser ----------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, InvalidRequestError),
        (401, AuthenticationError),
        (402, QuotaExceededError),
        (403, AuthenticationError),
        (404, InvalidRequestError),
        (409, ConflictError),
        (413, InvalidRequestError),
        (422, InvalidRequestError),
        (429, RateLimitError),
        (500, ServerError),
        (503, ServerError),
        (599, ServerError),
        (418, ProviderError),
        (302, ProviderError),
    ],
)
def test_error_for_status_mapping(status: int, cls: type[ProviderError]) -> None:
    error = error_for_status(status, "msg", provider="p")
    assert type(error) is cls
    assert error.status == status
    assert str(error) == f"p: msg [HTTP {status}]"


def test_error_for_status_reads_headers() -> None:
    error = error_for_status(
        429,
        "slow",
        headers={"X-REQUEST-ID": "abc", "Retry-After": "7"},
        code="rate_limit",
        error_type="requests",
    )
    assert error.request_id == "abc"
    assert error.retry_after == 7.0
    assert (error.code, error.error_type) == ("rate_limit", "requests")
    custom = error_for_status(400, "x", headers={"cf-ray": "ray1"}, request_id_header="CF-Ray")
    assert custom.request_id == "ray1"


def test_error_for_status_explicit_class() -> None:
    error = error_for_status(400, "nsfw", cls=ContentPolicyError)
    assert type(error) is ContentPolicyError
    assert error.status == 400


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"message": "from message"}', "from message"),
        (b'{"error": "from error"}', "from error"),
        (b'{"message": "", "error": "fallback"}', "fallback"),
        (b"plain text problem\n", "plain text problem"),
        (b"[1, 2]", "[1, 2]"),
        (b"", "HTTP error"),
        (b"  \n ", "HTTP error"),
        (b"\xff\xfe broken utf-8", "\ufffd\ufffd broken utf-8"),
    ],
)
def test_default_parser_messages(body: bytes, message: str) -> None:
    error = _default_parser("p")(400, body, {})
    assert error.message == f"p: {message} [HTTP 400]"


def test_default_parser_truncates_long_bodies() -> None:
    error = _default_parser("p")(500, b"e" * 10_000, {})
    assert "e" * 500 in error.message
    assert "e" * 501 not in error.message


async def test_quota_error_is_not_retried_despite_its_429() -> None:
    """A parser that says 'out of credit' wins over the retryable status."""
    from aiohttp import web

    from imagestream import HttpClient, QuotaExceededError, RetryPolicy, error_for_status

    hits = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal hits
        hits += 1
        return web.json_response({"error": {"code": "insufficient_quota"}}, status=429)

    def parse(status: int, body: bytes, headers: Any) -> Any:
        return error_for_status(status, "quota", provider="p", cls=QuotaExceededError)

    app = web.Application()
    app.router.add_post("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    client = HttpClient(retry=RetryPolicy(initial=0.01, maximum=0.02))
    try:
        with pytest.raises(QuotaExceededError):
            await client.send("POST", f"http://127.0.0.1:{port}/", provider="p", parse_error=parse)
        assert hits == 1
    finally:
        await client.close()
        await runner.cleanup()


# --- redirects -------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["x-api-key", "apikey", "x-goog-api-key", "Authorization"])
async def test_a_request_carrying_a_key_is_never_redirected(
    serve: Serve, client: HttpClient, header: str
) -> None:
    """A 3xx to another server is an error: the key never reaches that server."""
    from imagestream.errors import UnexpectedResponseError

    elsewhere, seen_elsewhere = _scripted(_ok())
    other = await serve(elsewhere)
    redirect, seen = _scripted(_status(307, headers={"Location": f"{other}/steal?token={TOKEN}"}))
    url = await serve(redirect)
    with pytest.raises(UnexpectedResponseError, match="redirected") as caught:
        await client.send(
            "POST", f"{url}/v1/x", provider=PROVIDER, headers={header: TOKEN}, json_body={}
        )
    assert seen_elsewhere == [] and len(seen) == 1
    assert caught.value.status == 307 and TOKEN not in str(caught.value)


async def test_a_request_without_a_key_follows_redirects(serve: Serve, client: HttpClient) -> None:
    target, seen_target = _scripted(_ok(b"moved here"))
    other = await serve(target)
    redirect, _ = _scripted(_status(302, headers={"Location": f"{other}/image.png"}))
    url = await serve(redirect)
    response = await client.send("GET", f"{url}/download", provider=PROVIDER)
    assert await response.read() == b"moved here" and len(seen_target) == 1
