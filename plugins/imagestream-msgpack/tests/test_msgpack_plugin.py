"""The plugin: registration through the hook, the entry point, a light import."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

import pluggy

import imagestream
import imagestream.hookspecs
import imagestream_msgpack._plugin
from imagestream_msgpack import MsgpackDecoder


def registered_decoders() -> dict[str, Callable[..., Any]]:
    pm = pluggy.PluginManager("imagestream")
    pm.add_hookspecs(imagestream.hookspecs)
    pm.register(imagestream_msgpack._plugin)
    pm.check_pending()  # every hook implementation matches a spec
    found: dict[str, Callable[..., Any]] = {}

    def register(name: str, factory: Callable[..., Any]) -> None:
        assert name not in found
        found[name] = factory

    pm.hook.register_decoders(register=register)
    return found


def test_hook_registers_msgpack(kit: Any) -> None:
    decoders = registered_decoders()
    assert list(decoders) == ["msgpack"]
    decoder = decoders["msgpack"](framing="plain", max_buffer_bytes=1024)
    assert isinstance(decoder, MsgpackDecoder)
    assert decoder.feed(kit.pack({"a": 1})) == [{"a": 1}]
    fresh = decoders["msgpack"]()
    assert fresh is not decoder
    assert fresh.feed(kit.frames({"b": 2})) == [{"b": 2}]


def test_entry_point_is_installed() -> None:
    (ep,) = [ep for ep in entry_points(group="imagestream") if ep.name == "msgpack"]
    assert ep.value == "imagestream_msgpack._plugin"
    assert ep.load() is imagestream_msgpack._plugin


def test_core_finds_it_through_the_entry_point(kit: Any) -> None:
    manager = imagestream.PluginManager(strict=True)
    manager.load_entry_points(allow=["msgpack"])
    decoder = manager.registry.decoder("msgpack", framing="length-prefixed")
    assert decoder.feed(kit.frames([1, 2])) == [[1, 2]]
    assert decoder.close() == []


def test_plugin_import_does_not_load_msgpack() -> None:
    """Plugin discovery stays cheap: msgpack loads with the first decoder."""
    code = (
        "import sys, imagestream_msgpack._plugin\n"
        "assert 'imagestream_msgpack._msgpack' not in sys.modules, 'imported too early'\n"
        "imagestream_msgpack.MsgpackDecoder()\n"
        "assert 'imagestream_msgpack._msgpack' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
