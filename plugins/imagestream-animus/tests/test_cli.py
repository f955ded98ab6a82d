"""``imagestream chat`` in a fresh interpreter, against the local server (kept in the test's loop)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from _animus_server import KEY, PNG, AnimusServer, ChatScript

SUNSET = "a sunset over the sea, warm orange light"


async def imagestream(*args: str, cwd: Path) -> tuple[int, str, str]:
    """Run the ``imagestream`` command; the server keeps answering meanwhile."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("ANIMUS_")}
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


async def test_chat_prints_the_reply_and_saves_the_offline_picture(
    server: AnimusServer, tmp_path: Path
) -> None:
    server.chats = [ChatScript(image_prompt=SUNSET), ChatScript(image_prompt=SUNSET)]
    common = ("--image-provider", "procedural", "--size", "64x64", "--base-url", server.base)
    code, out, err = await imagestream(
        "chat",
        "Can you show me a sunset over the sea?",
        *common,
        "--key",
        KEY,
        "--out-dir",
        "art",
        "--history",
        "talk.json",
        cwd=tmp_path,
    )
    assert code == 0, err
    assert out == "Sure! Here is a sunset over the sea.\n"
    (saved,) = (tmp_path / "art").iterdir()
    assert saved.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"saved art/{saved.name}" in err
    assert KEY not in out + err
    history = json.loads((tmp_path / "talk.json").read_text())
    assert [m["role"] for m in history["messages"]] == ["user", "assistant", "assistant"]
    assert history["messages"][-1]["image_description"] == SUNSET
    assert history["messages"][-1]["image_path"] == f"art/{saved.name}"

    # The next turn, right after a picture: held back unless asked.
    code, out, err = await imagestream(
        "chat", "Thanks!", *common, "--token", "unused-direct-token-0123456789", "--key", KEY,
        "--out-dir", "art", "--history", "talk.json", cwd=tmp_path,
    )  # fmt: skip
    assert code != 0  # the direct token wins over the key, and the server does not know it
    assert "error:" in err and "given directly" in err
    assert "unused-direct-token" not in err

    code, out, err = await imagestream(
        "chat", "Thanks!", *common, "--key", KEY, "--out-dir", "art", "--history", "talk.json",
        cwd=tmp_path,
    )  # fmt: skip
    assert code == 0, err
    assert "--another-image" in err
    assert len(list((tmp_path / "art").iterdir())) == 1
    sent = server.of("POST", "/v3/chat/completions")[-1].json["messages"]
    assert sent[-2] == {"role": "assistant", "content": f'<image description="{SUNSET}" />'}


async def test_chat_with_animus_pictures_and_json_output(
    server: AnimusServer, tmp_path: Path
) -> None:
    server.chats = [ChatScript(image_prompt=SUNSET)]
    code, out, err = await imagestream(
        "chat",
        "Show me a sunset",
        "-p",
        "animus",
        "--base-url",
        server.base,
        "--key",
        KEY,
        "-o",
        "poll_interval",
        "0.01",
        "--output",
        "sunset.png",
        "--json",
        "-q",
        cwd=tmp_path,
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["reply"] == "Sure! Here is a sunset over the sea."
    assert summary["image_prompt"] == SUNSET
    assert summary["images"][0]["path"] == "sunset.png"
    assert (tmp_path / "sunset.png").read_bytes() == PNG
    assert err == ""
    # One key exchange serves both the chat and the picture.
    assert len(server.exchanges) == 1
    assert server.of("POST", "/v3/generation/create")[0].json == {"prompt": SUNSET}


async def test_a_bad_key_is_one_line_that_never_shows_it(
    server: AnimusServer, tmp_path: Path
) -> None:
    server.echo_key = True
    wrong = "wrong-key-0123456789abcdefghij"
    code, out, err = await imagestream(
        "chat", "Hi", "--base-url", server.base, "--key", wrong, cwd=tmp_path
    )
    assert code == 1
    assert err.startswith("error: animus: exchanging the API key for a token failed")
    assert "Traceback" not in err
    assert wrong not in out + err


async def test_the_command_is_listed(tmp_path: Path) -> None:
    code, out, err = await imagestream("--help", cwd=tmp_path)
    assert code == 0, err
    assert "chat" in out and "Chat with a model that can send pictures" in out
