"""A local HTTP server that misbehaves on cue: :class:`FaultServer` and its :class:`Reply` script.

Exported from :mod:`imagestream.testing`; see there and ``docs/reliability.md``.
aiohttp's server is imported when a server starts, not with this module (the
test kit is loaded by every pytest run).
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import math
import random
import struct
import time
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import attrs

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["FaultServer", "RecordedRequest", "Reply", "WebSocketReply", "retry_after"]

_SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "cookie",
    }
)
"""Request headers recorded masked: :attr:`RecordedRequest.headers` never holds a credential."""

MASK = "<masked>"
"""What a credential header's value is recorded as."""

_HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head>\n"
    b"<body><h1>Sign in to continue</h1><form action='/login'>"
    b"<input name='user'><input type='password' name='password'></form></body></html>\n"
)


def retry_after(
    seconds: float, form: Literal["seconds", "date", "ms"] = "seconds"
) -> dict[str, str]:
    """The header a server uses to ask for a wait of ``seconds``, in one of its three forms.

    ``"seconds"``: ``Retry-After: 2`` (rounded up to whole seconds); ``"date"``:
    ``Retry-After: <HTTP date>``, ``seconds`` from now (a negative value gives
    a date in the past); ``"ms"``: ``retry-after-ms: 2000`` (OpenAI's).
    """
    if form == "seconds":
        return {"Retry-After": str(max(0, math.ceil(seconds)))}
    if form == "date":
        return {"Retry-After": email.utils.formatdate(time.time() + seconds, usegmt=True)}
    if form == "ms":
        return {"retry-after-ms": str(max(0, round(seconds * 1000)))}
    raise ValueError(f"form must be 'seconds', 'date' or 'ms', not {form!r}")


@attrs.frozen
class Reply:
    """One scripted response, and the faults to play it with.

    The faults compose: a body may be written in random pieces *and* stall
    after 100 bytes *and* be reset after 300. Byte counts are of the body
    (the headers come first, whole, unless ``drop`` or a ``stall`` before
    them holds them back).

    Attributes:
        status: HTTP status.
        body: The body bytes.
        content_type: The ``Content-Type`` header (``None``: none sent).
        headers: More response headers (``Retry-After``, ...).
        chunked: Send the body with ``Transfer-Encoding: chunked`` instead of
            a ``Content-Length``.
        max_piece: Write the body in random pieces of 1 to ``max_piece``
            bytes (seeded by the server's ``seed`` and the request's number),
            so that every boundary of the format is crossed somewhere.
        stall: Seconds of silence (``math.inf``: until the client gives up
            and closes the connection).
        stall_after: Body bytes sent before the stall; ``None`` stalls
            before the status line and headers.
        trickle: Seconds between single bytes: the body (or the part that
            ``trickle_after`` and ``trickle_bytes`` say) is sent one byte at a time.
        trickle_after: Body bytes sent at once before the trickle starts.
        trickle_bytes: How many bytes to trickle (``None``: all the rest).
        reset_after: Abort the connection (TCP reset) after this many body
            bytes; ``0`` resets right after the headers.
        truncate_after: Close the connection cleanly after this many body
            bytes, the body unfinished: fewer bytes than the
            ``Content-Length`` said, or a chunked body without its last chunk.
        drop: Close the connection without answering at all (no status line).
        after_requests: Hold the reply (before its status line and any
            ``stall``) until the server has received this many requests in
            all, this one included: a generation answered only once its
            progress has been polled, say. A client that leaves first ends it.
    """

    status: int = 200
    body: bytes = b""
    content_type: str | None = "application/octet-stream"
    headers: Mapping[str, str] = attrs.field(factory=dict)
    chunked: bool = False
    max_piece: int | None = None
    stall: float = 0.0
    stall_after: int | None = None
    trickle: float | None = None
    trickle_after: int = 0
    trickle_bytes: int | None = None
    reset_after: int | None = None
    truncate_after: int | None = None
    drop: bool = False
    after_requests: int | None = None

    @classmethod
    def json(
        cls, value: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Reply:
        """A JSON body (``application/json``)."""
        import json

        return cls(
            status=status,
            body=json.dumps(value).encode("utf-8"),
            content_type="application/json",
            headers=dict(headers or {}),
        )

    @classmethod
    def error(
        cls,
        status: int,
        body: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """An error status with a JSON body (default: ``{"error": {"message": ...}}``)."""
        if body is None:
            body = {"error": {"message": f"scripted HTTP {status}", "code": status}}
        return cls.json(body, status=status, headers=headers)

    @classmethod
    def rate_limited(
        cls,
        seconds: float | None = None,
        form: Literal["seconds", "date", "ms"] = "seconds",
        *,
        body: Any = None,
    ) -> Reply:
        """A 429, with a wait of ``seconds`` in the given :func:`retry_after` form (``None``: no header)."""
        headers = retry_after(seconds, form) if seconds is not None else {}
        if body is None:
            body = {"error": {"message": "Rate limit reached", "code": 429}}
        return cls.error(429, body, headers=headers)

    @classmethod
    def html(cls, status: int = 200, page: bytes = _HTML_PAGE) -> Reply:
        """An HTML page, as a proxy, a captive portal or a login wall sends (``text/html``)."""
        return cls(status=status, body=page, content_type="text/html; charset=utf-8")

    def but(self, **changes: Any) -> Reply:
        """A copy with some fields changed: ``good.but(reset_after=100)``."""
        return attrs.evolve(self, **changes)


@attrs.frozen
class WebSocketReply:
    """A scripted WebSocket: the opening handshake accepted, messages sent, a fault to end with.

    The messages are sent as soon as the connection is open (the client
    reads them when it is ready); then the server reads what the client
    sends (:attr:`RecordedRequest.messages`) until the client closes. A
    fault comes after the number of messages its field says, and ends the
    script; a handshake refused or never answered is a :class:`Reply` in
    its place (``Reply.error(403)``, ``Reply(stall=math.inf)``).

    Attributes:
        messages: The messages: text (``str``) or binary (``bytes``).
        close_after: Close the connection (a closing handshake with
            ``close_code`` and ``close_reason``) after this many messages.
        close_code: The close code (1011: the server failed).
        close_reason: The close reason.
        reset_after: Abort the connection (TCP reset) after this many messages.
        garbage_after: Write a frame no WebSocket may send (reserved bits
            set) after this many messages.
        oversized_after: Write the header of a binary frame of ``oversized``
            bytes after this many messages (the payload never follows: a
            client refuses the frame by its header).
        oversized: The payload length that header declares.
        stall: Seconds of silence (``math.inf``: until the client leaves).
        stall_after: Messages sent before the stall.
    """

    messages: tuple[str | bytes, ...] = ()
    close_after: int | None = None
    close_code: int = 1011
    close_reason: str = ""
    reset_after: int | None = None
    garbage_after: int | None = None
    oversized_after: int | None = None
    oversized: int = 2**31
    stall: float = 0.0
    stall_after: int = 0

    @property
    def status(self) -> int:
        """101, the status of a handshake accepted (as :attr:`Reply.status` reads)."""
        return 101

    def but(self, **changes: Any) -> WebSocketReply:
        """A copy with some fields changed: ``good.but(close_after=3)``."""
        return attrs.evolve(self, **changes)

    def ends_at(self) -> int | None:
        """The number of messages sent before the fault that ends the script (``None``: none)."""
        ends = [
            n
            for n in (self.close_after, self.reset_after, self.garbage_after, self.oversized_after)
            if n is not None
        ]
        return min(ends) if ends else None


@attrs.define
class RecordedRequest:
    """One request the server received.

    Attributes:
        number: 0 for the first request, then 1, 2...
        method: ``POST``, ``GET``...
        path: The path, without the query.
        query: The query string (``""`` when none).
        headers: The request headers; credentials (``Authorization``,
            ``x-api-key``, ``x-goog-api-key``...) replaced by ``"<masked>"``.
        body: The request body.
        reply: The :class:`Reply` (or :class:`WebSocketReply`) it was given.
        client_closed: The client closed the connection before the reply
            was completely sent (it gave up, or stopped reading).
        completed: The reply was sent to its end as scripted (faults that
            end a reply early leave this ``False``).
        messages: On a WebSocket, the messages the client sent.
    """

    number: int
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    reply: Reply | WebSocketReply
    client_closed: bool = False
    completed: bool = False
    messages: list[str | bytes] = attrs.field(factory=list)
    _secrets: frozenset[str] = attrs.field(factory=frozenset, repr=False, alias="secrets")
    _server_closed: bool = attrs.field(default=False, repr=False, alias="server_closed")

    def carried(self, secret: str) -> bool:
        """Whether a credential header of this request held ``secret`` (as a whole or as a token)."""
        return _digest(secret) in self._secrets

    def json(self) -> Any:
        """The body parsed as JSON."""
        import json

        return json.loads(self.body)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()


def _secret_digests(headers: Mapping[str, str]) -> frozenset[str]:
    found = set()
    for name, value in headers.items():
        if name.lower() in _SECRET_HEADERS and value:
            found.add(_digest(value))
            _scheme, _, token = value.partition(" ")
            if token:
                found.add(_digest(token.strip()))
    return frozenset(found)


class FaultServer:
    """An HTTP server on 127.0.0.1 that plays scripted replies, faults included, and records requests.

    Every request, whatever its method and path, gets the next :class:`Reply`
    of the script (then ``default``, or a 500 saying the script ran out). Each
    request is recorded (:attr:`requests`), credentials masked, with whether
    the client closed the connection before its reply was done. Used as an
    async context manager, it starts on a free port and stops itself, closing
    every connection. ::

        from imagestream.testing import FaultServer, Reply

        async def test_a_reset_mid_stream_keeps_the_previews():
            good = Reply(body=my_event_stream_bytes, content_type="text/event-stream")
            async with FaultServer(good.but(reset_after=120), good) as server:
                with pytest.raises(imagestream.StreamInterruptedError) as caught:
                    await imagestream.agenerate(
                        "a fox", provider="mine", base_url=server.url, api_key="k", timeout=1
                    )
            assert caught.value.partial.previews   # what came before the reset is kept
            assert len(server.requests) == 1       # and the request was not sent again

    A provider that makes several requests (a token, a job, its status, a
    download) gives each path it does not fault a script of its own with
    :meth:`route`, and a WebSocket is a :class:`WebSocketReply` in a script.

    Args:
        replies: The script: one reply per request, in order.
        default: The reply once the script is used up (``None``: a 500 whose
            body says so, which a test's request count then shows).
        seed: Seed of the piece sizes of ``max_piece`` replies.
    """

    def __init__(
        self,
        *replies: Reply | WebSocketReply,
        default: Reply | WebSocketReply | None = None,
        seed: int = 0,
    ) -> None:
        self.script: deque[Reply | WebSocketReply] = deque(replies)
        self.default: Reply | WebSocketReply | None = default
        self.seed = seed
        self.requests: list[RecordedRequest] = []
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._active = 0
        self._routes: dict[str, _Route] = {}

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> str:
        """Listen on a free port of 127.0.0.1; return the base URL (``http://127.0.0.1:PORT``)."""
        from aiohttp import web

        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # handler_cancellation: a client that hangs up cancels the handler,
        # which is how a stalled reply learns that its client left.
        self._runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=0.25, handler_cancellation=True
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        """Close every connection and stop listening (safe to call twice)."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> FaultServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- script and state --------------------------------------------------------

    def add(self, *replies: Reply | WebSocketReply) -> None:
        """Append replies to the script."""
        self.script.extend(replies)

    def route(
        self,
        path: str,
        *replies: Reply | WebSocketReply,
        default: Reply | WebSocketReply | None = None,
        replace: bool = False,
    ) -> None:
        """Answer the requests for ``path`` from a script of their own.

        ``path`` is a path (``/v1/status``), or a path and its query
        (``/progress?skip=true``), which wins over the path alone. Replies
        are appended to the route's script (``replace``: what was left of it
        is dropped first); ``default`` (if given) answers once it is used up
        (else a 500 saying so). Requests on a route are recorded in
        :attr:`requests` like the others. ::

            server.route("/token", default=Reply.json({"token": "t"}))  # every time
            server.route("/ws", WebSocketReply(messages=('{"type": "done"}',)))
        """
        route = self._routes.setdefault(path, _Route())
        if replace:
            route.script.clear()
        route.script.extend(replies)
        if default is not None:
            route.default = default

    @property
    def open_connections(self) -> int:
        """Client connections open right now (idle pooled ones included)."""
        server = self._runner.server if self._runner is not None else None
        return len(server.connections) if server is not None else 0

    @property
    def busy(self) -> int:
        """Replies being played right now (a stalled one stays busy until its client leaves)."""
        return self._active

    async def wait_requests(self, count: int = 1, within: float = 5.0) -> bool:
        """Wait until ``count`` requests have arrived (to act while a reply is stalled, say).

        Returns ``False`` if they did not arrive within ``within`` seconds.
        """
        loop = asyncio.get_running_loop()
        end = loop.time() + within
        while len(self.requests) < count:
            left = end - loop.time()
            if left <= 0:
                return False
            await asyncio.sleep(min(0.005, left))
        return True

    async def wait_idle(self, within: float = 5.0, *, connections: bool = False) -> bool:
        """Wait until no reply is being played (and, with ``connections``, none is open).

        Returns ``False`` if that did not happen within ``within`` seconds.
        """
        loop = asyncio.get_running_loop()
        end = loop.time() + within
        while self._active or (connections and self.open_connections):
            left = end - loop.time()
            if left <= 0:
                return False
            await asyncio.sleep(min(0.01, left))
        return True

    # -- playing -------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        from aiohttp import web

        body = await request.read()
        route = self._routes.get(request.path_qs) or self._routes.get(request.path)
        script, default = (route.script, route.default) if route else (self.script, self.default)
        reply = script.popleft() if script else default
        if reply is None:
            reply = Reply.error(500, {"error": {"message": "FaultServer: no reply scripted"}})
        record = RecordedRequest(
            number=len(self.requests),
            method=request.method,
            path=request.path,
            query=request.query_string,
            headers={
                name: MASK if name.lower() in _SECRET_HEADERS else value
                for name, value in request.headers.items()
            },
            body=body,
            reply=reply,
            secrets=_secret_digests(request.headers),
        )
        self.requests.append(record)
        self._active += 1
        response: web.StreamResponse | None = None
        try:
            if isinstance(reply, WebSocketReply):
                socket = web.WebSocketResponse(autoping=True)
                if socket.can_prepare(request).ok:
                    response = socket
                    await self._play_websocket(request, socket, reply, record)
                    return socket
                message = "FaultServer: a WebSocket is scripted here"
                reply = record.reply = Reply.error(426, {"error": {"message": message}})
            response = web.StreamResponse(status=reply.status, headers=dict(reply.headers))
            await self._play(request, response, reply, record)
        except asyncio.CancelledError:
            # Handler cancellation: the connection was lost while the reply played
            # (or, on a WebSocket whose script was played, once the client left).
            record.client_closed = not record._server_closed and not record.completed
            raise
        except ConnectionError:
            # Writing to a client that has gone.
            record.client_closed = not record._server_closed
        finally:
            self._active -= 1
        assert response is not None
        return response

    async def _play(
        self,
        request: web.Request,
        response: web.StreamResponse,
        reply: Reply,
        record: RecordedRequest,
    ) -> None:
        if reply.after_requests is not None:
            await self.wait_requests(reply.after_requests, within=math.inf)
        if reply.stall and reply.stall_after is None:
            await _sleep(reply.stall)
        transport = request.transport
        assert transport is not None
        if reply.drop:
            record._server_closed = True
            transport.close()
            return
        if reply.content_type is not None:
            response.headers["Content-Type"] = reply.content_type
        body = reply.body
        if reply.chunked:
            response.enable_chunked_encoding()
        else:
            response.content_length = len(body)
        await response.prepare(request)
        ends = [n for n in (reply.reset_after, reply.truncate_after) if n is not None]
        limit = min([len(body), *ends])
        await self._write(response, reply, body[:limit], record.number)
        if reply.stall and reply.stall_after is not None and reply.stall_after >= limit:
            await _sleep(reply.stall)
        if reply.reset_after is not None and reply.reset_after == limit:
            record._server_closed = True
            transport.abort()
            return
        if reply.truncate_after is not None and reply.truncate_after == limit:
            record._server_closed = True
            transport.close()
            return
        await response.write_eof()
        record.completed = True

    async def _write(
        self, response: web.StreamResponse, reply: Reply, data: bytes, number: int
    ) -> None:
        rng = random.Random(f"{self.seed}:{number}")
        # Bytes [start, end) are trickled, one at a time.
        start = reply.trickle_after if reply.trickle is not None else len(data)
        end = len(data) if reply.trickle_bytes is None else start + reply.trickle_bytes
        stall_at = reply.stall_after if reply.stall else None
        position = 0
        while position < len(data):
            if stall_at is not None and position == stall_at:
                await _sleep(reply.stall)
                stall_at = None
            trickling = start <= position < end
            if trickling:
                size = 1
            elif reply.max_piece is not None:
                size = rng.randint(1, max(1, reply.max_piece))
            else:
                size = len(data) - position
            for boundary in (stall_at, start):
                if boundary is not None and position < boundary:
                    size = min(size, boundary - position)
            await response.write(data[position : position + size])
            position += size
            if trickling and reply.trickle is not None:
                await asyncio.sleep(reply.trickle)
            elif reply.max_piece is not None:
                await asyncio.sleep(0)

    async def _play_websocket(
        self,
        request: web.Request,
        socket: web.WebSocketResponse,
        reply: WebSocketReply,
        record: RecordedRequest,
    ) -> None:
        await socket.prepare(request)
        transport = request.transport
        assert transport is not None
        # The client's messages, until it closes (or the connection is lost).
        reading = asyncio.ensure_future(_read_websocket(socket, record))
        try:
            ends = reply.ends_at()
            for sent, message in enumerate((*reply.messages, None)):
                if reply.stall and sent == reply.stall_after:
                    # Silence: until the client leaves, if it does.
                    timeout = None if math.isinf(reply.stall) else reply.stall
                    await asyncio.wait({reading}, timeout=timeout)
                    if reading.done():
                        record.client_closed = True
                        return
                if sent == ends:
                    await _websocket_fault(socket, transport, reply, sent, record, reading)
                    return
                if message is None:
                    break
                if isinstance(message, str):
                    await socket.send_str(message)
                else:
                    await socket.send_bytes(message)
            record.completed = True
            await reading
        finally:
            reading.cancel()


@attrs.define
class _Route:
    """The script of one path (:meth:`FaultServer.route`)."""

    script: deque[Reply | WebSocketReply] = attrs.field(factory=deque)
    default: Reply | WebSocketReply | None = None


async def _read_websocket(socket: web.WebSocketResponse, record: RecordedRequest) -> None:
    from aiohttp import WSMsgType

    async for message in socket:
        if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
            record.messages.append(message.data)
        else:
            break


async def _websocket_fault(
    socket: web.WebSocketResponse,
    transport: asyncio.Transport,
    reply: WebSocketReply,
    sent: int,
    record: RecordedRequest,
    reading: asyncio.Future[None],
) -> None:
    record._server_closed = sent in (reply.close_after, reply.reset_after)
    if sent == reply.reset_after:
        transport.abort()
        return
    if sent == reply.close_after:
        await socket.close(code=reply.close_code, message=reply.close_reason.encode())
        return
    if sent == reply.garbage_after:
        # FIN and all three reserved bits set, though no extension was agreed on.
        transport.write(bytes([0xF1, 5]) + b"junk!")
    else:
        transport.write(bytes([0x82, 127]) + struct.pack(">Q", reply.oversized))
    # The client fails the connection: wait (a little) for it to go.
    await asyncio.wait({reading}, timeout=5.0)


async def _sleep(seconds: float) -> None:
    if math.isinf(seconds):
        await asyncio.Event().wait()  # until the client leaves and the handler is cancelled
    else:
        await asyncio.sleep(seconds)
