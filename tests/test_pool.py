"""One pooled HTTP client per event loop: connections opened once, closed at loop shutdown."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import ClassVar

import pytest
from aiohttp import web

import imagestream
from imagestream import HttpClient, ImageData, ImageFinal, Pipeline, TextDelta
from imagestream.provider import Chunk, ImageRequest, Provider, RunContext
from imagestream.testing import PluginHarness, make_png

# A run asks for an image: one that ends without any is a NoImageError.
FINAL = ImageFinal(image=ImageData.from_bytes(make_png(), "image/png"))

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Serve = Callable[[Handler], Awaitable[str]]


class PingProvider(Provider):
    name: ClassVar[str] = "ping"

    async def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Chunk]:
        response = await context.http.send("GET", f"{request.base_url}/", provider=self.name)
        body = await context.http.read_body(response, provider=self.name)
        yield TextDelta(body.decode())
        yield FINAL


async def _peer_counting_server(serve: Serve) -> tuple[str, set[int]]:
    ports: set[int] = set()

    async def handler(request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        ports.add(peer[1])
        return web.Response(text="pong")

    return await serve(handler), ports


async def test_stream_reuses_one_connection_across_calls(
    serve: Serve, imagestream_plugins: PluginHarness
) -> None:
    imagestream_plugins.register_provider(PingProvider())
    base_url, ports = await _peer_counting_server(serve)
    for _ in range(20):
        result = await imagestream.agenerate("x", provider="ping", base_url=base_url)
        assert result.text == "pong"
    assert len(ports) == 1
    assert imagestream.http_client() is imagestream.http_client()


async def test_a_plain_pipeline_shares_the_loop_client(serve: Serve) -> None:
    base_url, ports = await _peer_counting_server(serve)
    first, second = Pipeline(PingProvider()), Pipeline(PingProvider())
    for pipe in (first, second, first):
        await pipe.agenerate("x", base_url=base_url)
    assert len(ports) == 1


async def test_aclose_then_a_fresh_client() -> None:
    client = imagestream.http_client()
    client.session  # noqa: B018 - open it
    await imagestream.aclose_http_client()
    assert client.closed
    assert imagestream.http_client() is not client
    await imagestream.aclose_http_client()


def test_each_loop_gets_its_own_client() -> None:
    async def get() -> HttpClient:
        return imagestream.http_client()

    assert asyncio.run(get()) is not asyncio.run(get())


def test_the_default_connection_limit_does_not_throttle_hundreds_of_streams(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert HttpClient().max_connections >= 500
    monkeypatch.setenv("IMAGESTREAM_MAX_CONNECTIONS", "7")
    assert HttpClient().max_connections == 7
    assert HttpClient(max_connections=0).max_connections == 0

    async def limit() -> int:
        return HttpClient(max_connections=3).session.connector.limit  # type: ignore[union-attr]

    assert asyncio.run(limit()) == 3


def test_closed_at_loop_shutdown_without_warnings() -> None:
    """A program that streams in asyncio.run leaves no unclosed session behind."""
    script = textwrap.dedent(
        """
        import asyncio, gc, imagestream
        from aiohttp import web
        from imagestream import ImageData, ImageFinal, Pipeline, TextDelta, Provider
        from imagestream.testing import make_png

        class Ping(Provider):
            name = "ping"
            async def stream(self, request, context):
                response = await context.http.send("GET", request.base_url, provider="ping")
                yield TextDelta((await context.http.read_body(response, provider="ping")).decode())
                yield ImageFinal(image=ImageData.from_bytes(make_png(), "image/png"))

        async def main():
            app = web.Application()
            app.router.add_get("/", lambda request: web.Response(text="pong"))
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            for _ in range(3):
                result = await Pipeline(Ping()).agenerate("x", base_url=f"http://{host}:{port}/")
            assert result.text == "pong"
            global client
            client = imagestream.http_client()
            assert not client.closed
            await runner.cleanup()

        asyncio.run(main())
        assert client.closed, "not closed at loop shutdown"
        gc.collect()
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-W", "error::ResourceWarning", "-X", "dev", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    assert "Unclosed" not in done.stderr, done.stderr


def test_the_proxy_environment_is_read_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    from imagestream._http import proxy_configured

    proxy_configured.cache_clear()
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    assert proxy_configured() is True
    monkeypatch.delenv("HTTPS_PROXY")
    assert proxy_configured() is True  # cached: the environment is not scanned again
    proxy_configured.cache_clear()
    assert proxy_configured() is False


def test_the_kit_is_cheap_to_import() -> None:
    """Plugin entry modules import the kit at start-up: it must not pull in the HTTP stack."""
    script = (
        "import sys, imagestream.provider as kit\n"
        "from imagestream.provider import Provider, Options, ModelInfo\n"
        "assert 'asyncio' not in sys.modules and 'aiohttp' not in sys.modules, 'heavy import'\n"
        "kit.HttpClient\n"
        "assert 'asyncio' in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
