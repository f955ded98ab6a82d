"""The native API over a real socket: streams, errors, limits, security, cancel on disconnect."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import pytest
from aiohttp import web

import imagestream
from imagestream import ConfigurationError, ImageData, ImageFinal, TextDelta
from imagestream.provider import Chunk, ImageRequest, Provider, RunContext, stream_events
from imagestream.testing import make_image
from imagestream_server import ServerConfig, make_app

TOKEN = "server-token-0123456789"
PROVIDER_KEY = "sk-provider-key-never-shown-42"

Started = Callable[..., Awaitable[str]]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Started]:
    """``await start(**config)`` runs the app on 127.0.0.1 and returns its URL."""
    runners: list[web.AppRunner] = []

    async def run(**config: Any) -> str:
        config.setdefault("out_dir", tmp_path / "out")
        config.setdefault("port", 0)
        # No handler cancellation: the server must notice a departed client itself.
        runner = web.AppRunner(make_app(ServerConfig(**config)), handler_cancellation=False)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    try:
        yield run
    finally:
        for runner in runners:
            await runner.cleanup()


def parse_sse(body: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in body.split("\n\n"):
        name, data = "message", None
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
        if data is not None:
            events.append((name, data))
    return events


async def post(
    url: str, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/api/generate", json=body, headers=headers) as r,
    ):
        return r.status, dict(r.headers), await r.text()


async def test_a_generation_streams_every_chunk_then_done(start: Started, tmp_path: Path) -> None:
    url = await start()
    status, headers, text = await post(url, {"prompt": "a red circle", "size": "64x64", "steps": 4})
    assert status == 200
    assert headers["Content-Type"].startswith("text/event-stream")
    assert headers["Cache-Control"] == "no-cache, no-transform"
    assert headers["X-Accel-Buffering"] == "no"
    events = parse_sse(text)
    names = [name for name, _ in events]
    assert names[0] == "text_delta" and names.count("image_preview") == 4
    assert names[-3:] == ["image_final", "usage", "done"]
    final = next(data for name, data in events if name == "image_final")
    done = events[-1][1]
    (image,) = done["images"]
    saved = tmp_path / "out" / image["url"].removeprefix("/files/")
    assert saved.read_bytes() == ImageData.from_base64(final["image"]["b64"]).data
    async with aiohttp.ClientSession() as session, session.get(url + image["url"]) as r:
        assert r.status == 200 and r.content_type == "image/png"
        assert await r.read() == saved.read_bytes()
        gallery = await (await session.get(f"{url}/api/gallery")).json()
    assert gallery["images"][0]["url"] == image["url"]
    # Chunks decode back into the protocol.
    assert isinstance(imagestream.chunk_from_dict(final), ImageFinal)


async def test_a_server_that_keeps_nothing_relays_images_inline(
    start: Started, tmp_path: Path
) -> None:
    """``save=False`` (``--no-save``): the final arrives inline, nothing is written, no URLs."""
    url = await start(save=False)
    status, _, text = await post(url, {"prompt": "a red circle", "size": "64x64", "steps": 2})
    assert status == 200
    events = parse_sse(text)
    final = next(data for name, data in events if name == "image_final")
    assert ImageData.from_base64(final["image"]["b64"]).mime_type == "image/png"
    assert events[-1][0] == "done" and events[-1][1]["images"] == []
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


async def test_get_for_event_source(start: Started) -> None:
    url = await start()
    query = {
        "prompt": "a blue square",
        "size": "32x32",
        "steps": "2",
        "options": json.dumps({"preview_format": "png"}),
    }
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{url}/api/generate", params=query) as r,
    ):
        events = parse_sse(await r.text())
    assert [name for name, _ in events].count("image_preview") == 2
    assert events[-1][0] == "done"


async def test_providers_never_show_keys(start: Started) -> None:
    url = await start()
    async with aiohttp.ClientSession() as session, session.get(f"{url}/api/providers") as r:
        data = await r.json()
    names = {provider["name"] for provider in data["providers"]}
    assert "procedural" in names and data["default_provider"] == "procedural"
    assert all("key_env" not in provider for provider in data["providers"])


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ({"prompt": "x", "api_key": "k"}, 400, "cannot be set by a client"),
        ({"prompt": "x", "base_url": "http://evil"}, 400, "cannot be set by a client"),
        ({"prompt": "x", "colour": "red"}, 400, "unknown field"),
        ({"size": "64x64"}, 400, "prompt"),
        ({"prompt": "x", "steps": "many"}, 400, "whole number"),
        ([1, 2], 400, "JSON object"),
    ],
)
async def test_bad_requests_are_clear_errors(
    start: Started, body: Any, status: int, text: str
) -> None:
    url = await start()
    code, _, answer = await post(url, body)
    assert code == status
    error = json.loads(answer)["error"]
    assert text in error["message"] + (error["hint"] or "")


async def test_a_provider_error_arrives_in_band(start: Started) -> None:
    url = await start()
    status, _, text = await post(
        url, {"prompt": "x", "provider": "procedural", "options": {"bogus": 1}}
    )
    assert status == 200
    name, data = parse_sse(text)[-1]
    assert name == "error" and data["type"] == "ConfigurationError" and "bogus" in data["message"]


async def test_an_unknown_provider(start: Started) -> None:
    url = await start()
    status, _, text = await post(url, {"prompt": "x", "provider": "nosuch"})
    # Known before anything streams: a plain HTTP error.
    assert status == 404
    assert json.loads(text)["error"]["type"] == "UnknownProviderError"


async def test_a_missing_provider_key_never_shows_the_variable_value(
    start: Started, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    url = await start()
    _, _, text = await post(url, {"prompt": "x", "provider": "openai"})
    name, data = parse_sse(text)[-1]
    assert name == "error" and data["type"] == "MissingAPIKeyError"


# -- security ---------------------------------------------------------------------------


def test_binding_beyond_loopback_needs_a_token() -> None:
    with pytest.raises(ConfigurationError, match="a token is required"):
        make_app(ServerConfig(host="0.0.0.0"))
    make_app(ServerConfig(host="0.0.0.0", token=TOKEN))
    make_app(ServerConfig(host="::1"))


def test_the_serve_command_passes_its_options(monkeypatch: pytest.MonkeyPatch) -> None:
    """``imagestream serve --no-save ...`` reaches the server's settings."""
    from click.testing import CliRunner

    import imagestream_server._run
    from imagestream.cli import main

    seen: list[ServerConfig] = []
    monkeypatch.setattr(imagestream_server._run, "run_server", seen.append)
    result = CliRunner().invoke(main, ["serve", "--no-save", "--port", "9999", "-p", "procedural"])
    assert result.exit_code == 0, result.output
    (config,) = seen
    assert (config.save, config.port, config.default_provider) == (False, 9999, "procedural")
    result = CliRunner().invoke(main, ["serve", "--port", "9998"])
    assert seen[-1].save is True


async def test_the_token_is_checked_on_every_api_route(start: Started) -> None:
    url = await start(token=TOKEN)
    async with aiohttp.ClientSession() as session:
        for path in ("/api/providers", "/api/gallery", "/files/x.png", "/v1/models"):
            async with session.get(url + path) as r:
                assert r.status == 401, path
                assert "Bearer" in r.headers["WWW-Authenticate"]
            async with session.get(url + path, headers={"Authorization": "Bearer wrong"}) as r:
                assert r.status == 401
        async with session.get(
            f"{url}/api/providers", headers={"Authorization": f"Bearer {TOKEN}"}
        ) as r:
            assert r.status == 200
        async with session.get(url + "/") as r:  # the page itself asks for the token
            assert r.status in (200, 404)


async def test_cors_is_off_unless_allowed(start: Started) -> None:
    url = await start(cors_origins=("https://app.example",))
    async with aiohttp.ClientSession() as session:
        preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
        async with session.options(f"{url}/api/generate", headers=preflight) as r:
            assert (
                r.status == 204
                and r.headers["Access-Control-Allow-Origin"] == "https://app.example"
            )
        async with session.options(
            f"{url}/api/generate", headers={**preflight, "Origin": "https://evil.example"}
        ) as r:
            assert r.status == 403 and "Access-Control-Allow-Origin" not in r.headers
        async with session.get(
            f"{url}/api/providers", headers={"Origin": "https://evil.example"}
        ) as r:
            assert "Access-Control-Allow-Origin" not in r.headers


async def test_body_size_cap(start: Started) -> None:
    url = await start(max_body_bytes=1000)
    status, _, text = await post(url, {"prompt": "x" * 5000})
    assert status == 413 and "too large" in text


async def test_prompt_length_is_the_validation_middlewares(start: Started) -> None:
    url = await start()
    _, _, text = await post(url, {"prompt": "x" * 40_000})
    name, data = parse_sse(text)[-1]
    assert name == "error" and data["type"] == "ValidationError"


@pytest.mark.parametrize(
    "name", ["..%2F..%2Fetc%2Fpasswd", ".hidden.png", "a%2Fb.png", "notes.txt", "x.png"]
)
async def test_files_only_from_the_output_folder(start: Started, tmp_path: Path, name: str) -> None:
    (tmp_path / "secret.png").write_bytes(make_image("png"))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "link.png").symlink_to(tmp_path / "secret.png")
    url = await start()
    async with aiohttp.ClientSession() as session:
        for path in (name, "link.png", "..%2Fsecret.png"):
            async with session.get(f"{url}/files/{path}") as r:
                assert r.status == 404


# -- limits, pings, departures ------------------------------------------------------------


class Slow(Provider):
    """Streams from a local upstream that sends an event, then waits to be released."""

    name: ClassVar[str] = "slow"

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream  # the server's own setting: clients never choose it

    async def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Chunk]:
        events = stream_events(
            context,
            "GET",
            f"{self.upstream}/events",
            provider=self.name,
            decoder=context.get_decoder("sse"),
            content_types=("text/event-stream",),
            headers={"Authorization": f"Bearer {PROVIDER_KEY}"},
        )
        async for event in events:
            yield TextDelta(event.data)
        yield ImageFinal(ImageData.from_bytes(make_image("png")), mime_type="image/png")


class Upstream:
    """A slow SSE upstream that records when its client leaves."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.left = asyncio.Event()
        self.started = asyncio.Event()
        self.refuse = False

    async def handler(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        if self.refuse:
            # A misbehaving upstream that quotes the credentials it was sent.
            return web.Response(
                status=401, text=f"bad credentials: {request.headers['Authorization']}"
            )
        await response.prepare(request)
        await response.write(b"data: first\n\n")
        self.started.set()
        try:
            while not self.release.is_set():
                await asyncio.sleep(0.02)
                await response.write(b": still here\n\n")
        except (ConnectionError, asyncio.CancelledError):
            self.left.set()
            raise
        await response.write(b"data: second\n\n")
        return response


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    state = Upstream()
    app = web.Application()
    app.router.add_get("/events", state.handler)
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    plugin = imagestream.testing.provider_plugin(Slow(f"http://{host}:{port}"))
    name = imagestream.register_plugin(plugin, "slow-test")
    try:
        yield state
    finally:
        state.release.set()
        imagestream.unregister_plugin(name)
        await runner.cleanup()


async def test_a_client_that_leaves_stops_the_upstream_within_a_second(
    start: Started, upstream: Upstream
) -> None:
    url = await start()
    session = aiohttp.ClientSession()
    try:
        response = await session.post(
            f"{url}/api/generate", json={"prompt": "x", "provider": "slow"}
        )
        assert response.status == 200
        first = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 5)
        assert b"text_delta" in first
        await asyncio.wait_for(upstream.started.wait(), 5)
        response.close()  # the browser tab closes
    finally:
        await session.close()
    await asyncio.wait_for(upstream.left.wait(), 1.5)


async def test_limits_answer_429_with_retry_after(start: Started, upstream: Upstream) -> None:
    url = await start(max_per_client=1)
    async with aiohttp.ClientSession() as session:
        first = await session.post(f"{url}/api/generate", json={"prompt": "x", "provider": "slow"})
        assert first.status == 200
        await asyncio.wait_for(upstream.started.wait(), 5)
        second = await session.post(f"{url}/api/generate", json={"prompt": "x", "provider": "slow"})
        assert second.status == 429 and second.headers["Retry-After"] == "2"
        assert (await second.json())["error"]["type"] == "RateLimitError"
        upstream.release.set()
        events = parse_sse(await first.text())
        assert events[-1][0] == "done"
        third = await session.post(
            f"{url}/api/generate", json={"prompt": "x", "size": "32x32", "steps": 1}
        )
        assert third.status == 200  # the slot came back
        await third.text()


async def test_quiet_streams_are_pinged(start: Started, upstream: Upstream) -> None:
    url = await start(ping_interval=0.05)
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            f"{url}/api/generate", json={"prompt": "x", "provider": "slow"}
        )
        seen = b""
        async with asyncio.timeout(5):
            while b": ping" not in seen:
                seen += await response.content.readany()
        upstream.release.set()
        assert parse_sse((seen + await response.read()).decode())[-1][0] == "done"


class Flood(Provider):
    """Text as fast as the server takes it; records when its generation is closed."""

    name: ClassVar[str] = "flood"

    def __init__(self) -> None:
        self.closed = asyncio.Event()

    async def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Chunk]:
        try:
            for _ in range(1000):  # bounded: ~1 GB if nothing ever stops it
                yield TextDelta("x" * 1_000_000)
                await asyncio.sleep(0)
        finally:
            self.closed.set()


async def test_a_client_that_stops_reading_is_dropped(start: Started) -> None:
    flood = Flood()
    name = imagestream.register_plugin(imagestream.testing.provider_plugin(flood), "flood-test")
    writer = None
    try:
        url = await start(send_timeout=0.3)
        host, port = url.removeprefix("http://").split(":")
        _, writer = await asyncio.open_connection(host, int(port))
        body = json.dumps({"prompt": "x", "provider": "flood"}).encode()
        writer.write(
            b"POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        # Never read: the socket buffers fill, a write waits past the send timeout, the
        # client is dropped, and its generation is closed with it.
        await asyncio.wait_for(flood.closed.wait(), 20)
    finally:
        if writer is not None:
            writer.close()
        imagestream.unregister_plugin(name)


async def test_a_provider_key_never_reaches_the_client(start: Started, upstream: Upstream) -> None:
    upstream.refuse = True
    url = await start()
    status, _, text = await post(url, {"prompt": "x", "provider": "slow"})
    assert status == 200
    name, data = parse_sse(text)[-1]
    assert name == "error" and data["type"] == "AuthenticationError"
    assert "bad credentials" in data["message"] and PROVIDER_KEY not in text


async def test_progress_without_pictures_is_relayed(start: Started) -> None:
    from imagestream import Progress
    from imagestream.testing import ScriptedProvider

    final = ImageFinal(ImageData.from_bytes(make_image("png")))
    steps = [Progress(fraction=0.0, message="queued"), Progress(fraction=0.6), final]
    plugin = imagestream.testing.provider_plugin(ScriptedProvider("polled", steps))
    name = imagestream.register_plugin(plugin, "polled-test")
    try:
        url = await start()
        status, _, text = await post(url, {"prompt": "x", "provider": "polled"})
    finally:
        imagestream.unregister_plugin(name)
    assert status == 200
    events = parse_sse(text)
    progress = [data for event, data in events if event == "progress"]
    assert [(p["fraction"], p["message"]) for p in progress] == [(0.0, "queued"), (0.6, None)]
    assert events[-1][0] == "done" and events[-1][1]["analytics"]["chunks"]["progress"] == 2
