"""The plugin as installed: found through its entry point, cheap to import."""

from __future__ import annotations

import subprocess
import sys

from importlib_metadata import entry_points

import imagestream


def test_entry_point_names_the_plugin_module() -> None:
    found = {ep.name: ep.value for ep in entry_points(group="imagestream")}
    assert found.get("novelai") == "imagestream_novelai._plugin"


def test_discovered_through_entry_points(monkeypatch: object) -> None:
    code = (
        "import imagestream, sys\n"
        "provider = imagestream.get_provider('novelai')\n"
        "print(provider.name, provider.default_model, provider.key_env)\n"
    )
    env = {"IMAGESTREAM_LOAD_PLUGINS": "novelai", "IMAGESTREAM_STRICT_PLUGINS": "1", "PATH": ""}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["novelai", "nai-diffusion-4-5-full", "NOVELAI_API_KEY"]


def test_importing_the_plugin_loads_nothing_heavy() -> None:
    code = (
        "import sys, imagestream_novelai._plugin\n"
        "heavy = [m for m in ('aiohttp', 'msgpack', 'PIL', 'rich', 'imagestream_msgpack', 'imagestream_sse')"
        " if m in sys.modules]\n"
        "print(heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_registered_provider_describes_its_models(nai_plugins: object) -> None:
    provider = imagestream.get_provider("novelai")
    ids = [model.id for model in provider.models]
    assert ids == [
        "nai-diffusion-4-5-full",
        "nai-diffusion-4-5-curated",
        "nai-diffusion-4-full",
        "nai-diffusion-4-curated-preview",
        "nai-diffusion-3",
    ]
    v3 = provider.model_info("nai-diffusion-3")
    assert provider.streams_previews and v3 is not None and not v3.streams_previews
