"""The command line against the fake server: a determinate bar, the saved PNG, the provider listing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from imagestream.testing import run_in_terminal

from .conftest import CHECKPOINTS, FakeComfyUI


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGESTREAM_", "COMFYUI_"))}
    env["IMAGESTREAM_LOAD_PLUGINS"] = "comfyui"  # this plugin only: others must not matter
    env.update(extra)
    return env


def test_generate_shows_a_determinate_bar_and_saves_the_png(
    comfy_thread_server: FakeComfyUI, tmp_path: Path
) -> None:
    comfy_thread_server.script.delay = 0.02  # slow enough for the bar to redraw along the way
    command = [
        sys.executable, "-m", "imagestream", "generate", "a castle", "-p", "comfyui", "--steps", "20",
        "--size", "64x64", "--base-url", comfy_thread_server.base_url, "--json", "--out-dir", str(tmp_path),
    ]  # fmt: skip
    code, stdout, shown = run_in_terminal(
        command, _env(TERM="xterm-256color", COLUMNS="160", LINES="40")
    )
    assert code == 0, shown
    summary = json.loads(stdout)
    assert summary["previews"] == 20
    [image] = summary["images"]
    saved = Path(image["path"])
    assert saved.parent == tmp_path and saved.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "/20" in shown and "20/20" in shown
    assert "/?" not in shown  # the step count was known from the start
    [body] = comfy_thread_server.prompts
    assert body["prompt"]["sampler"]["inputs"]["steps"] == 20


def test_generate_without_a_server_says_where_it_looked(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [
        sys.executable, "-m", "imagestream", "generate", "a castle", "-p", "comfyui",
        "--base-url", f"http://127.0.0.1:{port}", "--out-dir", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, env=_env(), timeout=60, check=False
    )
    assert done.returncode == 1
    assert f"is ComfyUI running at http://127.0.0.1:{port}?" in done.stderr
    assert "Traceback" not in done.stderr


def test_providers_lists_the_servers_checkpoints(comfy_thread_server: FakeComfyUI) -> None:
    command = [sys.executable, "-m", "imagestream", "providers"]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=_env(COMFYUI_BASE_URL=comfy_thread_server.base_url),
        timeout=60,
        check=True,
    )
    assert "comfyui:" in done.stdout and "[real previews, no key]" in done.stdout
    for name in CHECKPOINTS:
        assert f"  {name}  previews" in done.stdout


def test_providers_without_a_server_lists_no_models_and_no_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = subprocess.run(
        [sys.executable, "-m", "imagestream", "providers", "--json"],
        capture_output=True,
        text=True,
        env=_env(COMFYUI_BASE_URL=f"http://127.0.0.1:{port}"),
        timeout=60,
        check=True,
    )
    [listed] = [p for p in json.loads(done.stdout) if p["name"] == "comfyui"]
    assert listed["models"] == [] and listed["streams_previews"] is True
    assert done.stderr == ""


def test_models_lists_the_options(comfy_plugins: Any) -> None:
    from click.testing import CliRunner

    from imagestream.cli import main

    result = CliRunner().invoke(main, ["models", "-p", "comfyui", "--options", "--json"])
    assert result.exit_code == 0, result.output
    [described] = json.loads(result.stdout)
    assert {"workflow", "checkpoint", "cfg", "sampler", "scheduler", "denoise", "values"} <= set(
        described["options"]
    )
