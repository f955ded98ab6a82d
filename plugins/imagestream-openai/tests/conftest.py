"""Fixtures of the OpenAI provider's tests: the local server, plugin set-up, recordings."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import AsyncIterator, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

# The tests run with --import-mode=importlib, which does not put this folder
# on sys.path; the server module is shared by several test files.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _openai_server import OpenAIServer
from _support import KEY, collect

from imagestream.testing import serve_in_thread
from imagestream_openai import RetiredModelWarning


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Versions that change this plugin's behaviour or speed."""
    names = [
        "imagestream-openai",
        "imagestream-sse",
        "aiohttp",
        "openai",
        "orjson",
        "pybase64",
        "pillow",
    ]
    versions = []
    for name in names:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    return ["imagestream-openai: " + ", ".join(versions)]


@pytest.fixture(autouse=True)
def _retired_models_are_expected() -> None:
    # Many tests use gpt-image-1 or DALL-E on purpose (their protocol is still
    # spoken); the warning itself is checked in test_model_table.py.
    warnings.filterwarnings("ignore", category=RetiredModelWarning)


@pytest.fixture(autouse=True)
def _clean_openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's real key, gateway or proxy must never reach these tests,
    # which talk to 127.0.0.1 only.
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)


@pytest.fixture
def plugins(imagestream_plugins: Any) -> Any:
    """Only the built-ins plus this provider and the ``sse`` decoder, for one test."""
    import imagestream_openai._plugin
    import imagestream_sse._plugin

    imagestream_plugins.register(imagestream_sse._plugin, "sse")
    imagestream_plugins.register(imagestream_openai._plugin, "openai")
    return imagestream_plugins


@pytest.fixture
async def server(plugins: Any) -> AsyncIterator[OpenAIServer]:
    """The fake OpenAI server on 127.0.0.1, in the test's event loop."""
    srv = OpenAIServer(KEY)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
def threaded_server(plugins: Any) -> Iterator[OpenAIServer]:
    """The fake server in a thread with its own loop (for code that runs ``asyncio.run``)."""
    with serve_in_thread(OpenAIServer(KEY)) as srv:
        yield srv


@pytest.fixture
def run(server: OpenAIServer) -> Any:
    """``await run(prompt="...", **params)``: the chunks of one stream against the server."""

    async def runner(prompt: str = "a lighthouse at dusk", **params: Any) -> list[Any]:
        return await collect(server, prompt, **params)

    return runner


def _shared_fixtures() -> Path | None:
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "core" / "imagestream").is_dir():
            candidate = parent.parent / "shared" / "fixtures"
            return candidate if candidate.is_dir() else None
    return None


@pytest.fixture
def recordings() -> Path:
    """The folder of recorded OpenAI traffic shared by the project (skips if absent)."""
    folder = _shared_fixtures()
    if folder is None or not (folder / "openai").is_dir():
        pytest.skip("the shared recordings folder (../shared/fixtures) is not present")
    return folder / "openai"
