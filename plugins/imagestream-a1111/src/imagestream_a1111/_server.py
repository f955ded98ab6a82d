"""Where the web UI is, its URLs, its credentials, and the checkpoints it has.

The checkpoint list is ``GET /sdapi/v1/sd-models``: one object per
checkpoint, with its ``title`` (``"name.safetensors [hash]"``), its
``model_name`` (the file name without extension) and its ``filename``. It is
read by a run with the run's HTTP client, and by ``imagestream providers``
with a short blocking request outside any event loop; a server that is not
running lists nothing.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import attrs

from imagestream.provider import api_url

__all__ = [
    "AUTH_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "Checkpoint",
    "basic_auth",
    "cached_checkpoints",
    "checkpoints_from",
    "endpoint",
    "fetch_checkpoints_sync",
    "remember_checkpoints",
    "resolve_base_url",
]

DEFAULT_BASE_URL = "http://127.0.0.1:7860"
"""Where the web UI (and Forge) listens unless told otherwise."""

BASE_URL_ENV = "A1111_BASE_URL"
"""The environment variable that names another server (``--base-url`` wins over it)."""

AUTH_ENV = "A1111_API_AUTH"
"""The environment variable with ``user:password`` for a server started with ``--api-auth``."""

LIST_TIMEOUT = 1.0
CACHE_SECONDS = 30.0


@attrs.frozen
class Checkpoint:
    """One checkpoint the server has.

    Attributes:
        title: What the server calls it, and what a request names it by
            (``"v1-5-pruned-emaonly.safetensors [6ce0161689]"``).
        model_name: The file name without its extension: the id listed.
        filename: The file's path on the server.
    """

    title: str
    model_name: str
    filename: str = ""

    def names(self) -> set[str]:
        """Every name it may be asked for by: model name, title, file name, title without the hash."""
        base = self.filename.replace("\\", "/").rsplit("/", 1)[-1]
        return {self.title, self.model_name, base, self.title.split(" [", 1)[0]} - {""}


_cache: dict[str, tuple[float, tuple[Checkpoint, ...] | None]] = {}


def resolve_base_url(given: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The request's base URL, else ``A1111_BASE_URL``, else the default; no trailing ``/``."""
    environ = os.environ if environ is None else environ
    url = given or environ.get(BASE_URL_ENV, "").strip() or DEFAULT_BASE_URL
    return url.rstrip("/")


endpoint = api_url
"""``base_url`` + ``path`` with ``params``: the kit's :func:`~imagestream.provider.api_url`."""


def basic_auth(credentials: str) -> str:
    """The ``Authorization`` value for ``user:password``."""
    return "Basic " + base64.b64encode(credentials.encode("utf-8")).decode("ascii")


def checkpoints_from(answer: Any) -> tuple[Checkpoint, ...]:
    """The checkpoints in an ``/sdapi/v1/sd-models`` answer (entries without a title are skipped)."""
    if not isinstance(answer, Sequence) or isinstance(answer, str):
        return ()
    found = []
    for item in answer:
        if isinstance(item, Mapping) and isinstance(item.get("title"), str) and item["title"]:
            name = item.get("model_name")
            found.append(
                Checkpoint(
                    item["title"],
                    name if isinstance(name, str) and name else item["title"].split(" [", 1)[0],
                    str(item.get("filename") or ""),
                )
            )
    return tuple(found)


def remember_checkpoints(base_url: str, found: tuple[Checkpoint, ...] | None) -> None:
    """Keep a server's checkpoints (``None``: the server did not answer)."""
    _cache[base_url] = (time.monotonic(), found)


def cached_checkpoints(base_url: str) -> tuple[tuple[Checkpoint, ...] | None, bool]:
    """``(checkpoints, fresh)``: what was last found for ``base_url`` and whether it is recent."""
    found = _cache.get(base_url)
    if found is None:
        return None, False
    when, checkpoints = found
    return checkpoints, time.monotonic() - when < CACHE_SECONDS


def fetch_checkpoints_sync(
    base_url: str, credentials: str | None = None, *, timeout: float = LIST_TIMEOUT
) -> tuple[Checkpoint, ...] | None:
    """The server's checkpoints, read with a short blocking request; ``None`` when it does not answer.

    Never raises: listing providers must work whether or not the web UI is running.
    """
    import urllib.request

    url = endpoint(base_url, "/sdapi/v1/sd-models")
    parts = urlsplit(url)
    headers = {"Accept": "application/json"}
    if parts.username is not None:
        # urllib ignores user:password@ in a URL: send it as basic authentication.
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        host = parts.hostname or ""
        netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    if credentials:
        headers["Authorization"] = basic_auth(credentials)
    handlers: list[urllib.request.BaseHandler] = []
    if _is_loopback(parts.hostname):
        handlers.append(urllib.request.ProxyHandler({}))  # never send a local request to a proxy
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=timeout) as answer:
            body = answer.read(8 * 2**20)
        found: tuple[Checkpoint, ...] | None = checkpoints_from(json.loads(body))
    except Exception:  # not running, not the web UI, refused: no list, no error
        found = None
    remember_checkpoints(base_url, found)
    return found


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
