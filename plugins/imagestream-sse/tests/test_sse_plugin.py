"""The plugin: hook registration, the installed entry point, and a light import."""

from __future__ import annotations

import importlib.metadata
import inspect
import subprocess
import sys
from typing import Any

import pluggy
import pytest

import imagestream
import imagestream.hookspecs
import imagestream_sse._plugin
from imagestream.errors import ConfigurationError
from imagestream_sse import SSEDecoder


def test_registers_the_sse_decoder_through_the_hook() -> None:
    pm = pluggy.PluginManager("imagestream")
    pm.add_hookspecs(imagestream.hookspecs)
    pm.register(imagestream_sse._plugin)
    pm.check_pending()
    registered: dict[str, Any] = {}
    pm.hook.register_decoders(register=registered.__setitem__)
    assert set(registered) == {"sse"}
    factory = registered["sse"]
    decoder = factory(max_line_bytes=1_000, max_event_bytes=500)
    assert isinstance(decoder, SSEDecoder)
    assert [e.data for e in decoder.feed(b"data: hi\n\n")] == ["hi"]
    assert decoder.close() == []
    assert factory() is not factory()  # a fresh decoder each time


def test_entry_point_is_installed() -> None:
    found = [ep for ep in importlib.metadata.entry_points(group="imagestream") if ep.name == "sse"]
    assert [ep.value for ep in found] == ["imagestream_sse._plugin"]
    assert found[0].load() is imagestream_sse._plugin


def test_get_decoder_finds_it() -> None:
    get_decoder = getattr(imagestream, "get_decoder", None)
    if get_decoder is None:
        pytest.skip("the core does not expose imagestream.get_decoder yet")
    decoder = get_decoder("sse", max_event_bytes=1_000)
    assert [e.data for e in decoder.feed(b"data: hi\n\n")] == ["hi"]


def test_plugin_import_stays_light() -> None:
    heavy = ["aiohttp", "openai", "httpx", "yaml", "hypothesis", "rich", "click"]
    code = (
        "import sys, imagestream_sse._plugin; "
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


def test_factory_names_unknown_options() -> None:
    with pytest.raises(ConfigurationError, match="max_lines") as caught:
        imagestream_sse._plugin.make_decoder(max_lines=3)
    assert "max_line_bytes" in str(caught.value)


def test_factory_knows_every_decoder_option() -> None:
    params = inspect.signature(SSEDecoder).parameters
    assert sorted(params) == sorted(imagestream_sse._plugin.OPTIONS)
