"""Start-up rules: listing providers and commands imports no provider's implementation.

Every process that loads plugins imports every installed plugin's entry
module, and ``imagestream providers`` reads what each registered provider
says about itself. A provider plugin therefore registers a
:class:`~imagestream.provider.LazyProvider` declaring that, from a light entry
module, and its class is imported when it first runs (docs/writing-a-plugin.md,
"Keep the entry module light"). The meta-tests at the bottom hold every
provider plugin of this repository to it; the tests above them pin the
mechanism: ``LazyProvider``, the registry that loads it, and the plugin
manager that lists plugins without the built-ins.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest

import imagestream
from imagestream import ImageFinal, ModelInfo, PluginError, Provider, UnknownProviderError
from imagestream._plugins import BUILTIN_PLUGINS, PluginManager, PluginWarning, find_entry_points
from imagestream.provider import LazyProvider
from imagestream.testing import ScriptedProvider, make_png, provider_plugin

ROOT = Path(__file__).resolve().parents[1]

SOURCE = """
from imagestream import ImageData, ImageFinal, ModelInfo, Provider, ProviderResponse

class Painter(Provider):
    name = "painter"
    description = "paints one pixel"
    models = (ModelInfo("brush-1", "one pixel", streams_previews=False),)
    default_model = "brush-1"
    options = {"colour": {"type": "text", "description": "which"}}
    key_env = "PAINTER_KEY"
    made = 0

    def __init__(self):
        type(self).made += 1

    async def generate(self, request, context):
        return ProviderResponse(images=[ImageFinal(ImageData.from_bytes(PNG))])

def listed():
    return (ModelInfo("brush-2", "from the server"),)

OPTIONS = {"colour": {"type": "text", "description": "which"}}
"""


@pytest.fixture
def painter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A module with a provider class, importable by name; the name is returned."""
    name = f"painter_{os.getpid()}_{id(tmp_path)}"
    (tmp_path / f"{name}.py").write_text(
        f"PNG = {make_png(2, 2)!r}\n" + textwrap.dedent(SOURCE), encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def _lazy(module: str, **declared: Any) -> LazyProvider:
    values: dict[str, Any] = {
        "name": "painter",
        "description": "paints one pixel",
        "models": (ModelInfo("brush-1", "one pixel", streams_previews=False),),
        "default_model": "brush-1",
        "options": {"colour": {"type": "text", "description": "which"}},
        "key_env": "PAINTER_KEY",
        "streams": False,
    }
    values.update(declared)
    return LazyProvider(f"{module}:Painter", **values)


# -- LazyProvider --------------------------------------------------------------


def test_a_lazy_provider_describes_itself_without_importing(painter: str) -> None:
    lazy = _lazy(painter)
    described = lazy.describe()
    assert described["name"] == "painter" and described["key_env"] == "PAINTER_KEY"
    assert [model["id"] for model in described["models"]] == ["brush-1"]  # type: ignore[attr-defined]
    assert (lazy.can_stream, lazy.streams_previews, lazy.key_variables) == (
        False,
        False,
        ("PAINTER_KEY",),
    )
    assert not lazy.loaded and painter not in sys.modules
    assert "not loaded" in repr(lazy)


def test_loading_makes_the_provider_once(painter: str) -> None:
    lazy = _lazy(painter)
    provider = lazy.load()
    assert type(provider).__name__ == "Painter" and lazy.load() is provider
    assert type(provider).made == 1 and lazy.loaded  # type: ignore[attr-defined]
    assert lazy.can_generate and lazy.model_info("brush-1") is provider.models[0]


def test_check_names_what_is_declared_otherwise(painter: str) -> None:
    _lazy(painter).check()
    wrong = _lazy(painter, description="paints", key_env=None)
    with pytest.raises(PluginError, match=r"description 'paints'.*key_env None"):
        wrong.check()


def test_a_class_under_another_name_is_refused(painter: str) -> None:
    with pytest.raises(PluginError, match="is named 'painter'"):
        _lazy(painter, name="brush").load()


def test_the_target_is_module_colon_name() -> None:
    with pytest.raises(PluginError, match="not 'module:name'"):
        LazyProvider("just_a_module", name="x")
    with pytest.raises(PluginError, match="not 'module:name'"):
        LazyProvider("a:B", name="x", options="no_colon")


def test_models_and_options_may_be_imported_when_asked_for(painter: str) -> None:
    lazy = _lazy(painter, models=f"{painter}:listed", options=f"{painter}:OPTIONS")
    assert painter not in sys.modules
    assert lazy.options == {"colour": {"type": "text", "description": "which"}}
    assert [model.id for model in lazy.models] == ["brush-2"]  # a function: asked each time
    assert not lazy.loaded


async def test_a_lazy_provider_runs_as_its_provider(painter: str) -> None:
    pipe = imagestream.Pipeline(_lazy(painter))
    finals = [chunk async for chunk in pipe.stream("x") if isinstance(chunk, ImageFinal)]
    assert len(finals) == 1 and finals[0].synthetic


# -- the registry --------------------------------------------------------------


def test_the_registry_lists_as_registered_and_loads_by_name(painter: str) -> None:
    manager = PluginManager(strict=True)
    manager.add_plugin(provider_plugin(_lazy(painter)), "painting")
    listed = manager.registry.providers["painter"]
    assert isinstance(listed, LazyProvider) and not listed.loaded
    provider = manager.registry.provider("painter")
    assert type(provider).__name__ == "Painter"
    assert manager.registry.provider_for_model("brush-1") is provider


def test_a_provider_that_fails_to_load_is_the_plugins_failure() -> None:
    manager = PluginManager()
    broken = LazyProvider("no_such_module_anywhere:Provider", name="ghost")
    manager.add_plugin(provider_plugin(broken, ScriptedProvider("fine")), "haunted")
    assert sorted(manager.registry.providers) == ["fine", "ghost"]  # listed: nothing imported
    with (
        pytest.warns(PluginWarning),
        pytest.raises(UnknownProviderError, match="'ghost' is installed but failed to load"),
    ):
        manager.registry.provider("ghost")
    info = {info.name: info for info in manager.plugin_infos()}["haunted"]
    assert info.status == "failed" and "no_such_module_anywhere" in (info.error or "")
    assert manager.registry.provider("fine").name == "fine"


# -- the plugin manager --------------------------------------------------------


class _Recorder:
    """Implements every hook a built-in implements, to compare call orders."""

    @imagestream.hookimpl
    def on_chunk(self, chunk: Any) -> Any:
        return chunk

    @imagestream.hookimpl
    def on_result(self, result: Any) -> None:
        pass


def _orders(manager: PluginManager) -> dict[str, list[str]]:
    return {
        name: [impl.plugin_name for impl in caller.get_hookimpls()]
        for name, caller in vars(manager.hook).items()
        if isinstance(caller, pluggy.HookCaller) and caller.get_hookimpls()
    }


def test_builtins_added_late_take_the_place_they_have_when_added_first() -> None:
    whole = PluginManager()
    whole.add_builtins(disabled=["analytics"])
    whole.add_plugin(_Recorder(), "first")
    whole.add_plugin(provider_plugin(ScriptedProvider("x")), "second")

    late = PluginManager()
    late.defer_builtins(disabled=["analytics"])
    late.add_plugin(_Recorder(), "first")
    late.add_plugin(provider_plugin(ScriptedProvider("x")), "second")
    deferred = late.builtins_deferred
    assert [info.name for info in late.plugin_infos()] == ["first", "second"]
    assert sorted(late.registry.providers) == ["x"]  # listing needs no built-in

    late.add_deferred_builtins()
    assert (deferred, late.builtins_deferred) == (True, False)
    assert _orders(late) == _orders(whole)
    assert [info.name for info in late.plugin_infos()] == [
        info.name for info in whole.plugin_infos()
    ]
    assert {info.name: info.status for info in late.plugin_infos()}["analytics"] == "disabled"
    assert set(BUILTIN_PLUGINS) <= {info.name for info in late.plugin_infos()}


def test_listing_first_then_running_gets_the_builtins(monkeypatch: pytest.MonkeyPatch) -> None:
    from imagestream import _plugins

    monkeypatch.setenv("IMAGESTREAM_LOAD_PLUGINS", "")
    monkeypatch.setattr(_plugins, "_manager", None)
    listing = _plugins.listing_plugin_manager()
    deferred, native = listing.builtins_deferred, listing.get_plugin("native")
    assert _plugins.get_plugin_manager() is listing
    assert (deferred, native) == (True, None)
    assert (listing.builtins_deferred, listing.get_plugin("native") is None) == (False, False)


@pytest.mark.parametrize("disabled", [[], ["analytics", "cache"]])
def test_plugins_are_listed_as_with_the_builtins_without_importing_them(
    disabled: list[str],
) -> None:
    whole = PluginManager()
    whole.add_builtins(disabled=disabled)
    whole.add_plugin(_Recorder(), "first")

    late = PluginManager()
    late.defer_builtins(disabled=disabled)
    late.add_plugin(_Recorder(), "first")
    listed = late.listed_plugin_infos()
    assert late.builtins_deferred  # listed from BUILTIN_HOOKS, not added
    assert listed == whole.plugin_infos() == whole.listed_plugin_infos()
    late.add_deferred_builtins()
    assert late.plugin_infos() == listed


def test_imagestream_plugins_imports_no_builtin() -> None:
    code = textwrap.dedent(
        """
        import contextlib, io, json, sys
        from imagestream.cli import run

        sys.argv = ["imagestream", "plugins"]  # as the console script runs it
        with contextlib.redirect_stdout(io.StringIO()) as out:
            try:
                run()
            except SystemExit as exc:
                assert not exc.code, exc.code
        listed = {info["name"] for info in json.loads(out.getvalue())}
        print(json.dumps({
            "imported": sorted(m for m in sys.modules if m.startswith("imagestream._builtins")),
            "heavy": [name for name in HEAVY if name in sys.modules],
            "builtins": sorted(listed & set(BUILTINS)),
        }))
        """
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("IMAGESTREAM_")}
    done = subprocess.run(
        [sys.executable, "-c", f"HEAVY = {HEAVY!r}\nBUILTINS = {list(BUILTIN_PLUGINS)!r}\n{code}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result == {"imported": [], "heavy": [], "builtins": sorted(BUILTIN_PLUGINS)}


def test_entry_points_are_found_as_importlib_metadata_finds_them() -> None:
    from importlib.metadata import entry_points

    for group in ("imagestream", "console_scripts"):
        expected = sorted(
            (ep.name, ep.value, ep.dist.name if ep.dist else None)
            for ep in entry_points(group=group)
        )
        found = sorted((ep.name, ep.value, ep.distribution()[0]) for ep in find_entry_points(group))
        assert found == expected


# -- every provider plugin of the repository -------------------------------------

HEAVY = (
    "asyncio",
    "aiohttp",
    "PIL",
    "numpy",
    "torch",
    "diffusers",
    "msgpack",
    "ssl",
    "socket",
    "http.client",
    "urllib.request",
    "email",
    "platformdirs",
    "importlib.metadata",
    "importlib_metadata",
    "imagestream._api",
    "imagestream._pipeline",
    "imagestream._http",
    "imagestream._chunks",
    "imagestream_server._config",
    "imagestream_sse._decoder",
    "imagestream_msgpack._decoder",
    "click",
)
"""What listing providers must not import: the run machinery, and what it costs."""

PENDING: dict[str, str] = {}
"""Provider plugins not yet following the rule, and why: each to register a LazyProvider.

A plugin that follows it fails here (strict xfail) until it is taken off this list.
"""

_LISTING = """
import contextlib, io, json, sys
from imagestream import _plugins
from imagestream.cli import run
from imagestream.provider import LazyProvider

sys.argv = ["imagestream", "providers", "--json"]  # as the console script runs it
with contextlib.redirect_stdout(io.StringIO()):
    try:
        run()
    except SystemExit as exc:
        assert not exc.code, exc.code
providers = _plugins._manager.registry.providers.values()
print(json.dumps({
    "heavy": [name for name in HEAVY if name in sys.modules],
    "eager": sorted(p.name for p in providers if not isinstance(p, LazyProvider)),
    "imported": sorted(
        p.target for p in providers
        if isinstance(p, LazyProvider) and (p.loaded or p.target.partition(":")[0] in sys.modules)
    ),
    "names": sorted(p.name for p in providers),
}))
"""


def _provider_plugins() -> list[Any]:
    installed = {ep.name for ep in find_entry_points("imagestream")}
    found = []
    for pyproject in sorted(ROOT.glob("plugins/*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
        for name, value in project.get("entry-points", {}).get("imagestream", {}).items():
            module = value.split(":")[0]
            path = pyproject.parent / "src" / (module.replace(".", "/") + ".py")
            if "def register_providers" not in path.read_text(encoding="utf-8"):
                continue
            marks = []
            if name not in installed:
                marks.append(pytest.mark.skip(reason=f"{project['name']} is not installed"))
            elif project["name"] in PENDING:
                reason = (
                    f"{project['name']} {PENDING[project['name']]}; once it registers a "
                    "LazyProvider, take it off PENDING in tests/test_startup_rules.py"
                )
                marks.append(pytest.mark.xfail(reason=reason, strict=True))
            found.append(pytest.param(name, id=project["name"], marks=marks))
    return found


def _listing(entry_point: str) -> dict[str, Any]:
    """What ``imagestream providers`` imported with only ``entry_point`` loaded ("": every plugin)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("IMAGESTREAM_")}
    if entry_point:
        env["IMAGESTREAM_LOAD_PLUGINS"] = entry_point
    done = subprocess.run(
        [sys.executable, "-c", f"HEAVY = {HEAVY!r}\n{_LISTING}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_the_meta_tests_see_the_provider_plugins() -> None:
    # Guards the discovery: found nothing, the tests below would pass vacuously.
    assert {"procedural", "openai", "novelai", "google"} <= {
        param.values[0] for param in _provider_plugins()
    }


def test_listing_providers_with_every_plugin_installed_imports_nothing_heavy() -> None:
    # Every plugin's entry module is imported, providers or not (the server's
    # configuration, say, is for 'serve' only).
    listed = _listing("")
    assert listed["heavy"] == [] and listed["eager"] == [] and listed["imported"] == []
    assert {"procedural", "openai"} <= set(listed["names"])


@pytest.mark.parametrize("entry_point", _provider_plugins())
def test_listing_providers_imports_no_implementation(entry_point: str) -> None:
    """``imagestream providers`` imports the entry module and what it declares, nothing else."""
    listed = _listing(entry_point)
    assert listed["names"], f"plugin {entry_point!r} registered no provider"
    assert listed["eager"] == [], (
        f"plugin {entry_point!r} registers {listed['eager']} as instances: "
        "register LazyProvider('module:Class', ...) declaring what the class says"
    )
    assert listed["imported"] == [], f"listing providers imported {listed['imported']}"
    assert listed["heavy"] == [], f"listing providers imported {listed['heavy']}"


@pytest.mark.parametrize("entry_point", _provider_plugins())
def test_what_a_plugin_declares_is_what_its_class_says(entry_point: str) -> None:
    manager = PluginManager(strict=True)
    manager.load_entry_points(allow=[entry_point])
    providers = list(manager.registry.providers.values())
    assert providers
    for provider in providers:
        assert isinstance(provider, LazyProvider), provider
        provider.check()
        assert isinstance(provider.load(), Provider)


def _plugin_packages() -> list[str]:
    return sorted(path.name for path in ROOT.glob("plugins/*/src/imagestream_*") if path.is_dir())


@pytest.mark.parametrize("package", _plugin_packages())
def test_every_name_a_plugin_package_exports_can_be_read(package: str) -> None:
    """A package that imports its names lazily gives each one in ``__all__``, read first thing.

    Each name is read from the package freshly imported (its modules dropped
    from ``sys.modules`` before), so a name cannot pass only because reading
    an earlier one imported what it needed.
    """
    code = textwrap.dedent(
        f"""
        import importlib, sys
        package = {package!r}
        names = getattr(importlib.import_module(package), "__all__", [])
        missing = []
        for name in names:
            for loaded in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
                del sys.modules[loaded]
            try:
                getattr(importlib.import_module(package), name)
            except (AttributeError, ImportError) as exc:
                missing.append(f"{{name}}: {{exc}}")
        print(missing)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    if f"No module named {package!r}" in done.stderr:
        pytest.skip(f"{package} is not installed")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
