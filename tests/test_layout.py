"""Meta-tests on the tree: plugins use only the public API and pin a compatible core."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import imagestream

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = sorted(
    path for path in (ROOT / "plugins").iterdir() if (path / "pyproject.toml").exists()
)


def _private_core_imports(source: str) -> list[str]:
    """Every import in ``source`` that reaches into a private module or name of the core."""
    found = []
    for node in ast.walk(ast.parse(source)):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
            if node.module.split(".")[0] == "imagestream":
                modules += [
                    f"{node.module}.{alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_") and not alias.name.startswith("__")
                ]
        for module in modules:
            parts = module.split(".")
            if parts[0] == "imagestream" and any(part.startswith("_") for part in parts[1:]):
                found.append(f"line {node.lineno}: {module}")
    return found


@pytest.mark.parametrize(
    "path",
    sorted((ROOT / "plugins").rglob("*.py")),
    ids=lambda path: str(path.relative_to(ROOT / "plugins")),
)
def test_plugins_import_no_private_core_module(path: Path) -> None:
    assert _private_core_imports(path.read_text(encoding="utf-8")) == []


def test_the_import_check_catches_what_it_should() -> None:
    source = (
        "import imagestream._http\n"
        "from imagestream._base64 import decode_base64\n"
        "from imagestream.cli._progress import ProgressDisplay\n"
        "from imagestream import _pipeline, __version__, Provider\n"
        "from imagestream.provider import Options\n"
        "import imagestream_openai._plugin\n"
    )
    assert _private_core_imports(source) == [
        "line 1: imagestream._http",
        "line 2: imagestream._base64",
        "line 3: imagestream.cli._progress",
        "line 4: imagestream._pipeline",
    ]


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda path: path.name)
def test_plugins_pin_a_compatible_core(plugin: Path) -> None:
    project = tomllib.loads((plugin / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins = [
        Requirement(dependency)
        for dependency in project["dependencies"]
        if Requirement(dependency).name == "imagestream"
    ]
    assert len(pins) == 1, "depend on imagestream exactly once"
    specifier = pins[0].specifier
    assert specifier.contains(imagestream.__version__), (
        f"{plugin.name} pins {specifier}, which excludes the core's {imagestream.__version__}"
    )
    assert any(spec.operator == "<" for spec in specifier), "pin an upper bound: the next minor"


def test_the_core_version_is_the_packages() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["version"] == imagestream.__version__


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda path: path.name)
def test_entry_modules_stay_light(plugin: Path) -> None:
    """Every command (``--help`` too) imports every plugin's entry module: no HTTP stack, no asyncio."""
    import subprocess
    import sys

    project = tomllib.loads((plugin / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    modules = [value.split(":")[0] for value in project["entry-points"]["imagestream"].values()]
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "heavy = sorted(m for m in ('asyncio', 'aiohttp', 'PIL', 'msgpack') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "", f"{plugin.name} entry module imports {done.stdout.strip()}"
