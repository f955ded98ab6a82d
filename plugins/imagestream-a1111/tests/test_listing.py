"""Listing the provider: registered lazily, its models the server's, its login read only if asked."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from imagestream import Provider
from imagestream.provider import LazyProvider
from imagestream_a1111 import _plugin, _server

from .conftest import CHECKPOINTS, FakeWebUI

LOGIN = "alice:pw-123456"


def _logins(server: FakeWebUI) -> list[str | None]:
    """The login each ``GET /sdapi/v1/sd-models`` carried."""
    sent = []
    for method, path, headers, _ in server.requests:
        if method == "GET" and path.startswith("/sdapi/v1/sd-models"):
            value = headers.get("Authorization")
            sent.append(base64.b64decode(value.split()[1]).decode() if value else None)
    return sent


@pytest.fixture
def listing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No login in the environment, an empty key store of its own, nothing found before."""
    for name in ("A1111_BASE_URL", "A1111_API_AUTH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IMAGESTREAM_CONFIG_DIR", str(tmp_path))
    monkeypatch.setattr(_server, "_cache", {})
    return tmp_path / "keys.json"


def test_registered_lazily_as_its_class_says(
    listing: Path, webui_thread_server: FakeWebUI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("A1111_BASE_URL", webui_thread_server.base_url)
    registered: list[Provider] = []
    _plugin.register_providers(registered.append)
    [listed] = registered
    assert isinstance(listed, LazyProvider) and not listed.loaded
    assert [(m.id, m.description) for m in listed.models] == [
        (c["model_name"], c["title"]) for c in CHECKPOINTS
    ]
    assert listed.streams_previews and listed.max_concurrency == 1 and not listed.loaded
    listed.check()


def test_the_login_of_a1111_api_auth_is_sent_at_once(
    listing: Path, webui_thread_server: FakeWebUI, monkeypatch: pytest.MonkeyPatch
) -> None:
    webui_thread_server.script.credentials = LOGIN
    monkeypatch.setenv("A1111_BASE_URL", webui_thread_server.base_url)
    monkeypatch.setenv("A1111_API_AUTH", LOGIN)
    assert len(_server.server_models()) == len(CHECKPOINTS)
    assert _logins(webui_thread_server) == [LOGIN]


def test_a_login_in_the_url_wins(
    listing: Path, webui_thread_server: FakeWebUI, monkeypatch: pytest.MonkeyPatch
) -> None:
    webui_thread_server.script.credentials = LOGIN
    url = webui_thread_server.base_url.replace("http://", "http://alice:pw-123456@")
    monkeypatch.setenv("A1111_BASE_URL", url)
    monkeypatch.setenv("A1111_API_AUTH", "mallory:wrong")
    assert len(_server.server_models()) == len(CHECKPOINTS)
    assert _logins(webui_thread_server) == [LOGIN]


def test_the_stored_login_is_read_when_the_server_asks_for_one(
    listing: Path, webui_thread_server: FakeWebUI, monkeypatch: pytest.MonkeyPatch
) -> None:
    listing.write_text(json.dumps({"a1111": LOGIN}), encoding="utf-8")
    webui_thread_server.script.credentials = LOGIN
    monkeypatch.setenv("A1111_BASE_URL", webui_thread_server.base_url)
    assert len(_server.server_models()) == len(CHECKPOINTS)
    assert _logins(webui_thread_server) == [None, LOGIN]


def test_the_key_store_stays_unread_when_no_login_is_needed(
    listing: Path, webui_thread_server: FakeWebUI, monkeypatch: pytest.MonkeyPatch
) -> None:
    listing.write_text("not a key store", encoding="utf-8")  # reading it would fail
    monkeypatch.setenv("A1111_BASE_URL", webui_thread_server.base_url)
    assert len(_server.server_models()) == len(CHECKPOINTS)
    webui_thread_server.script.credentials = LOGIN  # now it is read, and fails: no models
    monkeypatch.setattr(_server, "_cache", {})
    assert _server.server_models() == ()


def test_providers_lists_with_the_stored_login_and_never_shows_it(
    listing: Path, webui_thread_server: FakeWebUI
) -> None:
    listing.write_text(json.dumps({"a1111": LOGIN}), encoding="utf-8")
    webui_thread_server.script.credentials = LOGIN
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGESTREAM_", "A1111_"))}
    env.update(
        IMAGESTREAM_LOAD_PLUGINS="a1111",
        IMAGESTREAM_CONFIG_DIR=str(listing.parent),
        A1111_BASE_URL=webui_thread_server.base_url,
    )
    done = subprocess.run(
        [sys.executable, "-m", "imagestream", "providers"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    for checkpoint in CHECKPOINTS:
        assert f"  {checkpoint['model_name']}  previews  {checkpoint['title']}" in done.stdout
    assert "pw-123456" not in done.stdout + done.stderr
