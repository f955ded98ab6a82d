"""Tokens: the key exchanged for a JWT, reused, refreshed 60 s before ``exp``, refreshed once on a 401."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import pytest
from _animus_server import DIRECT_TOKEN, KEY, PNG, AnimusServer, Clock, make_jwt

import imagestream
from imagestream import AuthenticationError, MissingAPIKeyError
from imagestream_animus import AnimusAuth, AnimusProvider, Credentials
from imagestream_animus._auth import jwt_expiry, token_of


def pipeline(auth: AnimusAuth) -> imagestream.Pipeline:
    return imagestream.Pipeline(AnimusProvider(auth=auth))


async def generate(
    auth: AnimusAuth, server: AnimusServer, **params: object
) -> imagestream.GenerationResult:
    params.setdefault("api_key", KEY)
    return await pipeline(auth).agenerate(
        "a sunset", base_url=server.base, model="generate-image", **params
    )


def bearer(request_headers: dict[str, str]) -> str:
    scheme, _, token = request_headers["Authorization"].partition(" ")
    assert scheme == "Bearer"
    return token


async def test_the_key_is_exchanged_once_and_the_token_sent_as_bearer(
    server: AnimusServer, auth: AnimusAuth
) -> None:
    for _ in range(3):
        result = await generate(auth, server)
        assert result.images[0].image.data == PNG
    (exchange,) = server.exchanges
    assert exchange.headers["apikey"] == KEY
    calls = server.of("POST", "/v3/generate/image")
    assert len(calls) == 3
    tokens = {bearer(call.headers) for call in calls}
    assert tokens == set(server.issued)
    assert all("apikey" not in call.headers for call in calls)
    assert all(KEY not in json.dumps(call.headers) for call in calls)


@pytest.mark.parametrize("shape", ["animus", "accessToken"])
async def test_both_answer_shapes_of_the_exchange_are_read(
    server: AnimusServer, auth: AnimusAuth, shape: str
) -> None:
    server.token_shape = shape
    await generate(auth, server)
    assert bearer(server.of("POST", "/v3/")[0].headers) in server.issued


async def test_the_token_is_refreshed_60_seconds_before_it_expires(
    server: AnimusServer, auth: AnimusAuth, clock: Clock
) -> None:
    server.token_ttl = 600
    await generate(auth, server)
    first_exp = auth.expires_at(credentials_for(server))
    assert first_exp is not None and abs(first_exp - (time.time() + 600)) < 5
    clock.advance(600 - 70)  # 70 s left: still fresh
    await generate(auth, server)
    assert len(server.exchanges) == 1
    clock.advance(15)  # 55 s left: inside the margin, refreshed before the call
    await generate(auth, server)
    assert len(server.exchanges) == 2
    calls = server.of("POST", "/v3/generate/image")
    assert bearer(calls[1].headers) != bearer(calls[2].headers)


def credentials_for(server: AnimusServer) -> Credentials:
    return Credentials(f"{server.url}/auth/generate-token", key=imagestream.Secret(KEY))


async def test_a_token_the_server_finds_expired_is_refreshed_once(
    server: AnimusServer, clock: Clock
) -> None:
    # The client's clock is behind: it still trusts a token the server has let expire.
    slow = AnimusAuth(clock=lambda: clock() - 10_000)
    server.token_ttl = 0.5
    await generate(slow, server)
    await asyncio.sleep(0.6)
    result = await generate(slow, server)
    assert result.images
    calls = server.of("POST", "/v3/generate/image")
    assert len(calls) == 3  # the first run, then a 401 and its retry
    assert len(server.exchanges) == 2
    assert bearer(calls[1].headers) != bearer(calls[2].headers)


async def test_a_401_exchanges_the_key_again_and_retries_once(
    server: AnimusServer, auth: AnimusAuth
) -> None:
    await generate(auth, server)
    server.reject_next = 1
    result = await generate(auth, server)
    assert result.images[0].image.data == PNG
    calls = server.of("POST", "/v3/generate/image")
    assert len(calls) == 3
    assert len(server.exchanges) == 2
    assert bearer(calls[1].headers) != bearer(calls[2].headers)


async def test_a_second_401_is_an_authentication_error_not_a_loop(
    server: AnimusServer, auth: AnimusAuth
) -> None:
    server.reject_next = 5
    with pytest.raises(AuthenticationError) as caught:
        await generate(auth, server)
    assert caught.value.status == 401
    assert len(server.of("POST", "/v3/generate/image")) == 2
    assert len(server.exchanges) == 2
    assert "refused too" in str(caught.value)
    assert KEY not in str(caught.value)


async def test_a_direct_token_is_sent_as_it_is_and_never_refreshed(
    server: AnimusServer, auth: AnimusAuth
) -> None:
    await generate(auth, server, api_key=None, token=DIRECT_TOKEN)
    assert server.exchanges == []
    assert bearer(server.requests[0].headers) == DIRECT_TOKEN
    server.reject_next = 1
    with pytest.raises(AuthenticationError) as caught:
        await generate(auth, server, api_key=None, token=DIRECT_TOKEN)
    assert len(server.of("POST", "/v3/generate/image")) == 2  # no retry: nothing to refresh
    assert server.exchanges == []
    assert "given directly" in str(caught.value)
    assert DIRECT_TOKEN not in str(caught.value)


async def test_the_token_variable_is_used_when_no_key_is_given(
    server: AnimusServer, auth: AnimusAuth, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANIMUS_TOKEN", DIRECT_TOKEN)
    monkeypatch.setenv("ANIMUS_API_KEY", "not-this-one")
    await generate(auth, server, api_key=None)
    assert server.exchanges == []
    assert bearer(server.requests[0].headers) == DIRECT_TOKEN


async def test_the_key_variable_is_exchanged(
    server: AnimusServer, auth: AnimusAuth, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANIMUS_API_KEY", KEY)
    await generate(auth, server, api_key=None)
    assert server.exchanges[0].headers["apikey"] == KEY


async def test_a_refused_key_is_an_authentication_error_that_never_shows_it(
    server: AnimusServer, auth: AnimusAuth
) -> None:
    server.echo_key = True
    wrong = "wrong-key-0123456789abcdefghij"
    with pytest.raises(AuthenticationError) as caught:
        await generate(auth, server, api_key=wrong)
    assert wrong not in str(caught.value)
    assert "ANIMUS_API_KEY" in str(caught.value)
    assert server.of("POST", "/v3/") == []


async def test_no_key_and_no_token_fails_before_any_request(
    server: AnimusServer, auth: AnimusAuth
) -> None:
    with pytest.raises(MissingAPIKeyError) as caught:
        await generate(auth, server, api_key=None)
    assert "ANIMUS_API_KEY" in str(caught.value)
    assert server.requests == []


async def test_concurrent_runs_share_one_exchange(server: AnimusServer, auth: AnimusAuth) -> None:
    results = await asyncio.gather(*(generate(auth, server) for _ in range(4)))
    assert all(result.images for result in results)
    assert len(server.exchanges) == 1


def test_jwt_expiry_and_answer_shapes() -> None:
    assert jwt_expiry(make_jwt(1_900_000_000, 1)) == 1_900_000_000
    assert jwt_expiry("not-a-jwt") is None
    claims = base64.urlsafe_b64encode(b'{"sub": "x"}').decode().rstrip("=")
    assert jwt_expiry(f"a.{claims}.c") is None
    assert token_of({"animus": {"token": "t1"}, "livekit": {}}) == "t1"
    assert token_of({"accessToken": "t2"}) == "t2"
    assert token_of({"access_token": "t3"}) == "t3"
    assert token_of({"message": "no"}) is None
    assert token_of(["t"]) is None


async def test_an_answer_without_exp_uses_expires_in(server: AnimusServer) -> None:
    from aiohttp import web

    clock = Clock()
    auth = AnimusAuth(clock=clock)
    app = web.Application()

    async def exchange(request: web.Request) -> web.Response:
        return web.json_response({"accessToken": "opaque-token-without-claims", "expiresIn": 120})

    app.router.add_get("/auth/generate-token", exchange)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        credentials = Credentials(
            f"http://127.0.0.1:{port}/auth/generate-token", key=imagestream.Secret(KEY)
        )
        token = await auth.token(imagestream.http_client(), credentials)
        assert token == "opaque-token-without-claims"
        assert auth.expires_at(credentials) == pytest.approx(clock.now + 120)
    finally:
        await runner.cleanup()
