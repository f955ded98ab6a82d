"""The web page in a real browser: Debian's Chromium driven by Playwright.

The servers run in an event loop on a background thread while the sync
Playwright API drives the page from the test's thread: the procedural
provider for live previews, a test provider streaming from a slow local
upstream for Cancel, and a second app with a token for the token dialog.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest
from aiohttp import web

import imagestream
from imagestream.provider import (
    Chunk,
    ImageData,
    ImageFinal,
    ImagePreview,
    ImageRequest,
    ModelInfo,
    Provider,
    RunContext,
    TextDelta,
    stream_events,
)
from imagestream.testing import make_image, provider_plugin
from imagestream_server import ServerConfig, make_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright)"
    if not CHROMIUM.exists():
        return f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    return None


if (_reason := _missing()) is not None:
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the browser tests: {_reason}", pytrace=False)
    pytest.skip(_reason, allow_module_level=True)

from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright  # noqa: E402

TOKEN = "page-token-0123456789"
WAIT_MS = 20_000
"""Longest any one page condition is waited for."""
SCREENSHOT = Path(tempfile.gettempdir()) / "imagestream-page.png"
"""One screenshot of a finished run, kept after the tests for a person to look at."""

T = TypeVar("T")


# -- servers on a background loop ---------------------------------------------------------


class Loop:
    """An event loop on its own thread: the servers answer while the browser waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 15) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.run(self.loop.shutdown_asyncgens(), timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()


async def _serve(app: web.Application, runners: list[web.AppRunner], **options: Any) -> str:
    runner = web.AppRunner(app, shutdown_timeout=1.0, **options)
    await runner.setup()
    runners.append(runner)
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return f"http://{host}:{port}"


class Upstream:
    """A slow provider API: one partial image every 100 ms; notes when its client leaves."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.left = threading.Event()
        self.left_at = 0.0

    async def drip(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        self.started.set()
        try:
            for index in range(600):  # a minute at most: the test cancels long before
                image = ImageData.from_bytes(make_image("png", variant=index % 7, width=96)).b64
                await response.write(
                    f"data: {json.dumps({'index': index, 'b64': image})}\n\n".encode()
                )
                await asyncio.sleep(0.1)
        except (ConnectionError, asyncio.CancelledError):
            self.left_at = time.monotonic()
            self.left.set()
            raise
        return response


class Drip(Provider):
    """Partial images from the slow upstream, through the provider kit's ``stream_events``."""

    name: ClassVar[str] = "drip"
    description: ClassVar[str] = "test: partial images from a slow local upstream"
    models: ClassVar[tuple[ModelInfo, ...]] = (
        ModelInfo("drip-1", "a partial image every 100 ms", streams_previews=True),
    )
    default_model: ClassVar[str | None] = "drip-1"

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream

    async def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Chunk]:
        yield TextDelta("Planning a slow picture.", thought=True)
        yield TextDelta("Here it comes, bit by bit.")
        events = stream_events(
            context,
            "GET",
            f"{self.upstream}/drip",
            provider=self.name,
            decoder=context.get_decoder("sse"),
            content_types=("text/event-stream",),
        )
        async with contextlib.aclosing(events):
            async for event in events:
                data = json.loads(event.data)
                yield ImagePreview(
                    ImageData.from_base64(data["b64"], "image/png"), index=data["index"]
                )
        yield ImageFinal(ImageData.from_bytes(make_image("png")), mime_type="image/png")


class Servers:
    """The page's server (open), the same with a token, and the slow upstream."""

    def __init__(
        self, url: str, token_url: str, relay_url: str, upstream: Upstream, out_dir: Path
    ) -> None:
        self.url = url
        self.token_url = token_url
        self.relay_url = relay_url  # started with save=False: keeps no images
        self.upstream = upstream
        self.out_dir = out_dir


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    loop = Loop()
    runners: list[web.AppRunner] = []
    plugin_name: str | None = None
    try:
        upstream = Upstream()
        upstream_app = web.Application()
        upstream_app.router.add_get("/drip", upstream.drip)
        upstream_url = loop.run(_serve(upstream_app, runners, handler_cancellation=True))
        plugin_name = imagestream.register_plugin(provider_plugin(Drip(upstream_url)), "drip-test")
        out_dir = tmp_path_factory.mktemp("page-out")
        # No handler cancellation, as in production: the server notices a departed client itself.
        url = loop.run(_serve(make_app(ServerConfig(port=0, out_dir=out_dir)), runners))
        token_app = make_app(
            ServerConfig(port=0, out_dir=tmp_path_factory.mktemp("token-out"), token=TOKEN)
        )
        token_url = loop.run(_serve(token_app, runners))
        relay_app = make_app(
            ServerConfig(port=0, out_dir=tmp_path_factory.mktemp("relay-out"), save=False)
        )
        relay_url = loop.run(_serve(relay_app, runners))
        yield Servers(url, token_url, relay_url, upstream, out_dir)
    finally:
        for runner in reversed(runners):
            with contextlib.suppress(Exception):
                loop.run(runner.cleanup())
        if plugin_name is not None:
            imagestream.unregister_plugin(plugin_name)
        loop.close()


# -- the browser --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, timeout=30_000
        )
        try:
            yield browser
        finally:
            browser.close()


class Console:
    """What the page logged as an error, and any uncaught exception."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", self._message)
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))

    def _message(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def assert_clean(self, *statuses: int) -> None:
        """No errors but the browser's own note of an HTTP status the test expects."""
        expected = "|".join(str(status) for status in statuses) or "none"
        allowed = re.compile(rf"Failed to load resource: .*status of ({expected})\b")
        unexpected = [text for text in self.errors if not allowed.search(text)]
        assert not unexpected, unexpected


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh tab (its own session storage) with bounded waits."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light")
    context.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def open_page(page: Page, url: str) -> Console:
    console = Console(page)
    page.goto(url)
    expect(page.locator("#provider")).to_have_value("procedural")
    return console


def watch_sources(page: Page) -> None:
    """Record every ``src`` change of the result image (observers run later, in batches:
    each record's old value says what the image showed before that change)."""
    page.evaluate(
        """() => {
            window.replaced = [];
            new MutationObserver((records) => {
                for (const record of records) window.replaced.push(record.oldValue);
            }).observe(document.querySelector('#results'),
                       { subtree: true, attributeFilter: ['src'], attributeOldValue: true });
        }"""
    )


def sources(page: Page) -> list[str]:
    """Every ``src`` the single result image has had, in order."""
    return list(
        page.evaluate(
            "[...window.replaced.slice(1), document.querySelector('#results img.live').src]"
        )
    )


def ask(page: Page, prompt: str, *, size: str = "256x256", steps: str = "20") -> None:
    page.select_option("#size", "custom")
    page.fill("#size-custom", size)
    page.fill("#steps", steps)
    page.fill("#prompt", prompt)
    page.press("#prompt", "Enter")


def blob_alive(page: Page, url: str) -> bool:
    """Whether an object URL still resolves (a revoked one does not)."""
    return bool(
        page.evaluate(
            "async (url) => { try { await (await fetch(url)).blob(); return true; }"
            " catch { return false; } }",
            url,
        )
    )


# -- the tests ----------------------------------------------------------------------------


def test_previews_stream_into_the_page_then_the_final_image(
    servers: Servers, page: Page, tmp_path: Path
) -> None:
    console = open_page(page, servers.url)
    expect(page.locator("#model")).to_have_value("procedural-1")
    expect(page.locator("#model-info")).to_contain_text("Live previews")
    watch_sources(page)
    page.fill("#seed", "7")
    ask(page, "a blue square on yellow")
    expect(page.locator("#status")).to_have_text(re.compile(r"^Done"))
    previews = int(page.locator("#results").get_attribute("data-previews") or 0)
    assert previews == 20  # one per sampler step
    assert page.evaluate("window.replaced[0]") is None  # the image had no picture before
    srcs = sources(page)
    # Every preview, then the final image, then the saved file fetched for its download link.
    assert len(srcs) >= 6 and len(set(srcs)) == len(srcs), srcs
    assert all(src.startswith("blob:") for src in srcs)

    final = page.locator("#results img.live")
    expect(final).to_have_count(1)
    expect(final).to_have_js_property("naturalWidth", 256)
    expect(page.locator("#progress")).to_have_attribute("aria-valuenow", "100")
    expect(page.locator("#text")).not_to_be_empty()
    expect(page.locator("#usage")).to_be_visible()
    expect(page.locator("#results figcaption")).to_contain_text("seed 7")
    expect(page.locator("#cancel")).to_be_disabled()
    expect(page.locator("#error")).to_be_hidden()

    # The download link holds the saved file itself, fetched as a blob.
    link = page.locator("#results a[download]")
    expect(link).to_have_attribute("href", re.compile(r"^blob:"))
    with page.expect_download(timeout=WAIT_MS) as info:
        link.click()
    saved = servers.out_dir / info.value.suggested_filename
    assert Path(info.value.path()).read_bytes() == saved.read_bytes()

    # The gallery shows the run, its thumbnail fetched as a blob too.
    thumb = page.locator("#gallery img").first
    expect(thumb).to_have_attribute("src", re.compile(r"^blob:"))
    expect(thumb).to_have_js_property("naturalWidth", 256)

    page.screenshot(path=tmp_path / "page.png", full_page=True)
    page.screenshot(path=SCREENSHOT, full_page=True)
    console.assert_clean()
    # Replaced pictures are freed: the first preview's object URL is gone (last:
    # the browser logs the failed fetch as an error).
    assert not blob_alive(page, srcs[0])
    assert blob_alive(page, srcs[-1])


def test_a_server_that_keeps_nothing_offers_the_shown_image_for_download(
    servers: Servers, page: Page
) -> None:
    console = open_page(page, servers.relay_url)
    ask(page, "a green triangle", size="64x48", steps="3")
    expect(page.locator("#status")).to_have_text(re.compile(r"^Done"))
    link = page.locator("#results a[download]")
    expect(link).to_have_count(1)
    expect(link).to_have_attribute("href", re.compile(r"^blob:"))
    with page.expect_download(timeout=WAIT_MS) as info:
        link.click()
    assert info.value.suggested_filename == "imagestream-1.png"
    data = Path(info.value.path()).read_bytes()
    assert ImageData.from_bytes(data).mime_type == "image/png"
    console.assert_clean()


def test_cancel_stops_the_upstream(servers: Servers, page: Page, tmp_path: Path) -> None:
    console = open_page(page, servers.url)
    page.select_option("#provider", "drip")
    expect(page.locator("#model")).to_have_value("drip-1")
    page.fill("#prompt", "a slow picture")
    page.click("#generate")
    page.wait_for_function("Number(document.querySelector('#results').dataset.previews) >= 3")
    assert servers.upstream.started.is_set() and not servers.upstream.left.is_set()
    expect(page.locator("#progress")).to_have_class(re.compile("indeterminate"))
    # The model's reasoning is kept apart from its answer, folded away.
    expect(page.locator("#text")).to_have_text("Here it comes, bit by bit.")
    expect(page.locator("#thoughts")).to_be_visible()
    expect(page.locator("#thoughts")).not_to_have_attribute("open", "")
    expect(page.locator("#thought-text")).to_be_hidden()
    page.click("#thoughts summary")
    expect(page.locator("#thought-text")).to_have_text("Planning a slow picture.")
    page.screenshot(path=tmp_path / "running.png")

    expect(page.locator("#generate")).to_be_disabled()
    expect(page.locator("#cancel")).to_be_enabled()
    page.click("#cancel")
    pressed = time.monotonic()
    assert servers.upstream.left.wait(5), "the upstream still streams after Cancel"
    assert servers.upstream.left_at - pressed < 3
    expect(page.locator("#status")).to_have_text("Cancelled")
    expect(page.locator("#cancel")).to_be_disabled()
    expect(page.locator("#generate")).to_be_enabled()
    expect(page.locator("#error")).to_be_hidden()
    console.assert_clean()


def test_errors_are_one_clear_line(servers: Servers, page: Page) -> None:
    console = open_page(page, servers.url)
    error = page.locator("#error")

    # Refused by the provider, inside the stream.
    page.click(".advanced summary")
    page.fill("#options", '{"nosuch": 1}')
    ask(page, "a red circle", steps="4")
    expect(error).to_be_visible()
    expect(error).to_contain_text(re.compile(r"^\w+Error: .*unknown option.*nosuch.* — "))
    expect(page.locator("#status")).to_have_text("Failed")
    expect(page.locator("#generate")).to_be_enabled()

    # Refused by the server before streaming: an HTTP error with a JSON body.
    page.fill("#options", "")
    ask(page, "a red circle", steps="-1")
    expect(error).to_contain_text(re.compile(r"^ValidationError: .*steps"))

    # Caught in the page: options that are not JSON never reach the server.
    page.fill("#options", "{nosuch")
    ask(page, "a red circle", steps="4")
    expect(error).to_contain_text("provider options are not JSON")
    console.assert_clean(400)


def test_a_server_with_a_token_asks_for_it_once(servers: Servers, page: Page) -> None:
    console = Console(page)
    page.goto(servers.token_url)
    dialog = page.locator("#token-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#token-error")).to_be_hidden()

    page.fill("#token-input", "not-the-token")
    page.press("#token-input", "Enter")
    expect(page.locator("#token-error")).to_have_text(re.compile("refused"))
    expect(dialog).to_be_visible()
    page.fill("#token-input", TOKEN)
    page.click("#token-dialog button.primary")
    expect(dialog).to_be_hidden()
    expect(page.locator("#provider")).to_have_value("procedural")
    assert page.evaluate("sessionStorage.getItem('imagestream.token')") == TOKEN

    ask(page, "a simple red circle", size="128x128", steps="6")
    expect(page.locator("#status")).to_have_text(re.compile(r"^Done"))
    expect(page.locator("#results a[download]")).to_have_attribute("href", re.compile(r"^blob:"))
    expect(page.locator("#gallery img").first).to_have_js_property("naturalWidth", 128)

    # The tab keeps the token: a reload asks nothing.
    page.reload()
    expect(page.locator("#provider")).to_have_value("procedural")
    expect(dialog).to_be_hidden()
    expect(page.locator("#gallery img").first).to_have_attribute("src", re.compile(r"^blob:"))
    console.assert_clean(401)
