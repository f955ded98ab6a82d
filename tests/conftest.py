"""Shared test set-up for the core tests."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import metadata

import pytest
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Serve = Callable[[Handler], Awaitable[str]]
"""``await serve(handler)`` starts a local server for one handler and returns its base URL."""


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Print the versions that matter for reproducing a failure."""
    names = [
        "imagestream",
        "pluggy",
        "attrs",
        "cattrs",
        "aiohttp",
        "msgpack",
        "click",
        "pillow",
        "openai",
    ]
    versions = []
    for name in names:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    return [f"python {sys.version.split()[0]}; " + ", ".join(versions)]


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client trusts the environment; keep proxies away from 127.0.0.1."""
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start local servers for one handler each; every one is stopped afterwards."""
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app, shutdown_timeout=1.0, handler_cancellation=True)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    try:
        yield start
    finally:
        for runner in runners:
            await runner.cleanup()
