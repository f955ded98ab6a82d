"""Listing the provider: registered lazily, its models the server's checkpoints, asked for briefly."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest

from imagestream import Provider
from imagestream.provider import LazyProvider
from imagestream_comfyui import _plugin, _server

from .conftest import CHECKPOINTS, FakeComfyUI

LISTING = "/object_info/CheckpointLoaderSimple"


def _asked(server: FakeComfyUI) -> int:
    return sum(
        1
        for method, path, _ in server.requests
        if method == "GET" and path.partition("?")[0] == LISTING
    )


def test_registered_lazily_as_its_class_says(
    comfy_thread_server: FakeComfyUI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMFYUI_BASE_URL", comfy_thread_server.base_url)
    registered: list[Provider] = []
    _plugin.register_providers(registered.append)
    [listed] = registered
    assert isinstance(listed, LazyProvider) and not listed.loaded
    assert [model.id for model in listed.models] == CHECKPOINTS
    assert listed.streams_previews and not listed.loaded
    listed.check()  # the class, asked with the same server, says the same


def test_the_list_is_asked_for_once_in_a_while(
    comfy_thread_server: FakeComfyUI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMFYUI_BASE_URL", comfy_thread_server.base_url + "/")
    first = _server.server_models()
    assert [model.id for model in first] == CHECKPOINTS
    assert all(model.streams_previews for model in first)
    assert _server.server_models() == first and _asked(comfy_thread_server) == 1
    monkeypatch.setattr(_server, "CACHE_SECONDS", 0.0)
    assert _server.server_models() == first and _asked(comfy_thread_server) == 2


def test_inside_an_event_loop_only_what_was_found(
    comfy_thread_server: FakeComfyUI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMFYUI_BASE_URL", comfy_thread_server.base_url + "/?inside=1")

    async def listed() -> Any:
        return _server.server_models()

    assert asyncio.run(listed()) == () and _asked(comfy_thread_server) == 0  # never blocks a loop
    _server.server_models()
    monkeypatch.setattr(_server, "CACHE_SECONDS", 0.0)  # stale, but what there is
    assert [model.id for model in asyncio.run(listed())] == CHECKPOINTS
    assert _asked(comfy_thread_server) == 1


def test_no_server_no_models_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("COMFYUI_BASE_URL", f"http://127.0.0.1:{port}")
    started = time.monotonic()
    assert _server.server_models() == ()
    assert time.monotonic() - started < 0.5


def test_a_server_without_the_node_lists_nothing(
    comfy_thread_server: FakeComfyUI, monkeypatch: pytest.MonkeyPatch
) -> None:
    comfy_thread_server.checkpoints = []
    monkeypatch.setenv("COMFYUI_BASE_URL", comfy_thread_server.base_url + "/?empty=1")
    assert _server.server_models() == ()
