"""Where the server is, its URLs, and the checkpoints it has.

The checkpoint list comes from ``GET /object_info/CheckpointLoaderSimple``
(the ``ckpt_name`` choices of the node that loads one). It is read two ways:
by a run, with the run's HTTP client; and by ``imagestream providers`` /
``imagestream models``, which call :func:`server_models` outside any event
loop: a short blocking request (the kit's
:func:`~imagestream.provider.probe_json`). A server that is not running
answers neither, and the list is simply empty. Both keep what they found for
a little while.

Light on purpose: the entry module registers :func:`server_models` as the
provider's models, so listing providers imports this module, never the
provider's.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from imagestream import ModelInfo
from imagestream.provider import api_url, probe_json

__all__ = [
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "cached_checkpoints",
    "checkpoint_names",
    "endpoint",
    "fetch_checkpoints_sync",
    "remember_checkpoints",
    "resolve_base_url",
    "server_models",
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
    A ``user:password@`` in ``base_url`` is sent as basic authentication.
    """
    answer = probe_json(endpoint(base_url, f"/object_info/{CHECKPOINT_NODE}"), timeout=timeout)
    names = None if answer is None else checkpoint_names(answer)
    remember_checkpoints(base_url, names)
    return names


def server_models() -> tuple[ModelInfo, ...]:
    """The server's checkpoints as models, when it answers (``COMFYUI_BASE_URL``, else the default).

    Read with a short blocking request outside an event loop (for
    ``imagestream providers``); inside one, only what a run or an earlier
    listing found. An unreachable server lists nothing. The provider's
    ``models``, and what its entry module registers.
    """
    base_url = resolve_base_url(None)
    names, fresh = cached_checkpoints(base_url)
    if not fresh and not _in_event_loop():
        names = fetch_checkpoints_sync(base_url)
    return tuple(
        ModelInfo(name, "checkpoint on the server", streams_previews=True) for name in names or ()
    )


def _in_event_loop() -> bool:
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return False  # no event loop without asyncio
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
