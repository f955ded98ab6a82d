"""The command line against the fake web UI: a determinate bar, the saved PNG, the provider listing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from imagestream.testing import run_in_terminal

from .conftest import CHECKPOINTS, FakeWebUI


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGESTREAM_", "A1111_"))}
    env["IMAGESTREAM_LOAD_PLUGINS"] = "a1111"  # this plugin only: others must not matter
    env.update(extra)
    return env


def test_generate_shows_a_determinate_bar_and_saves_the_png(
    webui_thread_server: FakeWebUI, tmp_path: Path
) -> None:
    # The sampler runs on its own (no lockstep), as a real one does, while the default polling watches.
    webui_thread_server.script.lockstep = False
    webui_thread_server.script.delay = 0.05
    command = [
        sys.executable, "-m", "imagestream", "generate", "a castle", "-p", "a1111", "--steps", "20",
        "--size", "64x64", "--base-url", webui_thread_server.base_url, "--json", "--out-dir", str(tmp_path),
    ]  # fmt: skip
    code, stdout, shown = run_in_terminal(
        command, _env(TERM="xterm-256color", COLUMNS="160", LINES="40")
    )
    assert code == 0, shown
    summary = json.loads(stdout)
    assert summary["previews"] >= 1
    [image] = summary["images"]
    saved = Path(image["path"])
    assert saved.parent == tmp_path and saved.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "/20" in shown and "20/20" in shown
    assert "/?" not in shown and "/100" not in shown  # steps from the start, never a percentage
    assert webui_thread_server.jobs[0].body["steps"] == 20


def test_the_negative_prompt_flag_reaches_the_server(
    webui_thread_server: FakeWebUI, tmp_path: Path
) -> None:
    webui_thread_server.script.lockstep = False
    base = [
        sys.executable, "-m", "imagestream", "generate", "a castle", "-p", "a1111", "--steps", "1",
        "--size", "64x64", "--base-url", webui_thread_server.base_url, "--out-dir", str(tmp_path),
        "--negative-prompt", "fog", "-q",
    ]  # fmt: skip
    done = subprocess.run(base, capture_output=True, text=True, env=_env(), timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert webui_thread_server.jobs[0].body["negative_prompt"] == "fog"
    # The same text given twice is fine; two different ones are a mistake named, nothing sent.
    conflict = [*base, "-o", "negative_prompt", "rain"]
    done = subprocess.run(
        conflict, capture_output=True, text=True, env=_env(), timeout=60, check=False
    )
    assert done.returncode == 1
    assert "negative_prompt given both as a field and as an option" in done.stderr
    assert len(webui_thread_server.jobs) == 1


def test_generate_without_a_server_says_where_it_looked(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [
        sys.executable, "-m", "imagestream", "generate", "a castle", "-p", "a1111",
        "--base-url", f"http://127.0.0.1:{port}", "--out-dir", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, env=_env(), timeout=60, check=False
    )
    assert done.returncode == 1
    assert f"running at http://127.0.0.1:{port} with --api?" in done.stderr
    assert "Traceback" not in done.stderr


def test_providers_lists_the_servers_checkpoints(webui_thread_server: FakeWebUI) -> None:
    webui_thread_server.script.credentials = "alice:pw-123456"
    env = _env(A1111_BASE_URL=webui_thread_server.base_url, A1111_API_AUTH="alice:pw-123456")
    done = subprocess.run(
        [sys.executable, "-m", "imagestream", "providers"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    assert "a1111:" in done.stdout and "[real previews, no key]" in done.stdout
    for checkpoint in CHECKPOINTS:
        assert f"  {checkpoint['model_name']}  previews  {checkpoint['title']}" in done.stdout


def test_providers_without_a_server_lists_no_models_and_no_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = subprocess.run(
        [sys.executable, "-m", "imagestream", "providers", "--json"],
        capture_output=True,
        text=True,
        env=_env(A1111_BASE_URL=f"http://127.0.0.1:{port}"),
        timeout=60,
        check=True,
    )
    [listed] = [p for p in json.loads(done.stdout) if p["name"] == "a1111"]
    assert listed["models"] == [] and listed["streams_previews"] is True
    assert done.stderr == ""


def test_models_lists_the_options(a1111_plugins: Any) -> None:
    from click.testing import CliRunner

    from imagestream.cli import main

    result = CliRunner().invoke(main, ["models", "-p", "a1111", "--options", "--json"])
    assert result.exit_code == 0, result.output
    [described] = json.loads(result.stdout)
    assert {"cfg_scale", "sampler", "image", "poll_interval", "params"} <= set(described["options"])
