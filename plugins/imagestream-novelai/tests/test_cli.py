"""The command line against the fake server: saved PNG, 28 previews, a determinate bar."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from imagestream.testing import run_in_terminal


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NOVELAI_API_KEY", "NOVELAI_TOKEN", "NAI_TOKEN")}
    # Only this plugin and its decoders: the test must not depend on others.
    env["IMAGESTREAM_LOAD_PLUGINS"] = "novelai,msgpack,sse"
    env.pop("IMAGESTREAM_DISABLE_PLUGINS", None)
    return env


def test_generate_command_saves_the_png_and_reports_28_previews(nai_thread_server: Any, tmp_path: Path) -> None:
    nai_thread_server.tokens.add("pst-test")
    command = [
        sys.executable, "-m", "imagestream", "generate", "1girl, lighthouse",
        "-p", "novelai", "--steps", "28",
        "--base-url", nai_thread_server.base_url, "--key", "pst-test",
        "--json", "--out-dir", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["previews"] == 28
    [image] = summary["images"]
    saved = Path(image["path"])
    assert saved.parent == tmp_path and saved.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert image["mime_type"] == "image/png"
    body = nai_thread_server.requests[-1].body
    assert body["parameters"]["steps"] == 28 and body["parameters"]["stream"] == "msgpack"
    assert "pst-test" not in done.stderr


def test_generate_command_with_sse_in_process(nai_plugins: Any, nai_thread_server: Any, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from imagestream.cli import main

    arguments = [
        "generate", "1girl, lighthouse", "-p", "novelai", "--steps", "28", "-o", "stream", "sse",
        "-o", "uc_preset", "light", "--base-url", nai_thread_server.base_url,
        "--key", nai_thread_server.token, "--json", "-q", "--out-dir", str(tmp_path),
    ]  # fmt: skip
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["previews"] == 28 and len(summary["images"]) == 1
    assert nai_thread_server.requests[-1].body["parameters"]["stream"] == "sse"


def test_cli_reports_a_refused_option_in_one_line(nai_plugins: Any, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from imagestream.cli import main

    result = CliRunner().invoke(
        main, ["generate", "1girl", "-p", "novelai", "--key", "pst-x", "-o", "sampler", "euler_a", "--out-dir", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "unknown sampler 'euler_a'" in result.output and "k_euler_ancestral" in result.output


def test_progress_bar_is_determinate_over_28_steps(nai_thread_server: Any, tmp_path: Path) -> None:
    # The bar is drawn only on a terminal, so stderr is one; slow pieces let
    # it redraw several times along the way.
    nai_thread_server.script.delay = 0.01
    command = [
        sys.executable, "-m", "imagestream", "generate", "1girl, lighthouse", "-p", "novelai",
        "--steps", "28", "--base-url", nai_thread_server.base_url, "--key", nai_thread_server.token,
        "--json", "--out-dir", str(tmp_path),
    ]  # fmt: skip
    env = {**_env(), "TERM": "xterm-256color", "COLUMNS": "160", "LINES": "40"}
    code, stdout, shown = run_in_terminal(command, env)
    assert code == 0, shown
    assert json.loads(stdout)["previews"] == 28
    assert "/28" in shown and "28/28" in shown and "sigma" in shown
    assert "/?" not in shown  # the step count was known from the first preview on
    assert nai_thread_server.token not in shown
