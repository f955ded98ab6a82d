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
        self._pinger: asyncio.Task[None] | None = None
        self._last_write = 0.0

    async def open(self) -> None:
        """Send the status line and headers, and start pinging."""
        await self.response.prepare(self.request)
        self._last_write = asyncio.get_running_loop().time()
        self._pinger = asyncio.create_task(self._ping())

    async def send(self, data: bytes) -> None:
        """Write ``data`` (whole events).

        Raises:
            ClientGone: The client left or did not take the bytes in time.
        """
        async with self._lock:
            try:
                async with asyncio.timeout(self.send_timeout):
                    await self.response.write(data)
            except (TimeoutError, ConnectionError, RuntimeError) as exc:
                # RuntimeError: aiohttp refuses writes once the transport closed.
                raise ClientGone(type(exc).__name__) from None
            self._last_write = asyncio.get_running_loop().time()

    @property
    def client_left(self) -> bool:
        """True once the client's connection is closed."""
        transport = self.request.transport
        return transport is None or transport.is_closing()

    async def _ping(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(max(0.0, self._last_write + self.ping_interval - loop.time()))
            if loop.time() - self._last_write >= self.ping_interval:
                try:
                    await self.send(b": ping\n\n")
                except ClientGone:
                    return

    async def close(self) -> None:
        """Stop pinging and end the response (quietly if the client is gone)."""
        if self._pinger is not None:
            self._pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pinger
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.response.write_eof()
