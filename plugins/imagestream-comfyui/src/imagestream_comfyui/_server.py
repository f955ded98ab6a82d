"""Where the server is, its URLs, and the checkpoints it has.

The checkpoint list comes from ``GET /object_info/CheckpointLoaderSimple``
(the ``ckpt_name`` choices of the node that loads one). It is read two ways:
by a run, with the run's HTTP client; and by ``imagestream providers`` /
``imagestream models``, which read :attr:`ComfyUIProvider.models
<imagestream_comfyui.ComfyUIProvider.models>` outside any event loop, with a
short blocking request. A server that is not running answers neither, and
the list is simply empty. Both keep what they found for a little while.
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

from imagestream.provider import api_url

__all__ = [
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "cached_checkpoints",
    "checkpoint_names",
    "endpoint",
    "fetch_checkpoints_sync",
    "remember_checkpoints",
    "resolve_base_url",
]

DEFAULT_BASE_URL = "http://127.0.0.1:8188"
"""Where ComfyUI listens unless told otherwise (``python main.py``)."""

BASE_URL_ENV = "COMFYUI_BASE_URL"
"""The environment variable that names another server (``--base-url`` wins over it)."""

CHECKPOINT_NODE = "CheckpointLoaderSimple"
LIST_TIMEOUT = 1.0
"""Seconds ``imagestream providers`` waits for the server's checkpoint list."""
CACHE_SECONDS = 30.0

_cache: dict[str, tuple[float, tuple[str, ...] | None]] = {}


def resolve_base_url(given: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The request's base URL, else ``COMFYUI_BASE_URL``, else the default; no trailing ``/``."""
    environ = os.environ if environ is None else environ
    url = given or environ.get(BASE_URL_ENV, "").strip() or DEFAULT_BASE_URL
    return url.rstrip("/")


endpoint = api_url
"""``base_url`` + ``path`` with ``params``: the kit's :func:`~imagestream.provider.api_url`."""


def checkpoint_names(info: Any) -> tuple[str, ...]:
    """The ``ckpt_name`` choices in an ``/object_info`` answer (old and new input formats)."""
    if not isinstance(info, Mapping):
        return ()
    node = info.get(CHECKPOINT_NODE, info)
    try:
        spec = node["input"]["required"]["ckpt_name"]
    except (KeyError, TypeError):
        return ()
    if not isinstance(spec, Sequence) or isinstance(spec, str) or not spec:
        return ()
    choices: Any = spec[0]
    # Newer servers describe a list input as ["COMBO", {"options": [...]}].
    if choices == "COMBO" and len(spec) > 1 and isinstance(spec[1], Mapping):
        choices = spec[1].get("options", ())
    if not isinstance(choices, Sequence) or isinstance(choices, str):
        return ()
    return tuple(name for name in choices if isinstance(name, str) and name)


def remember_checkpoints(base_url: str, names: tuple[str, ...] | None) -> None:
    """Keep a server's checkpoint list (``None``: the server did not answer)."""
    _cache[base_url] = (time.monotonic(), names)


def cached_checkpoints(base_url: str) -> tuple[tuple[str, ...] | None, bool]:
    """``(names, fresh)``: what was last found for ``base_url`` and whether it is recent."""
    found = _cache.get(base_url)
    if found is None:
        return None, False
    when, names = found
    return names, time.monotonic() - when < CACHE_SECONDS


def fetch_checkpoints_sync(
    base_url: str, *, timeout: float = LIST_TIMEOUT
) -> tuple[str, ...] | None:
    """The server's checkpoints, read with a short blocking request; ``None`` when it does not answer.

    Never raises: listing providers must work whether or not ComfyUI is running.
    """
    import urllib.request

    url = endpoint(base_url, f"/object_info/{CHECKPOINT_NODE}")
    parts = urlsplit(url)
    headers = {"Accept": "application/json"}
    if parts.username is not None:
        # urllib ignores user:password@ in a URL: send it as basic authentication.
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port:
            netloc += f":{parts.port}"
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    handlers: list[urllib.request.BaseHandler] = []
    if _is_loopback(parts.hostname):
        handlers.append(urllib.request.ProxyHandler({}))  # never send a local request to a proxy
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=timeout) as answer:
            body = answer.read(8 * 2**20)
        names: tuple[str, ...] | None = checkpoint_names(json.loads(body))
    except Exception:  # not running, not ComfyUI, not JSON: no list, no error
        names = None
    remember_checkpoints(base_url, names)
    return names


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
