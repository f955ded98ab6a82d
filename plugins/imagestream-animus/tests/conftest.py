"""Fixtures of the Animus plugin's tests: the local server, a token cache with a clock the test moves."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

# The tests run with --import-mode=importlib, which does not put this folder
# on sys.path; the server is shared by several test files.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _animus_server import AnimusServer, Clock

from imagestream_animus import DEFAULT_AUTH, AnimusAuth


@pytest.fixture(autouse=True)
def _clean_animus_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's real key or token must never reach these tests, which talk to 127.0.0.1 only.
    for name in ("ANIMUS_API_KEY", "ANIMUS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    DEFAULT_AUTH.clear()


@pytest.fixture
async def server() -> AsyncIterator[AnimusServer]:
    async with AnimusServer() as running:
        yield running


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def auth(clock: Clock) -> AnimusAuth:
    return AnimusAuth(clock=clock)
