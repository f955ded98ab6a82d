"""The server's own saved images: the gallery, and serving one file without path tricks."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aiohttp import web

__all__ = ["IMAGE_TYPES", "file_url", "gallery", "serve_file"]

IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
}
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
_GALLERY_SIZE = 100


def file_url(path: Path) -> str:
    """The URL of a saved file (the saver writes directly into the output directory)."""
    return f"/files/{path.name}"


def gallery(out_dir: Path) -> list[dict[str, Any]]:
    """The newest saved images first (what this server, or its siblings sharing the folder, made)."""
    if not out_dir.is_dir():
        return []
    entries: list[dict[str, Any]] = []
    for path in out_dir.iterdir():
        mime = IMAGE_TYPES.get(path.suffix.lower())
        if mime is None or not _SAFE.match(path.name) or not path.is_file():
            continue
        stat = path.stat()
        entries.append(
            {
                "url": file_url(path),
                "name": path.name,
                "mime_type": mime,
                "bytes": stat.st_size,
                "modified": stat.st_mtime,
            }
        )
    entries.sort(key=lambda entry: float(entry["modified"]), reverse=True)
    return entries[:_GALLERY_SIZE]


def serve_file(out_dir: Path, name: str) -> web.StreamResponse:
    """One saved image; anything that is not a plain file name in ``out_dir`` is a 404.

    The name is checked against a strict pattern (no ``/``, no ``..``, no
    leading dot) and the resolved path must still lie in ``out_dir``, so
    neither traversal nor a symlink planted in the folder reaches other files.
    """
    mime = IMAGE_TYPES.get(Path(name).suffix.lower())
    if mime is None or not _SAFE.match(name):
        raise web.HTTPNotFound()
    root = out_dir.resolve()
    path = (root / name).resolve()
    if path.parent != root or not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(
        path, headers={"Content-Type": mime, "X-Content-Type-Options": "nosniff"}
    )
