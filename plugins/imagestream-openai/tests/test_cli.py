"""``imagestream generate -p openai`` against the local server (run in its own thread and loop)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _openai_server import OpenAIServer, make_image
from click.testing import CliRunner

from imagestream.cli import main


def generate(server: OpenAIServer, tmp_path: Path, *args: str) -> Any:
    server.key = "sk-test"
    result = CliRunner().invoke(
        main,
        [
            "generate",
            "a lighthouse at dusk",
            "-p",
            "openai",
            "-m",
            "gpt-image-1",
            "--base-url",
            server.base_url,
            "--key",
            "sk-test",
            "--json",
            "--out-dir",
            str(tmp_path),
            *args,
        ],
        catch_exceptions=False,
    )
    return result


def summary(result: Any) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stdout.splitlines() if line.startswith("{"))
    data: dict[str, Any] = json.loads(line)
    return data


def test_images_api_from_the_command_line(threaded_server: OpenAIServer, tmp_path: Path) -> None:
    data = summary(generate(threaded_server, tmp_path, "--partial-images", "2"))
    assert data["previews"] == 2
    (image,) = data["images"]
    saved = Path(image["path"])
    assert saved.parent == tmp_path and saved.suffix == ".png"
    assert saved.read_bytes() == make_image("png", 10)
    assert image["mime_type"] == "image/png"
    assert data["usage"]["output_image_tokens"] == 1056
    assert data["analytics"]["cost_usd"] == pytest.approx((16 * 5.00 + 1056 * 40.00) / 1_000_000)
    assert threaded_server.requests[0].json["partial_images"] == 2


def test_responses_api_from_the_command_line(threaded_server: OpenAIServer, tmp_path: Path) -> None:
    data = summary(
        generate(
            threaded_server,
            tmp_path,
            "--partial-images",
            "2",
            "-o",
            "api",
            "responses",
            "-o",
            "responses_model",
            "gpt-5",
            "--format",
            "webp",
        )
    )
    assert data["previews"] == 2
    assert data["text"] == threaded_server.text
    (image,) = data["images"]
    assert Path(image["path"]).read_bytes() == make_image("webp", 30)
    sent = threaded_server.requests[0].json
    assert sent["model"] == "gpt-5" and sent["tools"][0]["model"] == "gpt-image-1"


def test_options_from_the_command_line(threaded_server: OpenAIServer, tmp_path: Path) -> None:
    photo = tmp_path / "in.png"
    photo.write_bytes(make_image("png", 3))
    data = summary(
        generate(
            threaded_server,
            tmp_path / "out",
            "-o",
            "image",
            str(photo),
            "-o",
            "stream",
            "false",
            "--format",
            "jpeg",
            "-o",
            "output_compression",
            "80",
        )
    )
    assert data["previews"] == 0 and len(data["images"]) == 1
    sent = threaded_server.requests[0]
    assert sent.path == "/v1/images/edits"
    assert sent.form["output_compression"] == ["80"] and "stream" not in sent.form


def test_refusals_are_one_clear_line(threaded_server: OpenAIServer, tmp_path: Path) -> None:
    result = generate(threaded_server, tmp_path, "-o", "colour", "red")
    assert result.exit_code == 1
    assert "error: openai: unknown option 'colour'" in result.stderr
    assert "known options:" in result.stderr
    result = CliRunner().invoke(
        main,
        [
            "generate",
            "x",
            "-p",
            "openai",
            "--base-url",
            threaded_server.base_url,
            "--out-dir",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 1
    assert "no API key" in result.stderr and "OPENAI_API_KEY" in result.stderr
    assert threaded_server.requests == []
