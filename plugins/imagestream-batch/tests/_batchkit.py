"""Providers and helpers shared by the batch tests (conftest puts this folder on sys.path).

Run as a script it is the ``imagestream`` command with the test providers
registered, which is how the kill tests run the real CLI in a subprocess::

    python _batchkit.py batch job.jsonl -p tiny ...

The environment steers it:

``BATCH_RECORD``
    A file each generation appends its prompt to (one ``write`` of one line,
    ``O_APPEND``: lines from concurrent writers never mix).
``BATCH_DELAY``
    Seconds each ``tiny`` generation takes.
``BATCH_HANG_IN_WRITE``
    A marker path. The first fsync of an image's temporary creates it and
    then hangs, so that a test can kill the process in the middle of writing
    an image.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import struct
import sys
import time
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import imagestream
from imagestream import (
    ImageData,
    ImageFinal,
    ImageRequest,
    Provider,
    ProviderResponse,
    RunContext,
    ServerError,
    Usage,
    hookimpl,
)
from imagestream.provider import read_json

RECORD_ENV = "BATCH_RECORD"
DELAY_ENV = "BATCH_DELAY"
HANG_ENV = "BATCH_HANG_IN_WRITE"


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A PNG of one colour, with the standard library only."""

    def section(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress((b"\x00" + bytes(rgb) * width) * height)
    return (
        b"\x89PNG\r\n\x1a\n"
        + section(b"IHDR", header)
        + section(b"IDAT", pixels)
        + section(b"IEND", b"")
    )


def encoded(fmt: str, rgb: tuple[int, int, int]) -> bytes:
    """A 4x4 image of one colour as ``fmt`` (``png``; ``jpeg`` and ``webp`` need Pillow)."""
    if fmt == "png":
        return png(4, 4, rgb)
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), rgb).save(buffer, format=fmt.upper())
    return buffer.getvalue()


def colour_of(prompt: str) -> tuple[int, int, int]:
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    return digest[0], digest[1], digest[2]


def record(prompt: str) -> None:
    """Append ``prompt`` to the file ``BATCH_RECORD`` names, if it names one."""
    path = os.environ.get(RECORD_ENV)
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (prompt + "\n").encode("utf-8"))
    finally:
        os.close(fd)


class TinyProvider(Provider):
    """Offline and fast: a 4x4 PNG in the prompt's colour per image, after ``delay`` seconds.

    Each generation is counted in :attr:`calls` (by prompt) and appended to
    ``BATCH_RECORD``. ``fail`` maps a prompt to how many first attempts fail
    with a 503; ``cost`` is reported per image. ``output_format`` ``jpeg`` or
    ``webp`` gives that type instead (with Pillow).
    """

    name = "tiny"
    description = "test provider: a 4x4 PNG in the prompt's colour"

    def __init__(
        self,
        *,
        delay: float | None = None,
        fail: dict[str, int] | None = None,
        cost: float | None = None,
        max_concurrency: int | None = None,
        name: str = "tiny",
    ) -> None:
        self.name = name  # type: ignore[misc]
        self.delay = delay
        self.fail = dict(fail or {})
        self.cost = cost
        self.max_concurrency = max_concurrency  # type: ignore[misc]
        self.calls: dict[str, int] = {}
        self.active = 0
        self.most_active = 0

    async def generate(self, request: ImageRequest, context: RunContext) -> ProviderResponse:
        self.calls[request.prompt] = self.calls.get(request.prompt, 0) + 1
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            delay = self.delay if self.delay is not None else float(os.environ.get(DELAY_ENV, 0))
            if delay:
                await asyncio.sleep(delay)
            if self.fail.get(request.prompt, 0) > 0:
                self.fail[request.prompt] -= 1
                raise ServerError("overloaded", provider=self.name, status=503)
            record(request.prompt)
            seed = request.seed if request.seed is not None else 7
            fmt = request.output_format or "png"
            images = [
                ImageFinal(
                    ImageData.from_bytes(
                        encoded(fmt, colour_of(f"{request.prompt}#{sample}")),
                    ),
                    sample=sample,
                    seed=seed + sample,
                    mime_type=f"image/{fmt}",
                )
                for sample in range(request.n)
            ]
            usage = Usage(cost_usd=self.cost * request.n) if self.cost is not None else None
            return ProviderResponse(images=images, usage=usage)
        finally:
            self.active -= 1


class HttpProvider(Provider):
    """Asks a local server for each image, through the kit (``context.http.send``)."""

    name = "http-tiny"
    description = "test provider: POST {base_url}/generate, JSON with the PNG in base64"

    async def generate(self, request: ImageRequest, context: RunContext) -> ProviderResponse:
        response = await context.http.send(
            "POST",
            f"{request.base_url}/generate",
            provider=self.name,
            json_body={"prompt": request.prompt},
        )
        body = await read_json(context, response, provider=self.name)
        image = ImageData.from_base64(body["b64"], "image/png")
        return ProviderResponse(images=[ImageFinal(image, mime_type="image/png")])


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    """What the launcher registers: ``tiny`` (reading its delay from the environment)."""
    register(TinyProvider())


def write_job(path: Path, lines: Iterable[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def manifest_states(out_dir: Path) -> dict[str, str]:
    """``id -> state`` read from the manifest while (or after) a run writes it."""
    path = out_dir / "manifest.db"
    if not path.exists():
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return dict(db.execute("SELECT id, state FROM requests"))
    except sqlite3.OperationalError:  # the schema is not there yet
        return {}
    finally:
        db.close()


def read_results(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _hang_in_image_writes(marker: Path) -> None:
    """Make the first fsync of an image temporary create ``marker`` and hang."""
    real_fsync = os.fsync

    def fsync(fd: Any) -> None:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = ""
        if ".png." in target and target.endswith(".batch-tmp") and not marker.exists():
            marker.write_text(target, encoding="utf-8")
            time.sleep(120)
        real_fsync(fd)

    os.fsync = fsync


def main() -> None:
    """``imagestream`` with :func:`register_providers`' providers."""
    imagestream.register_plugin(sys.modules[__name__], "batch-test-providers")
    hang = os.environ.get(HANG_ENV)
    if hang:
        _hang_in_image_writes(Path(hang))
    from imagestream.cli import main as cli

    cli()


if __name__ == "__main__":
    main()
