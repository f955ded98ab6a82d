"""Hundreds of concurrent streams: one pooled session, no queue at aiohttp's 100 connections.

aiohttp's ``TCPConnector`` allows 100 connections unless told otherwise and
queues the rest without a word; an image stream holds its connection for the
whole generation, so the 101st concurrent stream would wait for one of the
first hundred to end (a latency cliff, not an error). These tests count on
the server side how many requests are open at once: the server holds every
request until the whole crowd has arrived (or a generous timeout passes, so
that a capped client fails the assertion instead of hanging), then answers.
Past a client's own limit, requests wait for a free connection: a queue,
never a connect timeout. No timing is asserted.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ClassVar

import aiohttp
import pytest
from aiohttp import web

import imagestream
from imagestream import HttpClient, ImageData, ImageFinal, Pipeline, TextDelta
from imagestream._retry import RetryPolicy
from imagestream.errors import APITimeoutError
from imagestream.provider import Chunk, ImageRequest, Provider, RunContext
from imagestream.testing import PluginHarness, make_png

CROWD = 300  # well past aiohttp's default limit of 100
HOLD_TIMEOUT = 30.0  # only ever reached when the client queues requests

FINAL = ImageFinal(image=ImageData.from_bytes(make_png(), "image/png"))


class Counts:
    """What the server saw: requests open now and at most, and every client port."""

    def __init__(self) -> None:
        self.hold_timeout = HOLD_TIMEOUT
        self.open = 0
        self.most_open = 0
        self.ports: set[int] = set()
        self.released = asyncio.Event()

    def reset(self) -> None:
        self.most_open = self.open
        self.ports = set()
        self.released = asyncio.Event()


Crowd = Callable[[bytes], Awaitable[tuple[str, Counts]]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Serve = Callable[[Handler], Awaitable[str]]


@pytest.fixture
async def crowd_server() -> AsyncIterator[Crowd]:
    """``await crowd_server(body)``: a server answering every request with ``body`` once CROWD are open."""
    runners: list[web.AppRunner] = []

    async def start(body: bytes) -> tuple[str, Counts]:
        counts = Counts()

        async def handler(request: web.Request) -> web.StreamResponse:
            peer = request.transport.get_extra_info("peername") if request.transport else None
            counts.ports.add(peer[1] if peer else -1)
            counts.open += 1
            counts.most_open = max(counts.most_open, counts.open)
            try:
                await request.read()
                released = counts.released
                if counts.open >= CROWD:
                    released.set()
                try:
                    await asyncio.wait_for(released.wait(), counts.hold_timeout)
                except TimeoutError:
                    released.set()  # the crowd never came at once: let everyone go
                response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
                await response.prepare(request)
                await response.write(body)
                await response.write_eof()
                return response
            finally:
                counts.open -= 1

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app, shutdown_timeout=1.0, handler_cancellation=True)
        await runner.setup()
        runners.append(runner)
        # A backlog above the crowd: the kernel must not drop connects.
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}", counts

    try:
        yield start
    finally:
        for runner in runners:
            await runner.cleanup()


class BodyProvider(Provider):
    """Streams a server's body as text through the run's HTTP client, then a final."""

    name: ClassVar[str] = "crowd"

    async def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Chunk]:
        response = await context.http.send(
            "POST", f"{request.base_url}/v1/stream", provider=self.name, json_body={"p": 1}
        )
        async for piece in context.http.iter_body(response, provider=self.name):
            yield TextDelta(piece.decode())
        yield FINAL


BODY = b"onetwo"


@pytest.fixture
def sessions_made(monkeypatch: pytest.MonkeyPatch) -> list[aiohttp.ClientSession]:
    """Every ``aiohttp.ClientSession`` made during the test."""
    made: list[aiohttp.ClientSession] = []
    original = aiohttp.ClientSession.__init__

    def counting(self: aiohttp.ClientSession, *args: Any, **kwargs: Any) -> None:
        made.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(aiohttp.ClientSession, "__init__", counting)
    monkeypatch.delenv("IMAGESTREAM_MAX_CONNECTIONS", raising=False)
    return made


async def _crowd(run: Callable[[], Awaitable[Any]]) -> list[Any]:
    return await asyncio.gather(*(run() for _ in range(CROWD)))


async def test_stream_runs_hundreds_at_once_through_one_session(
    crowd_server: Crowd,
    imagestream_plugins: PluginHarness,
    sessions_made: list[aiohttp.ClientSession],
) -> None:
    imagestream_plugins.register_provider(BodyProvider())
    base_url, counts = await crowd_server(BODY)

    async def run() -> str:
        result = await imagestream.agenerate("x", provider="crowd", base_url=base_url)
        return result.text

    assert await _crowd(run) == ["onetwo"] * CROWD
    # Every stream was open at the server at once, each on its own connection.
    assert counts.most_open == CROWD
    assert len(counts.ports) == CROWD
    # One session, the loop's pooled client's, with a limit far above 100.
    assert len(sessions_made) == 1
    assert sessions_made[0] is imagestream.http_client().session
    assert imagestream.http_client().session.connector.limit >= 1000  # type: ignore[union-attr]

    # A second crowd reuses those connections: no session, no connection opened.
    first_ports = counts.ports
    counts.reset()
    assert await _crowd(run) == ["onetwo"] * CROWD
    assert counts.most_open == CROWD
    assert counts.ports == first_ports
    assert len(sessions_made) == 1


@pytest.mark.parametrize("own_client", [True, False], ids=["async-with", "shared-client"])
async def test_a_pipeline_runs_hundreds_at_once(
    crowd_server: Crowd, sessions_made: list[aiohttp.ClientSession], own_client: bool
) -> None:
    base_url, counts = await crowd_server(BODY)
    pipeline = Pipeline(BodyProvider())

    async def run() -> str:
        return (await pipeline.agenerate("x", base_url=base_url)).text

    if own_client:
        async with pipeline:  # a client of its own, closed on exit
            assert await _crowd(run) == ["onetwo"] * CROWD
    else:
        assert await _crowd(run) == ["onetwo"] * CROWD
    assert counts.most_open == CROWD
    assert len(counts.ports) == CROWD
    assert len(sessions_made) == 1


async def test_a_connection_limit_shows_as_a_queue(crowd_server: Crowd) -> None:
    """What the tests above would see with aiohttp's default: never more than 100 open."""
    base_url, counts = await crowd_server(BODY)
    counts.hold_timeout = 3.0  # the crowd never comes at once: let it go sooner
    limited = HttpClient(max_connections=100)
    pipeline = Pipeline(BodyProvider(), http=limited)

    async def run() -> str:
        return (await pipeline.agenerate("x", base_url=base_url)).text

    try:
        assert await _crowd(run) == ["onetwo"] * CROWD
    finally:
        await limited.close()
    assert counts.most_open == 100


def _openai_events() -> bytes:
    image = base64.b64encode(make_png()).decode("ascii")
    events = [
        (
            "image_generation.partial_image",
            {"type": "image_generation.partial_image", "b64_json": image, "partial_image_index": 0},
        ),
        (
            "image_generation.completed",
            {
                "type": "image_generation.completed",
                "b64_json": image,
                "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2},
            },
        ),
    ]
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()


async def test_openai_streams_hundreds_at_once_through_stream(
    crowd_server: Crowd, sessions_made: list[aiohttp.ClientSession]
) -> None:
    """The openai plugin: no concurrency limit of its own, the pooled client's transport."""
    pytest.importorskip("imagestream_openai")
    assert imagestream.get_provider("openai").max_concurrency is None
    base_url, counts = await crowd_server(_openai_events())

    async def run() -> bytes:
        finals = []
        async with imagestream.stream(
            "x", provider="openai", base_url=f"{base_url}/v1", api_key="sk-test", partial_images=1
        ) as chunks:
            async for chunk in chunks:
                if isinstance(chunk, ImageFinal):
                    finals.append(chunk.image.data)
        (final,) = finals
        return final

    assert await _crowd(run) == [make_png()] * CROWD
    assert counts.most_open == CROWD
    assert len(counts.ports) == CROWD
    assert len(sessions_made) == 1


# -- beyond the limit: a queue, not a timeout ---------------------------------------

NO_RETRY = RetryPolicy(max_retries=0)


async def test_requests_beyond_the_limit_wait_for_a_slot_without_timing_out(serve: Serve) -> None:
    """aiohttp counts the wait for a free connection as connecting: not here."""

    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(1.0)  # five connect timeouts: every queued request waits longer
        return web.Response(text="ok")

    base_url = await serve(slow)
    client = HttpClient(max_connections=2, connect_timeout=0.2, retry=NO_RETRY)

    async def one() -> bytes:
        response = await client.send("GET", f"{base_url}/", provider="test")
        return await client.read_body(response, provider="test")

    try:
        assert await asyncio.gather(*(one() for _ in range(5))) == [b"ok"] * 5
    finally:
        await client.close()


async def test_a_name_lookup_that_hangs_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the pool wait left unbounded, the connect timeout still bounds the lookup."""

    async def hang(self: object, host: str, port: int = 0, family: int = 0) -> list[Any]:
        await asyncio.sleep(3600)
        return []

    monkeypatch.setattr(aiohttp.DefaultResolver, "resolve", hang)
    client = HttpClient(connect_timeout=0.2, retry=NO_RETRY)
    try:
        with pytest.raises(APITimeoutError):
            await asyncio.wait_for(
                client.send("GET", "http://never-answers.invalid/", provider="test"), 30
            )
    finally:
        await client.close()


async def test_a_tls_handshake_that_hangs_times_out() -> None:
    """The TCP and TLS handshake of a new connection are bounded by the connect timeout."""
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # accepts, then never says a word

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = HttpClient(connect_timeout=0.2, retry=NO_RETRY)
    try:
        with pytest.raises(APITimeoutError):
            await asyncio.wait_for(
                client.send("GET", f"https://127.0.0.1:{port}/", provider="test"), 30
            )
    finally:
        await client.close()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
