"""A test kit for plugin authors (and imagestream's own tests).

Installed as a pytest plugin (entry point ``pytest11``), so with imagestream
installed these fixtures are simply there:

``imagestream_plugins``
    A :class:`PluginHarness` over a fresh global plugin manager that loads only
    the built-ins: register your plugin, run a stream, and everything is undone
    after the test. ::

        def test_my_provider(imagestream_plugins):
            imagestream_plugins.register(my_plugin_module)
            chunks = imagestream_plugins.run("a red circle", provider="mine")
            assert isinstance(chunks[-1], imagestream.Usage)

Helpers usable anywhere: :func:`make_png` (a real PNG without Pillow),
:func:`make_image` (a real PNG, JPEG or WebP with Pillow),
:class:`ScriptedProvider` (a provider that plays back given chunks) and
:class:`FaultServer` (a local HTTP server that plays scripted :class:`Reply`
objects with faults: resets, stalls, trickles, truncated bodies, 429s with
``Retry-After``, 5xx, HTML pages) to check a network provider against the
failures of real networks. ::

    async with FaultServer(Reply.rate_limited(0.1, "ms"), good_reply) as server:
        result = await imagestream.agenerate("a fox", provider="mine", base_url=server.url)
    assert len(server.requests) == 2
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from typing import Any

import pytest

from ._chunks import Chunk
from ._context import RunContext
from ._faults import FaultServer, RecordedRequest, Reply, WebSocketReply, retry_after
from ._plugins import get_plugin_manager, register_plugin, reset_plugin_manager, unregister_plugin
from ._provider import Provider, ProviderResponse
from ._request import ImageRequest
from ._testkit import run_in_terminal, serve_in_thread
from .hookspecs import hookimpl

__all__ = [
    "FaultServer",
    "PluginHarness",
    "RecordedRequest",
    "Reply",
    "ScriptedProvider",
    "WebSocketReply",
    "chunks_of",
    "imagestream_plugins",
    "make_image",
    "make_png",
    "provider_plugin",
    "retry_after",
    "run_in_terminal",
    "serve_in_thread",
]


def make_png(width: int = 8, height: int = 8, rgb: tuple[int, int, int] = (255, 0, 0)) -> bytes:
    """A valid, solid-colour RGB PNG of the given size, made with zlib only."""

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


_PILLOW_FORMATS = {"png": "PNG", "jpeg": "JPEG", "jpg": "JPEG", "webp": "WEBP"}
_made: dict[tuple[str, int, int, int], bytes] = {}


def make_image(kind: str = "png", variant: int = 0, width: int = 64, height: int = 48) -> bytes:
    """A real image file drawn with Pillow: ``png``, ``jpeg`` or ``webp`` (or their MIME types).

    Different ``variant`` numbers give different pictures (so tests can tell
    images apart by their bytes); the same arguments give the same bytes,
    made once and cached. Test servers that emulate a provider use it for
    the images they send.

    Raises:
        ValueError: An image type Pillow is not asked to write here.
        ImportError: Pillow is not installed (``pip install pillow``).
    """
    fmt = kind.removeprefix("image/").lower()
    if fmt not in _PILLOW_FORMATS:
        raise ValueError(f"make_image makes png, jpeg or webp, not {kind!r}")
    key = (fmt, variant, width, height)
    if key not in _made:
        import io

        from PIL import Image, ImageDraw

        mode = "RGB" if _PILLOW_FORMATS[fmt] == "JPEG" else "RGBA"
        image = Image.new(mode, (width, height), (20 * variant % 256, 90, 200 - 30 * variant % 200))
        draw = ImageDraw.Draw(image)
        draw.rectangle(
            (4 + variant, 4, width // 2 + variant, height - 6), fill=(250, 200, 40 * variant % 256)
        )
        draw.ellipse(
            (width // 2, 6, width - 4, height // 2 + 4), fill=(10, 240 - 40 * variant % 240, 90)
        )
        out = io.BytesIO()
        image.save(out, _PILLOW_FORMATS[fmt])
        _made[key] = out.getvalue()
    return _made[key]


class ScriptedProvider(Provider):
    """A provider that streams the chunks it was given (or returns a response).

    Args:
        name: Provider name.
        chunks: What :meth:`stream` yields; each item may be a chunk or an
            exception to raise at that point.
        response: If given instead, the provider only generates (fake streaming).
    """

    def __init__(
        self,
        name: str = "scripted",
        chunks: Sequence[Chunk | BaseException] = (),
        response: ProviderResponse | None = None,
    ) -> None:
        self.name = name  # type: ignore[misc]
        self._chunks = list(chunks)
        self._response = response
        self.requests: list[ImageRequest] = []
        self.closed = 0

    @property
    def can_stream(self) -> bool:
        return self._response is None

    @property
    def can_generate(self) -> bool:
        return self._response is not None

    async def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Chunk]:
        self.requests.append(request)
        try:
            for item in self._chunks:
                if isinstance(item, BaseException):
                    raise item
                await asyncio.sleep(0)
                yield item
        finally:
            self.closed += 1

    async def generate(self, request: ImageRequest, context: RunContext) -> ProviderResponse:
        self.requests.append(request)
        assert self._response is not None
        return self._response


def provider_plugin(*providers: Provider) -> object:
    """A plugin object that registers the given providers."""

    class _Plugin:
        @hookimpl
        def register_providers(self, register: Callable[[Provider], None]) -> None:
            for provider in providers:
                register(provider)

    return _Plugin()


class PluginHarness:
    """Registers plugins for one test and runs streams through them."""

    def __init__(self) -> None:
        self._names: list[str] = []

    def register(self, plugin: object, name: str | None = None) -> str:
        """Register a plugin (module or object) until the end of the test."""
        registered = register_plugin(plugin, name)
        self._names.append(registered)
        return registered

    def register_provider(self, *providers: Provider) -> str:
        """Register providers directly, without writing a plugin."""
        return self.register(provider_plugin(*providers), f"providers-{len(self._names)}")

    @property
    def manager(self) -> Any:
        """The global plugin manager the harness registers into."""
        return get_plugin_manager()

    async def arun(self, prompt: str, **params: Any) -> list[Chunk]:
        """Run a stream to the end and return its chunks."""
        from ._api import stream

        return [chunk async for chunk in stream(prompt, **params)]

    def run(self, prompt: str, **params: Any) -> list[Chunk]:
        """:meth:`arun` from synchronous tests."""
        return asyncio.run(self.arun(prompt, **params))

    def close(self) -> None:
        """Unregister everything this harness registered."""
        for name in reversed(self._names):
            unregister_plugin(name)
        self._names.clear()


@pytest.fixture
def imagestream_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[PluginHarness]:
    """A fresh global plugin manager with only the built-ins, for one test."""
    monkeypatch.setenv("IMAGESTREAM_LOAD_PLUGINS", "")
    monkeypatch.delenv("IMAGESTREAM_DISABLE_PLUGINS", raising=False)
    reset_plugin_manager()
    harness = PluginHarness()
    try:
        yield harness
    finally:
        harness.close()
        reset_plugin_manager()


def chunks_of(kind: type[Any], chunks: Iterable[Chunk]) -> list[Any]:
    """The chunks of one type, in order."""
    return [chunk for chunk in chunks if isinstance(chunk, kind)]
