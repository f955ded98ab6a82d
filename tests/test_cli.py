"""The command line, run in-process against the installed offline provider."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import imagestream
from imagestream._plugins import reset_plugin_manager
from imagestream.cli import main

pytest.importorskip("imagestream_procedural", reason="the offline provider plugin is not installed")


@pytest.fixture(autouse=True)
def fresh_plugins(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name in (
        "IMAGESTREAM_LOAD_PLUGINS",
        "IMAGESTREAM_DISABLE_PLUGINS",
        "IMAGESTREAM_STRICT_PLUGINS",
    ):
        monkeypatch.delenv(name, raising=False)
    reset_plugin_manager()
    yield
    reset_plugin_manager()


def _run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_generate_json_reports_and_saves(tmp_path: Path) -> None:
    result = _run(
        "generate",
        "a simple red circle",
        "--size",
        "64x48",
        "--steps",
        "5",
        "--seed",
        "3",
        "--out-dir",
        str(tmp_path),
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {
        "images",
        "previews",
        "text",
        "thoughts",
        "usage",
        "analytics",
        "replayed",
    }
    assert report["previews"] == 5
    assert "red circle" in report["text"]
    (image,) = report["images"]
    assert set(image) == {"path", "mime_type", "width", "height", "bytes", "sha256", "seed"}
    assert image["seed"] == 3
    path = Path(image["path"])
    assert path.parent == tmp_path and path.name.startswith("image-") and path.suffix == ".png"
    data = path.read_bytes()
    assert (image["width"], image["height"], image["bytes"]) == (64, 48, len(data))
    assert image["sha256"] == hashlib.sha256(data).hexdigest()
    assert report["analytics"]["chunks"]["image_preview"] == 5
    assert report["usage"]["input_tokens"] == 4
    assert "saved" in result.stderr


def test_default_output_is_generated_images_in_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = _run("generate", "a blue square on yellow", "--size", "32x32", "--steps", "2")
    assert result.exit_code == 0, result.stderr
    files = list((tmp_path / "generated-images").iterdir())
    assert len(files) == 1 and files[0].suffix == ".png"


def test_output_never_overwrites_silently(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    args = [
        "generate",
        "a red circle",
        "--size",
        "32x32",
        "--steps",
        "1",
        "--output",
        str(target),
        "--json",
    ]
    first = json.loads(_run(*args).stdout)["images"][0]["path"]
    second = json.loads(_run(*args).stdout)["images"][0]["path"]
    assert (first, second) == (str(target), str(tmp_path / "out-1.png"))
    third = json.loads(_run(*args, "--overwrite").stdout)["images"][0]["path"]
    assert third == str(target)


def test_format_and_n(tmp_path: Path) -> None:
    result = _run(
        "generate",
        "a lighthouse at dusk",
        "-n",
        "2",
        "--format",
        "webp",
        "--size",
        "32x32",
        "--steps",
        "3",
        "--partial-images",
        "1",
        "--out-dir",
        str(tmp_path),
        "--json",
    )
    report = json.loads(result.stdout)
    assert [img["mime_type"] for img in report["images"]] == ["image/webp", "image/webp"]
    assert report["previews"] == 2  # one per sample
    assert len({img["path"] for img in report["images"]}) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "huge"], "size 'huge' is not WIDTHxHEIGHT"),
        (["-p", "nosuch"], "no provider named 'nosuch'"),
        (["-o", "colour", "red"], "unknown option 'colour'"),
        (["-m", "sdxl"], "unknown model 'sdxl'"),
    ],
)
def test_errors_are_one_clear_line_without_traceback(
    args: list[str], message: str, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        main, ["generate", "a red circle", "--out-dir", str(tmp_path), *args]
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert "hint:" in result.stderr or len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())


def test_verbose_shows_the_traceback() -> None:
    with pytest.raises(imagestream.ConfigurationError):
        CliRunner().invoke(
            main, ["generate", "x", "--size", "huge", "--verbose"], catch_exceptions=False
        )


def test_quiet_prints_nothing_on_stderr(tmp_path: Path) -> None:
    result = _run(
        "generate",
        "a red circle",
        "--size",
        "32x32",
        "--steps",
        "1",
        "-q",
        "--out-dir",
        str(tmp_path),
    )
    assert result.exit_code == 0
    assert result.stderr == ""


def test_options_values_are_json_literals(tmp_path: Path) -> None:
    result = _run(
        "generate",
        "a red circle",
        "--size",
        "32x32",
        "--steps",
        "2",
        "-o",
        "preview_quality",
        "50",
        "-o",
        "preview_format",
        "png",
        "--out-dir",
        str(tmp_path),
        "--json",
    )
    assert result.exit_code == 0, result.stderr


def test_providers_lists_models_and_previews() -> None:
    result = _run("providers")
    assert "procedural" in result.stdout and "real previews" in result.stdout
    listed = json.loads(_run("providers", "--json").stdout)
    entry = next(p for p in listed if p["name"] == "procedural")
    assert entry["streams_previews"] is True
    assert entry["models"][0]["id"] == "procedural-1"


def test_plugins_is_json() -> None:
    infos = json.loads(_run("plugins").stdout)
    by_name = {info["name"]: info for info in infos}
    assert by_name["procedural"]["status"] == "loaded"
    assert by_name["procedural"]["distribution"] == "imagestream-procedural"
    assert set(by_name["procedural"]) == {
        "name",
        "version",
        "distribution",
        "hooks",
        "status",
        "error",
        "builtin",
    }


def test_progress_is_off_when_stderr_is_not_a_terminal() -> None:
    from imagestream.cli._progress import ProgressDisplay

    with ProgressDisplay(enabled=True) as progress:
        assert progress.enabled is False  # pytest captures stderr: not a terminal


def test_help_lists_commands() -> None:
    result = _run("--help")
    for command in ("generate", "providers", "plugins"):
        assert command in result.stdout


def test_ctrl_c_halfway_says_where_the_images_saved_before_it_are(tmp_path: Path) -> None:
    """Interrupted after the first of four images: exit 130, and each saved file is named."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "out"
    out.mkdir()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "imagestream",
            "generate",
            "x",
            "--size",
            "4096x4096",
            "--steps",
            "200",
            "-n",
            "4",
            "--out-dir",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not any(out.glob("*.png")) and time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert "error: interrupted" in err
    saved = sorted(out.glob("*.png"))
    assert saved
    for path in saved:
        assert f"saved {path} before the interruption" in err
    assert not [p for p in out.iterdir() if p.suffix != ".png"], "no partial file is left"


def test_ctrl_c_while_the_command_line_loads_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    import imagestream.cli._listing as listing
    from imagestream.cli import run

    def interrupted(args: list[str]) -> int | None:
        raise KeyboardInterrupt

    monkeypatch.setattr(listing, "run_listing", interrupted)
    monkeypatch.setattr(sys, "argv", ["imagestream", "providers"])
    with pytest.raises(SystemExit) as exited:
        run()
    assert exited.value.code == 130
    assert capsys.readouterr().err == "error: interrupted\n"
