"""Writing server-sent events to one client: headers for proxies, pings, a send timeout.

``Cache-Control: no-cache, no-transform`` keeps caches and compressing
proxies from holding events back; ``X-Accel-Buffering: no`` tells nginx not to
buffer this response. A comment ping every ``ping_interval`` seconds keeps
idle connections (and the proxies between) open while a provider thinks. A
client that stops reading is dropped after ``send_timeout`` seconds instead of
holding the server's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

__all__ = ["SSE_HEADERS", "ClientGone", "EventStream", "sse_event"]

SSE_HEADERS: Mapping[str, str] = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",
}


def sse_event(name: str, data: Mapping[str, Any], event_id: int | str | None = None) -> bytes:
    """One server-sent event that is not a chunk (``done``, ``error``, OpenAI's events).

    Chunks go through :func:`imagestream.chunk_to_sse`; this writes the same
    framing for any JSON object: ``event:``, an optional ``id:``, and the
    compact JSON on one ``data:`` line.
    """
    line = f"id: {event_id}\n" if event_id is not None else ""
    return f"event: {name}\n{line}data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class ClientGone(Exception):
    """The client disconnected, or stopped reading for longer than the send timeout."""


class EventStream:
    """An open ``text/event-stream`` response.

    Pings, the send timeout and noticing a departed client all happen in
    :meth:`check`, which :func:`~imagestream_server._watch.until_client_leaves`
    calls from the loop's one watchdog: no timer per write and no task per
    stream.

    Args:
        request: The request being answered.
        ping_interval: Seconds of silence before a ``: ping`` comment is sent.
        send_timeout: Seconds one write may wait for the client to take the bytes.
        headers: Extra response headers (CORS).
    """

    def __init__(
        self,
        request: web.Request,
        *,
        ping_interval: float,
        send_timeout: float,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.request = request
        self.ping_interval = ping_interval
        self.send_timeout = send_timeout
        self.response = web.StreamResponse(headers={**SSE_HEADERS, **(headers or {})})
        self._lock = asyncio.Lock()  # a ping never lands inside an event
        self._last_write = 0.0
        self._writing_since: float | None = None
        self._pinging: asyncio.Task[None] | None = None
        self._dropped = False

    async def open(self) -> None:
        """Send the status line and headers."""
        await self.response.prepare(self.request)
        self._last_write = asyncio.get_running_loop().time()

    async def send(self, data: bytes) -> None:
        """Write ``data`` (whole events).

        Raises:
            ClientGone: The client left (a write that waits longer than the
                send timeout is cancelled by :meth:`check` instead).
        """
        async with self._lock:
            loop = asyncio.get_running_loop()
            self._writing_since = loop.time()
            try:
                await self.response.write(data)
            except (ConnectionError, RuntimeError) as exc:
                # RuntimeError: aiohttp refuses writes once the transport closed.
                raise ClientGone(type(exc).__name__) from None
            finally:
                self._writing_since = None
            self._last_write = loop.time()

    @property
    def client_left(self) -> bool:
        """True once the client's connection is closed, or it was dropped for not reading."""
        transport = self.request.transport
        return self._dropped or transport is None or transport.is_closing()

    def check(self, now: float) -> bool:
        """The watchdog's tick: True when the stream must stop; starts a ping when one is due."""
        if self.client_left:
            return True
        if self._writing_since is not None:
            if now - self._writing_since > self.send_timeout:
                self._dropped = True  # it stopped reading: let it go
                return True
        elif now - self._last_write >= self.ping_interval and (
            self._pinging is None or self._pinging.done()
        ):
            self._pinging = asyncio.get_running_loop().create_task(self._ping())
        return False

    async def _ping(self) -> None:
        with contextlib.suppress(ClientGone):
            await self.send(b": ping\n\n")

    async def close(self) -> None:
        """End the response; a client that left or stopped reading is disconnected instead."""
        if self._pinging is not None and not self._pinging.done():
            self._pinging.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pinging
        transport = self.request.transport
        if self._dropped and transport is not None:
            transport.abort()  # never wait on a client that does not read
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.response.write_eof()
