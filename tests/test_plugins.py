"""The plugin manager: built-ins, hook-name checks, strict mode, registration clashes."""

from __future__ import annotations

from typing import Any

import pytest

import imagestream
from imagestream._plugins import PluginManager, PluginWarning, reset_plugin_manager
from imagestream.testing import ScriptedProvider, provider_plugin


class Misspelled:
    @imagestream.hookimpl
    def on_chunkk(self, chunk: Any, context: Any) -> None:  # the typo is the point
        pass


class WrongArgs:
    @imagestream.hookimpl
    def on_chunk(self, chunk: Any, context: Any, extra: Any) -> None:
        pass


def test_builtins_are_ordinary_plugins() -> None:
    manager = PluginManager()
    manager.add_builtins()
    infos = {info.name: info for info in manager.plugin_infos()}
    assert set(infos) == {
        "native",
        "fake_streaming",
        "validation",
        "analytics",
        "filesystem",
        "cache",
        "log",
    }
    assert all(info.builtin and info.status == "loaded" for info in infos.values())
    assert infos["analytics"].hooks == ("on_chunk", "on_error", "on_request", "on_result")


def test_builtins_can_be_disabled() -> None:
    manager = PluginManager()
    manager.add_builtins(disabled=["validation", "analytics"])
    statuses = {info.name: info.status for info in manager.plugin_infos()}
    assert statuses["validation"] == "disabled"
    assert statuses["analytics"] == "disabled"
    assert manager.get_plugin("validation") is None


@pytest.mark.parametrize("plugin", [Misspelled(), WrongArgs()], ids=["misspelled", "wrong-args"])
def test_invalid_hooks_are_reported_not_registered(plugin: object) -> None:
    manager = PluginManager()
    with pytest.warns(PluginWarning, match="broken"):
        assert manager.add_plugin(plugin, "broken") is False
    assert manager.get_plugin("broken") is None
    (info,) = manager.plugin_infos()
    assert info.status == "failed"
    assert info.error


def test_strict_mode_raises_with_the_plugin_name() -> None:
    manager = PluginManager(strict=True)
    with pytest.raises(imagestream.PluginLoadError, match="'broken'"):
        manager.add_plugin(Misspelled(), "broken")


def test_provider_name_clash_names_both_plugins() -> None:
    manager = PluginManager(strict=True)
    manager.add_plugin(provider_plugin(ScriptedProvider("same")), "first")
    manager.add_plugin(provider_plugin(ScriptedProvider("same")), "second")
    with pytest.raises(imagestream.PluginLoadError, match="first.*second|second.*first"):
        manager.registry.providers  # noqa: B018


def test_clash_in_lenient_mode_keeps_the_first_and_warns() -> None:
    manager = PluginManager()
    first = ScriptedProvider("same")
    manager.add_plugin(provider_plugin(first), "first")
    manager.add_plugin(provider_plugin(ScriptedProvider("same")), "second")
    with pytest.warns(PluginWarning, match="second"):
        assert manager.registry.provider("same") is first


def test_invalid_provider_name_is_refused() -> None:
    manager = PluginManager(strict=True)
    manager.add_plugin(provider_plugin(ScriptedProvider("Bad Name")), "bad")
    with pytest.raises(imagestream.PluginLoadError, match="invalid name"):
        manager.registry.providers  # noqa: B018


def test_registry_refreshes_when_plugins_change() -> None:
    manager = PluginManager()
    assert manager.registry.providers == {}
    manager.add_plugin(provider_plugin(ScriptedProvider("late")), "late")
    assert "late" in manager.registry.providers


def test_unknown_decoder_lists_installed_ones() -> None:
    manager = PluginManager()

    class Decoders:
        @imagestream.hookimpl
        def register_decoders(self, register: Any) -> None:
            register("lines", lambda **_: None)

    manager.add_plugin(Decoders(), "decoders")
    with pytest.raises(imagestream.UnknownDecoderError, match="installed: lines"):
        manager.registry.decoder("ndjson")


def test_allow_list_empty_loads_no_installed_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGESTREAM_LOAD_PLUGINS", "")
    reset_plugin_manager()
    try:
        infos = imagestream.get_plugin_manager().plugin_infos()
        assert all(info.builtin for info in infos)
    finally:
        reset_plugin_manager()


def test_register_plugin_at_runtime_is_strict(imagestream_plugins: Any) -> None:
    with pytest.raises(imagestream.PluginLoadError):
        imagestream.register_plugin(Misspelled(), "typo")
    assert imagestream.get_plugin_manager().get_plugin("typo") is None


class ChunkWrapper:
    @imagestream.hookimpl(wrapper=True)
    def on_chunk(self, chunk: Any, context: Any) -> Any:
        return (yield)


def test_wrappers_are_refused_on_hooks_the_core_chains() -> None:
    manager = PluginManager(strict=True)
    with pytest.raises(imagestream.PluginLoadError, match="cannot be a wrapper"):
        manager.add_plugin(ChunkWrapper(), "wrapper")


async def test_implementations_may_take_a_subset_of_the_arguments() -> None:
    from imagestream.testing import make_png

    seen: list[str] = []

    class ChunkOnly:
        @imagestream.hookimpl
        def on_chunk(self, chunk: Any) -> None:  # no "context": allowed by pluggy
            seen.append(chunk.kind)

    provider = ScriptedProvider(
        "s", [imagestream.ImageFinal(imagestream.ImageData.from_bytes(make_png(2, 2)))]
    )
    await imagestream.Pipeline(provider, middleware=[ChunkOnly()]).agenerate("x")
    assert seen == ["image_final"]
