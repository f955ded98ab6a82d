"""The README's Quickstart: two commands, and the first one really works from a fresh copy."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
IGNORED = {
    ".git",
    ".venv",
    ".nox",
    "generated-images",
    "_build",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".hypothesis",
}


def quickstart_commands() -> list[str]:
    """The shell code blocks of the ``## Quickstart`` section, in order."""
    text = README.read_text()
    match = re.search(r"^## Quickstart\n(.*?)(?=^## )", text, re.S | re.M)
    assert match, "README has no '## Quickstart' section"
    return [
        block.strip()
        for block in re.findall(r"```(?:sh|bash|console)\n(.*?)```", match.group(1), re.S)
    ]


def test_quickstart_has_the_two_commands() -> None:
    commands = quickstart_commands()
    assert len(commands) >= 2
    install_and_run, run_tests = commands[:2]
    assert "\n" not in install_and_run and "\n" not in run_tests, "each must be ONE command"
    assert "imagestream generate" in install_and_run
    assert "nox" in run_tests


def test_ci_runs_the_readme_test_command() -> None:
    assert quickstart_commands()[1] in (ROOT / ".ci" / "run").read_text()


def _copy_checkout(target: Path) -> None:
    def ignore(directory: str, names: list[str]) -> set[str]:
        return {name for name in names if name in IGNORED or name.endswith(".egg-info")}

    shutil.copytree(ROOT, target, ignore=ignore)


@pytest.mark.timeout(900)
@pytest.mark.skipif(
    os.environ.get("IMAGESTREAM_SKIP_QUICKSTART") == "1", reason="IMAGESTREAM_SKIP_QUICKSTART=1"
)
def test_first_command_installs_and_draws_an_image(tmp_path: Path) -> None:
    """Run the first Quickstart command verbatim in a fresh copy with a fresh HOME."""
    checkout = tmp_path / "imagestream"
    _copy_checkout(checkout)
    home = tmp_path / "home"
    home.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("IMAGESTREAM_", "VIRTUAL_ENV", "PYTHON"))
    }
    env["HOME"] = str(home)
    proc = subprocess.run(
        ["bash", "-c", quickstart_commands()[0]],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=850,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    images = list((checkout / "generated-images").glob("image-*.png"))
    assert len(images) == 1
    assert images[0].read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "saved generated-images/image-" in proc.stderr
