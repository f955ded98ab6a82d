"""WebSocket connections for provider plugins, over the run's pooled HTTP client.

Some servers report a run over a WebSocket instead of an HTTP body: ComfyUI
sends its progress, previews and results on ``/ws``. :func:`open_websocket`
opens one on the same ``aiohttp`` session as every other request of the run
(so it shares its connection pool and proxy settings) and gives it the kit's
rules:

- typed errors when it opens: a refused connection is an
  :class:`~imagestream.APIConnectionError`, a handshake answered with an
  error status the matching :class:`~imagestream.ProviderError`
  (401 → :class:`~imagestream.AuthenticationError`, ...), a plain HTTP page
  instead of the switch to a WebSocket an
  :class:`~imagestream.UnexpectedResponseError`, no answer an
  :class:`~imagestream.APITimeoutError`;
- typed errors while it runs: a connection that closes or breaks before the
  caller closes it is a :class:`~imagestream.StreamInterruptedError` (the
  close code and reason in the message), a server silent for longer than
  the stall timeout an :class:`~imagestream.APITimeoutError`, a message
  larger than ``max_message_bytes`` a :class:`~imagestream.ProviderError`;
- URLs in messages without their credentials (:func:`~imagestream.provider.redact`),
  and the request's credentials masked in whatever is quoted.

::

    async with open_websocket(context, "ws://127.0.0.1:8188/ws?clientId=abc", provider="acme") as ws:
        await ws.send_json({"hello": 1})
        async for message in ws:          # ends only when you stop reading
            if message.is_text:
                event = message.json()
            else:
                picture = message.data

There is no retry: a WebSocket is opened once, and the caller decides what
a failure to open it means.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Collection, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ._redact import redact
from .errors import (
    APIConnectionError,
    APITimeoutError,
    ProviderError,
    StreamDecodeError,
    StreamInterruptedError,
    UnexpectedResponseError,
)

if TYPE_CHECKING:
    import aiohttp

    from ._context import RunContext
    from ._http import HttpClient

__all__ = ["WebSocketConnection", "WebSocketMessage", "iter_websocket", "open_websocket"]

MAX_MESSAGE_BYTES = 16 * 2**20
"""The default cap of one message, in bytes (16 MiB): a preview, never a whole album."""

HEARTBEAT = 30.0
"""Seconds between pings: a connection whose peer stops answering is noticed."""

CLOSE_TIMEOUT = 2.0
"""Seconds to wait for the server's part of the closing handshake."""


@attrs.frozen
class WebSocketMessage:
    """One message received on a WebSocket: text or bytes, whole (fragments joined).

    Attributes:
        data: The text of a text message, the bytes of a binary one.
    """

    data: str | bytes

    @property
    def is_text(self) -> bool:
        """True for a text message."""
        return isinstance(self.data, str)

    @property
    def is_binary(self) -> bool:
        """True for a binary message."""
        return isinstance(self.data, bytes)

    def json(self) -> Any:
        """The text message parsed as JSON.

        Raises:
            StreamDecodeError: The message is binary, or its text is not JSON.
        """
        if not isinstance(self.data, str):
            raise StreamDecodeError(
                f"a binary WebSocket message ({len(self.data)} bytes) is not JSON"
            )
        try:
            return json.loads(self.data)
        except ValueError as exc:
            raise StreamDecodeError(f"a WebSocket text message is not JSON ({exc})") from None


class WebSocketConnection:
    """An open WebSocket, made by :func:`open_websocket`; close it with :meth:`close`.

    Iterating it (``async for message in ws``) yields each message as it
    arrives, and ends only when the caller stops: the connection closing or
    breaking first raises :class:`~imagestream.StreamInterruptedError`.

    Attributes:
        provider: The provider's name, for errors.
        url: The URL it was opened with, credentials masked (for messages).
        received: How many messages have been received so far.
    """

    def __init__(
        self,
        socket: aiohttp.ClientWebSocketResponse,
        *,
        provider: str,
        url: str,
        secrets: tuple[str, ...],
        stall_timeout: float,
        max_message_bytes: int,
    ) -> None:
        self.provider = provider
        self.url = url
        self.received = 0
        self._socket = socket
        self._secrets = secrets
        self._stall_timeout = stall_timeout
        self._max_message_bytes = max_message_bytes
        self._closed_by_us = False

    @property
    def closed(self) -> bool:
        """True once the connection is closed, by either side."""
        return self._closed_by_us or self._socket.closed

    async def send_text(self, text: str) -> None:
        """Send a text message.

        Raises:
            StreamInterruptedError: The connection is closed or broke.
        """
        await self._send(self._socket.send_str, text)

    async def send_json(self, value: Any) -> None:
        """Send ``value`` as a JSON text message."""
        await self.send_text(json.dumps(value, separators=(",", ":")))

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary message."""
        await self._send(self._socket.send_bytes, data)

    async def _send(self, send: Any, payload: str | bytes) -> None:
        import aiohttp

        if self.closed:
            raise StreamInterruptedError(
                "cannot send on a closed WebSocket", provider=self.provider
            )
        try:
            await send(payload)
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            raise StreamInterruptedError(
                f"the WebSocket broke while sending: {self._quote(exc)}", provider=self.provider
            ) from None

    async def receive(self) -> WebSocketMessage:
        """The next text or binary message (pings and pongs are answered for you).

        Raises:
            StreamInterruptedError: The connection closed or broke first.
            APITimeoutError: No message for longer than the stall timeout, or
                no answer to a ping.
            ProviderError: A message was larger than ``max_message_bytes``.
        """
        import aiohttp

        if self.closed:
            raise StreamInterruptedError(
                f"the WebSocket is closed (after {self.received} messages)", provider=self.provider
            )
        try:
            message = await self._socket.receive(timeout=self._stall_timeout)
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise APITimeoutError(
                f"WebSocket stalled: no message for {self._stall_timeout:g}s "
                f"after {self.received} messages",
                provider=self.provider,
                hint="raise the stall timeout (timeout=) if the server is just slow",
            ) from None
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise StreamInterruptedError(
                f"the WebSocket broke after {self.received} messages: {self._quote(exc)}",
                provider=self.provider,
            ) from None
        if message.type is aiohttp.WSMsgType.TEXT:
            self.received += 1
            return WebSocketMessage(str(message.data))
        if message.type is aiohttp.WSMsgType.BINARY:
            self.received += 1
            return WebSocketMessage(bytes(message.data))
        if message.type is aiohttp.WSMsgType.ERROR:
            raise self._error(message.data)
        # CLOSE, CLOSING, CLOSED: the server (or the network) ended it.
        code = self._socket.close_code
        reason = f": {self._quote(message.extra)}" if message.extra else ""
        said = f" (code {code}{reason})" if code is not None else ""
        raise StreamInterruptedError(
            f"the server closed the WebSocket{said} after {self.received} messages",
            provider=self.provider,
        )

    def _error(self, exc: object) -> ProviderError:
        import aiohttp

        if (
            isinstance(exc, aiohttp.WebSocketError)
            and exc.code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
        ):
            return ProviderError(
                f"a WebSocket message larger than {self._max_message_bytes} bytes "
                f"(after {self.received} messages)",
                provider=self.provider,
                hint="pass a larger max_message_bytes= if this is expected",
            )
        if isinstance(exc, aiohttp.ServerTimeoutError | TimeoutError):
            return APITimeoutError(
                f"the WebSocket peer stopped answering pings after {self.received} messages",
                provider=self.provider,
            )
        return StreamInterruptedError(
            f"the WebSocket failed after {self.received} messages: {self._quote(exc)}",
            provider=self.provider,
        )

    def _quote(self, value: object) -> str:
        text = (
            str(value)
            if not isinstance(value, BaseException)
            else (str(value) or type(value).__name__)
        )
        return redact(text, self._secrets)[:300]

    def __aiter__(self) -> AsyncIterator[WebSocketMessage]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[WebSocketMessage]:
        while True:
            yield await self.receive()

    async def close(self) -> None:
        """Close the connection (a normal closure); waits briefly for the server's part."""
        import asyncio

        if self._closed_by_us:
            return
        self._closed_by_us = True
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self._socket.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<WebSocketConnection {self.url} {state}>"


class _NoRedirects:
    """A session whose requests never follow a redirect, for ``ws_connect``'s handshake.

    ``ClientSession.ws_connect`` has no ``allow_redirects``; its handshake is
    a ``self.request(...)``, which this turns into one that does not follow.
    The session's methods run with this as their ``self`` (so that they call
    this ``request``); its state is the session's own.
    """

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    def request(self, method: str, url: Any, **kwargs: Any) -> Any:
        return self._session.request(method, url, allow_redirects=False, **kwargs)

    def __getattr__(self, name: str) -> Any:
        import inspect

        method = getattr(type(self._session), name, None)
        if inspect.isfunction(method):
            return method.__get__(self)
        return getattr(self._session, name)


def _client(context: RunContext | HttpClient) -> HttpClient:
    http = getattr(context, "http", None)
    return context if http is None else http  # type: ignore[return-value]


@contextlib.asynccontextmanager
async def open_websocket(
    context: RunContext | HttpClient,
    url: str,
    *,
    provider: str,
    headers: Mapping[str, str] | None = None,
    protocols: Collection[str] = (),
    max_message_bytes: int = MAX_MESSAGE_BYTES,
    stall_timeout: float | None = None,
    heartbeat: float | None = HEARTBEAT,
) -> AsyncIterator[WebSocketConnection]:
    """Open a WebSocket with the run's HTTP client; closed when the block ends.

    Args:
        context: The run's context (its pooled client is used), or an
            :class:`~imagestream.HttpClient`.
        url: ``ws://``, ``wss://``, ``http://`` or ``https://``. A
            ``user:password@`` in it is sent as HTTP basic authentication.
        provider: The provider's name, for errors.
        headers: Extra headers of the opening request (credentials in them
            are masked in every error).
        protocols: Subprotocols to offer.
        max_message_bytes: The largest message accepted, in bytes (default
            16 MiB); a larger one fails the connection with a
            :class:`~imagestream.ProviderError`.
        stall_timeout: Seconds the server may stay silent between two
            messages (default: the client's stall timeout, 300 s).
        heartbeat: Seconds between pings (``None``: no pings). A peer that
            stops answering is an :class:`~imagestream.APITimeoutError`.

    Raises:
        APIConnectionError: No connection could be made.
        APITimeoutError: Connecting, or the opening handshake, timed out.
        ProviderError: The handshake was refused with an error status (the
            subclass :func:`~imagestream.error_for_status` picks).
        UnexpectedResponseError: The server answered without switching to a
            WebSocket (a plain page, a proxy that does not forward upgrades).
        ConfigurationError: ``url`` carries ``user:password@`` and the
            headers an ``Authorization`` of their own.
    """
    import asyncio

    import aiohttp

    from ._http import (
        _SECRET_HEADERS,
        _check_userinfo,
        _origin,
        _secrets,
        _unreachable_reason,
    )
    from ._redact import url_secrets
    from ._status import error_for_status

    if max_message_bytes <= 0:
        raise ValueError("max_message_bytes must be positive")
    http = _client(context)
    _check_userinfo(url, headers, provider)
    secrets = _secrets(headers) + url_secrets(url)
    shown = redact(url, secrets)
    stall = stall_timeout if stall_timeout is not None else http.stall_timeout
    # As for every request: one that carries a key is never redirected (aiohttp
    # would forward x-api-key and the like to wherever a redirect points).
    follow = not any(name.lower() in _SECRET_HEADERS for name in headers or {})
    session: Any = http.session if follow else _NoRedirects(http.session)
    try:
        async with asyncio.timeout(http.connect_timeout):
            socket = await aiohttp.ClientSession.ws_connect(
                session,
                url,
                headers=dict(headers or {}),
                protocols=tuple(protocols),
                heartbeat=heartbeat,
                max_msg_size=max_message_bytes,
                autoping=True,
            )
    except aiohttp.WSServerHandshakeError as exc:
        status = exc.status
        reason = redact(exc.message or "", secrets)
        if status >= 400:
            error = error_for_status(
                status,
                f"the server refused the WebSocket at {shown} ({status} {reason})".rstrip(),
                provider=provider,
                headers=dict(exc.headers or {}),
            )
            error.hint = error.hint or "check base_url and the credentials"
            raise error from None
        if 300 <= status < 400 and not follow:
            location = exc.headers.get("Location", "") if exc.headers else ""
            where = redact(location or "another address", secrets)
            raise UnexpectedResponseError(
                f"the server redirected ({status}) the WebSocket at {shown} to {where}; a "
                "request that carries an API key is never redirected, so the key cannot follow "
                "it elsewhere",
                provider=provider,
                status=status,
                hint="point the base URL at the address the server redirects to",
            ) from None
        raise UnexpectedResponseError(
            f"the server answered {shown} with status {status} instead of switching to a WebSocket",
            provider=provider,
            status=status,
            hint="check base_url; a proxy in between must forward WebSocket upgrades",
        ) from None
    except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
        raise APITimeoutError(
            f"no WebSocket from {_origin(url)} within the timeout ({type(exc).__name__})",
            provider=provider,
        ) from None
    except aiohttp.ClientError as exc:
        raise APIConnectionError(
            f"cannot reach {_origin(url)}: {_unreachable_reason(exc, secrets)}",
            provider=provider,
            hint=f"check that the server is running and listening at {_origin(url)}",
        ) from None
    connection = WebSocketConnection(
        socket,
        provider=provider,
        url=shown,
        secrets=secrets,
        stall_timeout=stall,
        max_message_bytes=max_message_bytes,
    )
    try:
        yield connection
    finally:
        await connection.close()


async def iter_websocket(
    context: RunContext | HttpClient,
    url: str,
    *,
    provider: str,
    **options: Any,
) -> AsyncGenerator[WebSocketMessage, None]:
    """Open a WebSocket and yield its messages: :func:`open_websocket` for a listener.

    Nothing is opened until the first message is asked for, and the
    connection is closed when the generator is (iterate it inside
    ``contextlib.aclosing(...)``). The keyword arguments after ``provider``
    are :func:`open_websocket`'s. As with a :class:`WebSocketConnection`,
    the iteration ends only when the caller stops: a connection that ends
    first raises :class:`~imagestream.StreamInterruptedError`.
    """
    async with open_websocket(context, url, provider=provider, **options) as connection:
        async for message in connection:
            yield message
