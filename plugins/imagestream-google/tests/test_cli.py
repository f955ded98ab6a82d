"""The command line against the local server: ``-p gemini`` and ``-p vertex``, text printed, images saved."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from _google_server import KEY, PROJECT, TOKEN, GoogleServer, image_part, stream_events, text_part


async def imagestream(*args: str, cwd: Path) -> tuple[int, str, str]:
    """Run the ``imagestream`` command in a fresh interpreter (the server stays in this loop)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("GOOGLE_", "GEMINI_"))
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "imagestream",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_gemini_prints_the_text_and_saves_the_image(
    google_server: GoogleServer, png: bytes, tmp_path: Path
) -> None:
    google_server.stream(*stream_events(text_part("Here is a watercolor fox."), image_part(png)))
    code, out, err = await imagestream(
        "generate",
        "a watercolor fox",
        "-p",
        "gemini",
        "--size",
        "16:9",
        "--key",
        KEY,
        "--base-url",
        google_server.url,
        "--out-dir",
        "art",
        cwd=tmp_path,
    )
    assert code == 0, err
    assert out.strip() == "Here is a watercolor fox."
    (saved,) = (tmp_path / "art").iterdir()
    assert saved.read_bytes() == png and saved.suffix == ".png"
    assert "saved art/" in err
    assert KEY not in out + err
    assert google_server.last.json["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9"}


async def test_vertex_global_with_a_token(
    google_server: GoogleServer, jpeg: bytes, tmp_path: Path
) -> None:
    google_server.stream(
        *stream_events(text_part("A fox, in JPEG."), image_part(jpeg, "image/jpeg"))
    )
    code, out, err = await imagestream(
        "generate",
        "a watercolor fox",
        "-p",
        "vertex",
        "--format",
        "jpeg",
        "-o",
        "project",
        PROJECT,
        "-o",
        "location",
        "global",
        "-o",
        "access_token",
        TOKEN,
        "--base-url",
        google_server.url,
        "--json",
        cwd=tmp_path,
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["text"] == "A fox, in JPEG."
    assert report["images"][0]["mime_type"] == "image/jpeg"
    assert report["usage"]["output_image_tokens"] == 1290
    assert TOKEN not in out + err
    assert google_server.last.path.startswith(f"/v1beta1/projects/{PROJECT}/locations/global/")
    assert google_server.last.json["generationConfig"]["imageConfig"] == {
        "imageOutputOptions": {"mimeType": "image/jpeg"}
    }


async def test_a_missing_key_is_one_clear_line(tmp_path: Path) -> None:
    code, _, err = await imagestream("generate", "a fox", "-p", "gemini", cwd=tmp_path)
    assert code != 0
    assert "gemini: no API key" in err and "GEMINI_API_KEY" in err
    assert "Traceback" not in err


async def test_a_global_only_model_in_a_region_is_refused_before_sending(tmp_path: Path) -> None:
    code, _, err = await imagestream(
        "generate",
        "a fox",
        "-p",
        "vertex",
        "-m",
        "gemini-3-pro-image-preview",
        "-o",
        "project",
        PROJECT,
        "-o",
        "location",
        "us-central1",
        "-o",
        "access_token",
        TOKEN,
        cwd=tmp_path,
    )
    assert code != 0 and "use -o location global" in err


async def test_providers_lists_both(tmp_path: Path) -> None:
    code, out, _ = await imagestream("providers", "--json", cwd=tmp_path)
    assert code == 0
    found = {entry["name"]: entry for entry in json.loads(out)}
    assert {m["id"] for m in found["gemini"]["models"]} >= {
        "gemini-2.5-flash-image",
        "gemini-3-pro-image-preview",
    }
    assert "imagen-4.0-generate-001" in {m["id"] for m in found["vertex"]["models"]}
    assert found["gemini"]["key_env"] == "GEMINI_API_KEY"
