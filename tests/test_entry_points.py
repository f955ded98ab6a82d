"""Plugins found through real entry points, in a separate interpreter.

Each test lays out a throwaway environment directory the way an installer
does (package modules plus a ``*.dist-info`` with ``entry_points.txt`` and
``METADATA``), puts it on ``PYTHONPATH`` and runs imagestream in a fresh
subprocess, so discovery goes through ``importlib.metadata`` exactly as for a
pip-installed plugin.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

GOOD = """
import imagestream
from imagestream.testing import ScriptedProvider, make_png

@imagestream.hookimpl
def register_providers(register):
    png = make_png(4, 4)
    register(ScriptedProvider("tmpgood", [imagestream.ImageFinal(imagestream.ImageData.from_bytes(png))]))
"""
BROKEN = "raise ImportError('this plugin is broken on purpose')\n"
TYPO = """
import imagestream

@imagestream.hookimpl
def register_provider(register):  # missing "s": must be caught
    pass
"""


def _install(site: Path, dist: str, module: str, source: str, ep_name: str) -> None:
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[imagestream]\n{ep_name} = {module}\n")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    _install(root, "imagestream-tmpgood", "tmpgood_plugin", GOOD, "tmpgood")
    _install(root, "imagestream-tmpbroken", "tmpbroken_plugin", BROKEN, "tmpbroken")
    _install(root, "imagestream-tmptypo", "tmptypo_plugin", TYPO, "tmptypo")
    return root


def _run(
    site: Path, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("IMAGESTREAM_")}
    environ["PYTHONPATH"] = os.pathsep.join([str(site), environ.get("PYTHONPATH", "")])
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=environ, timeout=60, cwd=cwd
    )


def test_plugins_command_reports_each_plugin_by_name(site: Path) -> None:
    proc = _run(site, "-m", "imagestream", "plugins")
    assert proc.returncode == 0, proc.stderr
    infos = {item["name"]: item for item in json.loads(proc.stdout)}
    assert infos["tmpgood"]["status"] == "loaded"
    assert infos["tmpgood"]["version"] == "1.2.3"
    assert infos["tmpgood"]["distribution"] == "imagestream-tmpgood"
    assert infos["tmpgood"]["hooks"] == ["register_providers"]
    assert infos["tmpbroken"]["status"] == "failed"
    assert "broken on purpose" in infos["tmpbroken"]["error"]
    assert infos["tmptypo"]["status"] == "failed"
    assert "register_provider" in infos["tmptypo"]["error"]


def test_broken_plugins_never_break_the_library(site: Path) -> None:
    code = (
        "import imagestream\n"
        "r = imagestream.generate('x', provider='tmpgood')\n"
        "print(len(r.images), r.images[0].width)\n"
    )
    proc = _run(site, "-c", code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1", "4"]
    # Each failure is a warning naming the plugin.
    assert "'tmpbroken' failed to load" in proc.stderr
    assert "'tmptypo' failed to load" in proc.stderr


def test_cli_still_works_with_a_broken_plugin(site: Path, tmp_path: Path) -> None:
    proc = _run(site, "-m", "imagestream", "providers")
    assert proc.returncode == 0, proc.stderr
    assert "tmpgood" in proc.stdout


def test_strict_mode_fails_on_the_broken_plugin(site: Path) -> None:
    proc = _run(
        site,
        "-c",
        "import imagestream; imagestream.get_plugin_manager()",
        env={"IMAGESTREAM_STRICT_PLUGINS": "1"},
    )
    assert proc.returncode != 0
    assert "PluginLoadError" in proc.stderr
    assert "tmpbroken" in proc.stderr or "tmptypo" in proc.stderr


def test_allow_list_loads_only_named_plugins(site: Path) -> None:
    proc = _run(site, "-m", "imagestream", "plugins", env={"IMAGESTREAM_LOAD_PLUGINS": "tmpgood"})
    names = {item["name"] for item in json.loads(proc.stdout) if not item["builtin"]}
    assert names == {"tmpgood"}
    proc = _run(site, "-m", "imagestream", "plugins", env={"IMAGESTREAM_LOAD_PLUGINS": ""})
    assert all(item["builtin"] for item in json.loads(proc.stdout))


def test_disable_list_blocks_builtins_and_installed(site: Path) -> None:
    proc = _run(
        site,
        "-m",
        "imagestream",
        "plugins",
        env={"IMAGESTREAM_DISABLE_PLUGINS": "validation,tmpbroken"},
    )
    statuses = {item["name"]: item["status"] for item in json.loads(proc.stdout)}
    assert statuses["validation"] == "disabled"
    assert statuses["tmpbroken"] == "disabled"


def test_import_and_help_load_no_plugin(site: Path) -> None:
    code = (
        "import sys, imagestream\n"
        "from imagestream.cli import main\n"
        "loaded = [m for m in sys.modules if m.startswith(('tmp', 'imagestream_', 'aiohttp', 'PIL'))]\n"
        "print(loaded)\n"
    )
    proc = _run(site, "-c", code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# -- the listing commands, run by the console script without click ------------------

LISTINGS = (["providers"], ["providers", "--json"], ["plugins"])

_BY_CLICK = "import sys\nfrom imagestream.cli import main\nmain(sys.argv[1:])\n"
_BY_SCRIPT = (
    "import sys\n"
    "from imagestream.cli import run\n"
    "try:\n"
    "    run()\n"
    "finally:\n"
    "    print('click imported' if 'click' in sys.modules else 'no click', file=sys.stderr)\n"
)


@pytest.mark.parametrize("args", LISTINGS, ids=" ".join)
@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
def test_a_listing_says_without_click_what_the_click_command_says(
    site: Path, args: list[str], strict: bool
) -> None:
    env = {"IMAGESTREAM_STRICT_PLUGINS": "1"} if strict else {}
    by_click = _run(site, "-c", _BY_CLICK, *args, env=env)
    by_script = _run(site, "-c", _BY_SCRIPT, *args, env=env)
    said, imported = by_script.stderr.rsplit("\n", 2)[0] + "\n", by_script.stderr.split("\n")[-2]
    assert imported == "no click"
    assert (by_script.returncode, by_script.stdout, said) == (
        by_click.returncode,
        by_click.stdout,
        by_click.stderr,
    )
    if strict:  # the broken plugins are an error: one line, no traceback
        assert by_script.returncode == 1 and by_script.stdout == ""
        assert said.startswith("error: ") and "Traceback" not in said
    else:  # listed, and each broken plugin is one warning line
        assert by_script.returncode == 0 and "tmpgood" in by_script.stdout
        assert said.count("warning: plugin") == 2 and "tmpbroken" in said and "tmptypo" in said


def test_any_other_command_line_goes_through_click(site: Path) -> None:
    for args in (["providers", "--help"], ["plugins", "--json"], ["provider"]):
        proc = _run(site, "-c", _BY_SCRIPT, *args)
        assert proc.stderr.split("\n")[-2] == "click imported", args
    assert (
        "imagestream providers [OPTIONS]"
        in _run(site, "-m", "imagestream", "providers", "-h").stdout
    )
