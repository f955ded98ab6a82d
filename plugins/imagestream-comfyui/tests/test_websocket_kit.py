"""The provider kit's WebSocket (``imagestream.provider.open_websocket``), which this plugin runs on."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

import imagestream
from imagestream.provider import iter_websocket, open_websocket

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@contextlib.asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/ws", handler)
    app.router.add_get("/page", _page)
    runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def _page(request: web.Request) -> web.Response:
    return web.Response(text="<html>not a websocket</html>", content_type="text/html")


@pytest.fixture
async def http() -> AsyncIterator[imagestream.HttpClient]:
    client = imagestream.HttpClient(stall_timeout=5.0)
    try:
        yield client
    finally:
        await client.close()


async def test_messages_both_ways_and_a_close_by_the_server(http: imagestream.HttpClient) -> None:
    seen: list[str] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        seen.append(request.headers.get("Authorization", ""))
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str('{"type": "hello"}')
        await ws.send_bytes(b"\x00\x00\x00\x01picture")
        echo = await ws.receive()
        await ws.send_str(f"echo {echo.data}")
        await ws.close(code=1001, message=b"going away")
        return ws

    async with serving(handler) as url:
        credentials = url.replace("http://", "http://user:hunter2-secret@")
        async with open_websocket(
            http, credentials + "/ws?token=abcdefgh123", provider="kit"
        ) as ws:
            assert "hunter2" not in repr(ws) and "abcdefgh123" not in ws.url
            first = await ws.receive()
            assert first.is_text and first.json() == {"type": "hello"}
            second = await ws.receive()
            assert second.is_binary and second.data == b"\x00\x00\x00\x01picture"
            with pytest.raises(imagestream.StreamDecodeError):
                second.json()
            await ws.send_json({"n": 1})
            assert (await ws.receive()).data == 'echo {"n":1}'
            with pytest.raises(
                imagestream.StreamInterruptedError,
                match=r"closed the WebSocket \(code 1001: going away\) after 3 messages",
            ):
                await ws.receive()
    # user:password@ went as basic authentication.
    assert seen == ["Basic " + base64.b64encode(b"user:hunter2-secret").decode()]


async def test_iter_websocket_opens_lazily_and_closes(http: imagestream.HttpClient) -> None:
    closed = asyncio.Event()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        for number in range(5):
            await ws.send_str(str(number))
        async for _ in ws:
            pass
        closed.set()
        return ws

    async with serving(handler) as url:
        messages = iter_websocket(http, url + "/ws", provider="kit")
        got = []
        async with contextlib.aclosing(messages):
            async for message in messages:
                got.append(message.data)
                if len(got) == 3:
                    break
        assert got == ["0", "1", "2"]
        async with asyncio.timeout(5):
            await closed.wait()


async def test_a_message_over_the_cap(http: imagestream.HttpClient) -> None:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_bytes(b"x" * 100)
        await ws.send_bytes(b"y" * 5000)
        await ws.receive()
        return ws

    async with (
        serving(handler) as url,
        open_websocket(http, url + "/ws", provider="kit", max_message_bytes=1000) as ws,
    ):
        assert len((await ws.receive()).data) == 100
        with pytest.raises(imagestream.ProviderError, match="larger than 1000 bytes") as caught:
            await ws.receive()
        assert caught.value.hint is not None and "max_message_bytes" in caught.value.hint


async def test_a_silent_server_stalls(http: imagestream.HttpClient) -> None:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("one")
        await ws.receive()
        return ws

    async with (
        serving(handler) as url,
        open_websocket(http, url + "/ws", provider="kit", stall_timeout=0.2) as ws,
    ):
        await ws.receive()
        with pytest.raises(
            imagestream.APITimeoutError, match=r"no message for 0.2s after 1 messages"
        ):
            await ws.receive()


async def test_opening_fails_with_typed_errors(http: imagestream.HttpClient) -> None:
    async def refuse(request: web.Request) -> web.StreamResponse:
        return web.json_response({"error": "no"}, status=403)

    async with serving(refuse) as url:
        with pytest.raises(imagestream.AuthenticationError) as denied:
            async with open_websocket(http, url + "/ws?key=sk-abcdefghijkl", provider="kit"):
                pass
        assert denied.value.status == 403 and "sk-abcdefghijkl" not in str(denied.value)
        with pytest.raises(
            imagestream.UnexpectedResponseError, match="instead of switching to a WebSocket"
        ):
            async with open_websocket(http, url + "/page", provider="kit"):
                pass
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(
        imagestream.APIConnectionError, match=f"cannot reach http://127.0.0.1:{port}"
    ) as refused:
        async with open_websocket(
            http, f"http://user:pw-secret-1@127.0.0.1:{port}/ws", provider="kit"
        ):
            pass
    assert "pw-secret-1" not in str(refused.value)
    with pytest.raises(imagestream.ConfigurationError, match="user name and password"):
        async with open_websocket(
            http,
            f"http://u:p@127.0.0.1:{port}/ws",
            provider="kit",
            headers={"Authorization": "Bearer x"},
        ):
            pass


async def test_sending_on_a_closed_socket(http: imagestream.HttpClient) -> None:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.receive()
        return ws

    async with serving(handler) as url, open_websocket(http, url + "/ws", provider="kit") as ws:
        await ws.close()
        assert ws.closed
        with pytest.raises(imagestream.StreamInterruptedError):
            await ws.send_text("late")
        with pytest.raises(imagestream.StreamInterruptedError):
            await ws.receive()


async def test_a_peer_that_stops_answering_pings(http: imagestream.HttpClient) -> None:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False)  # never answers a ping
        await ws.prepare(request)
        await asyncio.sleep(5)
        return ws

    async with (
        serving(handler) as url,
        open_websocket(http, url + "/ws", provider="kit", heartbeat=0.2) as ws,
    ):
        with pytest.raises(imagestream.APITimeoutError, match="stopped answering pings"):
            await ws.receive()


@pytest.mark.parametrize("header", ["x-api-key", "Authorization", "apikey"])
async def test_a_handshake_that_carries_a_key_is_never_redirected(
    http: imagestream.HttpClient, header: str
) -> None:
    """As for every request (``HttpClient.send``): the key must not follow a redirect elsewhere."""
    reached: list[dict[str, str]] = []

    async def elsewhere(request: web.Request) -> web.WebSocketResponse:
        reached.append(dict(request.headers))
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("elsewhere")
        await ws.receive()
        return ws

    async with serving(elsewhere) as other:

        async def redirect(request: web.Request) -> web.StreamResponse:
            raise web.HTTPTemporaryRedirect(other + "/ws")

        async with serving(redirect) as url:
            secret = "sk-redirect-0123456789abcdef"
            value = f"Bearer {secret}" if header == "Authorization" else secret
            with pytest.raises(imagestream.UnexpectedResponseError) as caught:
                async with open_websocket(
                    http, url + "/ws", provider="kit", headers={header: value}
                ):
                    pass
            error = caught.value
            assert error.status == 307 and "never redirected" in error.message
            assert other in error.message and secret not in str(error)
            assert reached == []  # the other origin saw nothing, let alone the key
            # Without a key, a redirect is followed as before.
            async with open_websocket(http, url + "/ws", provider="kit") as ws:
                assert (await ws.receive()).data == "elsewhere"
    assert len(reached) == 1
