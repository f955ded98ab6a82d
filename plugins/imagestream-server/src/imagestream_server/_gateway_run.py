"""Running one gateway request: a generation relayed as events, or collected into one answer.

Both go through :meth:`Generations.run`, so the server's limits and saving
apply, and both stop the upstream generation when the client leaves.

A streamed answer waits a moment (``FIRST_CHUNK_GRACE``) for the first chunk
before sending its headers: requests a provider refuses are refused in its
``validate``, before any network call, so they still get an HTTP status with
OpenAI's error body. After the headers, errors travel in-band.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any, Protocol

from aiohttp import web

from imagestream import Chunk, ChunkStream, GenerationResult

from ._keys import CONFIG, GENERATIONS, client_key
from ._openai_errors import GatewayError, gateway_error, openai_error_response
from ._sse import ClientGone, EventStream
from ._watch import until_client_leaves

__all__ = ["FIRST_CHUNK_GRACE", "Relay", "collect_run", "stream_run"]

FIRST_CHUNK_GRACE = 0.5
"""Seconds a stream waits for its first chunk before sending headers (refusals come sooner)."""


class Relay(Protocol):
    """Turns one run's chunks into one API's events (each method returns whole SSE events)."""

    def opening(self) -> list[bytes]:
        """Events sent as soon as the stream opens."""

    def chunk(self, chunk: Chunk) -> list[bytes]:
        """Events for one chunk (often none)."""

    def finish(self, result: GenerationResult) -> list[bytes]:
        """Events closing a successful run (raise :class:`GatewayError` if it was not one)."""

    def failure(self, error: GatewayError) -> list[bytes]:
        """Events reporting ``error`` in-band."""


async def _next(chunks: ChunkStream) -> Chunk | None:
    try:
        return await chunks.__anext__()
    except StopAsyncIteration:
        return None


def _client_left(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def collect_run(request: web.Request, params: Mapping[str, Any]) -> GenerationResult | None:
    """Run to the end and return the result (``None``: the client left, the run was stopped).

    Raises:
        Exception: What the run raised (a limit, a refusal, a provider's failure).
    """
    generations = request.app[GENERATIONS]
    async with generations.run(params, client_key(request)) as chunks:

        async def drain() -> GenerationResult:
            async for _ in chunks:
                pass
            return chunks.result

        return await until_client_leaves(lambda _: _client_left(request), drain())


async def stream_run(
    request: web.Request, params: Mapping[str, Any], relay: Relay
) -> web.StreamResponse:
    """Answer ``text/event-stream``: ``relay``'s events for one run, errors in-band once started."""
    generations = request.app[GENERATIONS]
    config = request.app[CONFIG]
    try:
        run = generations.run(params, client_key(request))
        chunks = await run.__aenter__()
    except Exception as exc:  # over a limit: refused before anything starts
        return openai_error_response(exc)
    first: asyncio.Future[Chunk | None] = asyncio.ensure_future(_next(chunks))
    events = EventStream(
        request, ping_interval=config.ping_interval, send_timeout=config.send_timeout
    )
    opened = False
    try:
        await asyncio.wait({first}, timeout=FIRST_CHUNK_GRACE)
        if first.done() and first.exception() is not None:
            return openai_error_response(first.exception() or RuntimeError())
        opened = True
        await events.open()

        async def send(out: list[bytes]) -> None:
            if out:
                await events.send(b"".join(out))

        async def relay_all() -> None:
            try:
                await send(relay.opening())
                chunk = await first
                while chunk is not None:
                    await send(relay.chunk(chunk))
                    chunk = await _next(chunks)
                await send(relay.finish(chunks.result))
            except ClientGone:
                raise
            except Exception as exc:
                await send(relay.failure(gateway_error(exc)))

        await until_client_leaves(events.check, relay_all())
    except ClientGone:
        pass  # the client left: the generation is closed below, upstream included
    finally:
        if not first.done():
            first.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await first
        await run.__aexit__(None, None, None)
        if opened:
            await events.close()
    return events.response
