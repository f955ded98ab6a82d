"""Built-in plugin ``cache``: replay an identical earlier run instead of generating again.

Off unless a run asks for it (``cache=True``, ``--cache``), and then only for
requests with a fixed ``seed``. It wraps the ``stream`` hook: on a hit the
stored chunks of the provider's stream are replayed at once, without calling
the provider, and go through ``on_chunk``, ``postprocess`` and saving like any
other chunks; on a miss the real stream is recorded and stored when it ends
successfully. Image chunks replayed from the cache carry
``extra["replayed"] = True``; usage chunks cost 0, the original cost kept in
``raw["replayed"]["original_cost_usd"]``; the run's result has
``replayed=True``. Switch it off with ``IMAGESTREAM_DISABLE_PLUGINS=cache``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import AsyncIterator, Generator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import attrs

from .._chunks import Chunk, ImageFinal, ImagePreview, Usage
from .._image import ImageData
from .._request import ImageRequest
from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from .._cachestore import CacheEntry, CacheStore
    from .._context import RunContext
    from .._provider import Provider
    from .._result import GenerationResult

__all__ = ["GenerationCache", "cache_key", "replayed"]

_STATE = "imagestream.cache"

KEY_FORMAT = 1
"""Part of every key: bump it when what a key covers changes, and old entries simply miss."""

IGNORED = frozenset({"api_key", "timeout", "deadline"})
"""Request fields and options that cannot change the pictures, left out of the key."""

# Text this long cannot be a file name (base64 payloads are far longer).
_PATH_LIKE_MAX = 4096


class Uncacheable(Exception):
    """The request holds a value the key cannot describe faithfully."""


def _file_digest(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _canonical(value: Any, *, option: bool) -> Any:
    """``value`` as tagged JSON-able data: equal values give equal data, different ones differ.

    Bytes, images and files are represented by the SHA-256 of their content,
    so an input image edited in place gives another key. In provider options,
    text that names an existing file is taken to be that file (the way input
    images are given on the command line).
    """
    if value is None:
        return ["none"]
    if isinstance(value, bool):
        return ["bool", value]
    if isinstance(value, int):
        return ["int", value]
    if isinstance(value, float):
        return ["float", value if math.isfinite(value) else repr(value)]
    if isinstance(value, str):
        if (
            option
            and 0 < len(value) < _PATH_LIKE_MAX
            and "\0" not in value
            and os.path.isfile(value)
        ):
            return ["file", value, _file_digest(value)]
        return ["str", value]
    if isinstance(value, bytes | bytearray | memoryview):
        return ["bytes", hashlib.sha256(value).hexdigest()]
    if isinstance(value, ImageData):
        return ["image", value.sha256]
    if isinstance(getattr(value, "image", None), ImageData):  # an InputImage
        return ["image", value.image.sha256]
    if isinstance(value, os.PathLike):
        path = Path(value)
        return ["path", str(path), _file_digest(path) if path.is_file() else None]
    if isinstance(value, Mapping):
        items = [[str(key), _canonical(item, option=option)] for key, item in value.items()]
        return ["map", sorted(items, key=lambda pair: pair[0])]
    if isinstance(value, list | tuple):
        return ["list", [_canonical(item, option=option) for item in value]]
    if isinstance(value, set | frozenset):
        members = [_canonical(item, option=option) for item in value]
        return ["set", sorted(members, key=lambda m: json.dumps(m, sort_keys=True))]
    raise Uncacheable(f"a {type(value).__name__} value has no stable description")


def _server(base_url: str | None) -> str | None:
    """The base URL without credentials: they change who pays, not which server answers."""
    if not base_url:
        return None
    parts = urlsplit(base_url.strip())
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme.lower(), host, parts.path.rstrip("/"), parts.query, ""))


def cache_key(request: ImageRequest, provider: Provider) -> str:
    """The SHA-256 hex digest that names the entry of ``request`` served by ``provider``.

    Covers the provider, the model (or the provider's default), the prompt,
    every request field and every provider option, the base URL without
    credentials; not the API key, timeouts or deadlines.

    Raises:
        Uncacheable: An option value has no stable description.
        OSError: An input file named in the options cannot be read.
    """
    fields: dict[str, Any] = {}
    for field in attrs.fields(ImageRequest):
        name = field.name
        if name in IGNORED or name in {"provider", "model", "base_url", "options"}:
            continue
        fields[name] = _canonical(getattr(request, name), option=False)
    options = {
        str(name): _canonical(value, option=True)
        for name, value in request.options.items()
        if name not in IGNORED
    }
    material = {
        "key_format": KEY_FORMAT,
        "provider": provider.name,
        "model": request.model or provider.default_model,
        "server": _server(request.base_url),
        "fields": fields,
        "options": options,
    }
    text = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def replayed(chunk: Chunk, original_cost_usd: float | None = None) -> Chunk:
    """``chunk`` marked as replayed from the cache.

    Images get ``extra["replayed"] = True``. Usage costs nothing (``cost_usd``
    0), its original cost kept in ``raw["replayed"]["original_cost_usd"]``.
    Text has nowhere to carry a mark and comes out as it was stored.
    """
    if isinstance(chunk, ImagePreview | ImageFinal):
        return attrs.evolve(chunk, extra={**chunk.extra, "replayed": True})
    if isinstance(chunk, Usage):
        return attrs.evolve(
            chunk,
            cost_usd=0.0,
            raw={**chunk.raw, "replayed": {"original_cost_usd": original_cost_usd}},
        )
    return chunk


def _original_cost(chunks: list[Chunk], provider: Provider, model: str | None) -> float | None:
    """What the run cost, the way the analytics middleware counts it."""
    usage = next((c for c in reversed(chunks) if isinstance(c, Usage)), None)
    if usage is None:
        return None
    if usage.cost_usd is not None:
        return usage.cost_usd
    try:
        pricing = provider.pricing(model)
    except Exception:
        return None
    finals = sum(1 for c in chunks if isinstance(c, ImageFinal))
    return pricing.cost(usage, images=finals) if pricing else None


async def _close(iterator: AsyncIterator[Chunk]) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


class GenerationCache:
    """The cache plugin (one instance serves every run; the store is read from the environment per run)."""

    @hookimpl(wrapper=True)
    def stream(
        self, request: ImageRequest, provider: Provider, context: RunContext
    ) -> Generator[None, AsyncIterator[Chunk] | None, AsyncIterator[Chunk] | None]:
        """Replay a stored stream, or record the real one, for runs with ``cache=True``."""
        if not context.switches.get("cache"):
            return (yield)
        if request.seed is None:
            context.logger.debug(
                "cache: the request has no seed, so it is neither replayed nor stored"
            )
            return (yield)
        try:
            key = cache_key(request, provider)
        except (Uncacheable, OSError) as exc:
            context.logger.debug("cache: not cached: %s", exc)
            return (yield)
        from .._cachestore import CacheStore

        store = CacheStore.from_env()  # a malformed cap is the caller's to fix: raise it now
        inner = yield
        if inner is None:
            return None
        return self._through(inner, key, store, provider, context)

    async def _through(
        self,
        inner: AsyncIterator[Chunk],
        key: str,
        store: CacheStore,
        provider: Provider,
        context: RunContext,
    ) -> AsyncIterator[Chunk]:
        import asyncio

        try:
            entry: CacheEntry | None = await asyncio.to_thread(store.load, key)
            if entry is not None:
                # The provider's stream was made but never started: close it unread.
                await _close(inner)
                context.state[_STATE] = True
                context.logger.debug("cache: replaying entry %s", key)
                for chunk in entry.chunks:
                    yield replayed(chunk, entry.original_cost_usd)
                return
            recorded: list[Chunk] = []
            async for chunk in inner:
                recorded.append(chunk)
                yield chunk
            # Only here, after the stream ended by itself: an error or an
            # early close never reaches this line, and nothing is stored.
            model = context.request.model or provider.default_model
            await asyncio.to_thread(
                store.save,
                key,
                recorded,
                original_cost_usd=_original_cost(recorded, provider, context.request.model),
                provider=provider.name,
                model=model,
            )
        finally:
            await _close(inner)

    @hookimpl
    def on_result(self, result: GenerationResult, context: RunContext) -> None:
        """Mark the result of a replayed run."""
        if context.state.get(_STATE):
            result.replayed = True
