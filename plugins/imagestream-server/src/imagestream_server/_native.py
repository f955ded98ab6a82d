"""The native API: providers, a generation as server-sent events, the gallery, saved files.

``POST /api/generate`` (JSON) and ``GET /api/generate?prompt=...`` (for
``EventSource``) answer ``text/event-stream``: one event per chunk, encoded
by the core's :func:`imagestream.chunk_to_sse` (previews and finals carry
their image as base64, so a page shows each at once), then ``done`` (the
saved files' URLs, text, usage, analytics) or ``error`` (the typed error's
class, message and hint).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from imagestream import (
    GenerationResult,
    ImagestreamError,
    chunk_to_dict,
    chunk_to_sse,
    list_providers,
)

from ._errors import error_body, error_response
from ._files import file_url, gallery, serve_file
from ._generations import request_params
from ._keys import CONFIG, GENERATIONS, client_key
from ._sse import ClientGone, EventStream, sse_event
from ._watch import until_client_leaves

__all__ = ["add_native_routes"]


def _done(result: GenerationResult) -> dict[str, Any]:
    usage = chunk_to_dict(result.usage) if result.usage is not None else None
    if usage is not None:
        usage.pop("type", None)
    return {
        "images": [
            {
                "url": file_url(saved.path),
                "sample": saved.sample,
                "mime_type": saved.mime_type,
                "width": saved.width,
                "height": saved.height,
                "bytes": saved.bytes,
            }
            for saved in result.saved
        ],
        "text": result.text,
        "usage": usage,
        "analytics": result.analytics.as_dict() if result.analytics else None,
    }


async def providers(request: web.Request) -> web.Response:
    """``GET /api/providers``: what can be asked for (never a key)."""
    config = request.app[CONFIG]
    found = [dict(provider.describe()) for provider in list_providers()]
    for entry in found:
        entry.pop("key_env", None)  # which variable holds a key is the server's business
    default = config.default_provider or "procedural"
    return web.json_response({"providers": found, "default_provider": default})


async def generate(request: web.Request) -> web.StreamResponse:
    """``POST``/``GET /api/generate``: one generation as server-sent events."""
    try:
        if request.method == "GET":
            params = request_params(dict(request.query), from_query=True)
        else:
            try:
                data = await request.json()
            except ValueError:
                raise _bad_json() from None
            if not isinstance(data, Mapping):
                raise _bad_json()
            params = request_params(data)
    except ImagestreamError as exc:
        return error_response(exc)
    generations = request.app[GENERATIONS]
    config = request.app[CONFIG]
    events = EventStream(
        request, ping_interval=config.ping_interval, send_timeout=config.send_timeout
    )
    try:
        run = generations.run(params, client_key(request))
        chunks = await run.__aenter__()
    except ImagestreamError as exc:  # over a limit: refused before any byte of the stream
        return error_response(exc)
    try:
        await events.open()

        async def relay() -> None:
            number = 0
            try:
                async for chunk in chunks:
                    await events.send(chunk_to_sse(chunk, event_id=str(number)))
                    number += 1
                    # Sent is done with: a relay keeps no preview at all (the
                    # result would hold the latest one of each of its streams).
                    chunks.result.previews.clear()
                await events.send(sse_event("done", _done(chunks.result), number))
            except ImagestreamError as exc:
                await events.send(sse_event("error", error_body(exc)["error"], number))

        await until_client_leaves(events.check, relay())
    except ClientGone:
        pass  # the client left: the generation is closed below, upstream included
    finally:
        await run.__aexit__(None, None, None)
        await events.close()
    return events.response


def _bad_json() -> ImagestreamError:
    from imagestream import ValidationError

    return ValidationError("the body must be a JSON object", hint='e.g. {"prompt": "a red circle"}')


async def gallery_route(request: web.Request) -> web.Response:
    """``GET /api/gallery``: earlier results, newest first."""
    return web.json_response({"images": gallery(request.app[CONFIG].out_dir)})


async def files(request: web.Request) -> web.StreamResponse:
    """``GET /files/{name}``: one saved image."""
    return serve_file(request.app[CONFIG].out_dir, request.match_info["name"])


def add_native_routes(app: web.Application) -> None:
    """Register the native API on ``app``."""
    app.router.add_get("/api/providers", providers)
    app.router.add_post("/api/generate", generate)
    app.router.add_get("/api/generate", generate)
    app.router.add_get("/api/gallery", gallery_route)
    app.router.add_get("/files/{name}", files)
