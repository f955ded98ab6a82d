"""Where the web UI is, its URLs, its credentials, and the checkpoints it has.

The checkpoint list is ``GET /sdapi/v1/sd-models``: one object per
checkpoint, with its ``title`` (``"name.safetensors [hash]"``), its
``model_name`` (the file name without extension) and its ``filename``. It is
read by a run with the run's HTTP client, and by ``imagestream providers``,
which calls :func:`server_models` outside any event loop: a short blocking
request (the kit's :func:`~imagestream.provider.probe_json`). A server that
is not running lists nothing.

Light on purpose: the entry module registers :func:`server_models` as the
provider's models, so listing providers imports this module, never the
provider's.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from imagestream import ModelInfo
from imagestream.provider import api_url, find_key, probe_json

from ._meta import NAME

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
    "server_models",
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
    import base64

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
    base_url: str,
    credentials: str | Callable[[], str | None] | None = None,
    *,
    timeout: float = LIST_TIMEOUT,
) -> tuple[Checkpoint, ...] | None:
    """The server's checkpoints, read with a short blocking request; ``None`` when it does not answer.

    ``credentials`` is ``user:password``, or a function that reads it, called
    only if the server asks for a login; a ``user:password@`` in ``base_url``
    wins over both. Never raises: listing providers must work whether or not
    the web UI is running.
    """
    answer = probe_json(
        endpoint(base_url, "/sdapi/v1/sd-models"), credentials=credentials, timeout=timeout
    )
    found = None if answer is None else checkpoints_from(answer)
    remember_checkpoints(base_url, found)
    return found


def server_models() -> tuple[ModelInfo, ...]:
    """The server's checkpoints as models, when it answers (``A1111_BASE_URL``, else the default).

    Read with a short blocking request outside an event loop (for
    ``imagestream providers``); inside one, only what a run or an earlier
    listing found. An unreachable server lists nothing. The login is
    ``A1111_API_AUTH``, else the one stored with ``imagestream keys set
    a1111``, read only when the server asks for one. The provider's
    ``models``, and what its entry module registers.
    """
    base_url = resolve_base_url(None)
    found, fresh = cached_checkpoints(base_url)
    if not fresh and not _in_event_loop():
        found = fetch_checkpoints_sync(base_url, _login())
    return tuple(
        ModelInfo(item.model_name, item.title, streams_previews=True) for item in found or ()
    )


def _login() -> str | Callable[[], str | None]:
    """``A1111_API_AUTH`` when set; else a function reading the key store (only on a 401)."""
    if os.environ.get(AUTH_ENV, "").strip():
        found = find_key(None, (AUTH_ENV,), provider=NAME)
        if found is not None:
            return found.get()

    def stored() -> str | None:
        key = find_key(None, (AUTH_ENV,), provider=NAME)
        return key.get() if key is not None else None

    return stored


def _in_event_loop() -> bool:
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return False  # no event loop without asyncio
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
