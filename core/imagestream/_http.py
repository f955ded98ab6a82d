"""HTTP for provider plugins: one aiohttp session, timeouts, retries, typed errors.

Providers call :meth:`HttpClient.send`, which returns a response only once the
status is 2xx, retrying before that point; then read the body with
:meth:`HttpClient.iter_body` (streams) or :meth:`HttpClient.read_body`
(whole bodies, capped). After the first byte of a body has been handed out
nothing is retried: a broken stream raises
:class:`~imagestream.StreamInterruptedError` and the pipeline keeps what
arrived.

Timeouts: a connect timeout, and a *stall* timeout between two reads (also
before the first byte). There is no total timeout: a generation that keeps
sending data is never cut off.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import socket
import weakref
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import TYPE_CHECKING, Any

from . import _defaults
from ._redact import redact, url_secrets
from ._retry import RetryPolicy, clamp_retry_after
from ._status import ErrorParser, error_for_status
from .errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    ContentPolicyError,
    InvalidRequestError,
    ProviderError,
    QuotaExceededError,
    StreamInterruptedError,
    UnexpectedResponseError,
)

if TYPE_CHECKING:
    import aiohttp
    from aiohttp.abc import AbstractResolver

__all__ = ["ErrorParser", "HttpClient", "error_for_status"]

log = logging.getLogger("imagestream.http")

_FINAL_ERRORS = (QuotaExceededError, AuthenticationError, ContentPolicyError, InvalidRequestError)
"""Errors no retry can fix, whatever their HTTP status."""


def _default_parser(provider: str) -> ErrorParser:
    def parse(status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        text = body.decode("utf-8", "replace").strip()
        try:
            data = json.loads(text)
            message = str(data.get("message") or data.get("error") or text)
        except (ValueError, AttributeError):
            message = text
        return error_for_status(
            status, message[:500] or "HTTP error", provider=provider, headers=headers
        )

    return parse


class HttpClient:
    """An aiohttp session with imagestream's timeouts and retry rules.

    Runs use one per event loop (:func:`imagestream.http_client`, closed when
    the loop shuts down), or the one a :class:`~imagestream.Pipeline` opens
    for itself when used as an async context manager. Its session is made on
    first use; closing it closes every connection it opened.

    Args:
        connect_timeout: Seconds to look up a host name, and to open a new
            connection (TCP and TLS). Waiting for a free connection while
            ``max_connections`` are in use is not counted: that is a queue.
        stall_timeout: Seconds without data before a read fails.
        retry: The retry policy.
        max_connections: Connections open at once, across all hosts; ``0``
            for no limit. The default, ``IMAGESTREAM_MAX_CONNECTIONS`` or else
            1000, is far above aiohttp's 100 so that hundreds of concurrent
            streams are never queued behind each other.
    """

    def __init__(
        self,
        *,
        connect_timeout: float = _defaults.CONNECT_TIMEOUT,
        stall_timeout: float = _defaults.STALL_TIMEOUT,
        retry: RetryPolicy | None = None,
        max_connections: int | None = None,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.stall_timeout = stall_timeout
        self.retry = retry or RetryPolicy()
        self.max_connections = (
            max_connections if max_connections is not None else _defaults.max_connections()
        )
        self._session: aiohttp.ClientSession | None = None
        self._resolver: AbstractResolver | None = None
        # The stall timeout each open response was sent with, for error messages.
        self._stall_for: weakref.WeakKeyDictionary[aiohttp.ClientResponse, float] = (
            weakref.WeakKeyDictionary()
        )
        # The credentials each open response was sent with, to mask them in
        # anything quoted from its body.
        self._secrets_for: weakref.WeakKeyDictionary[aiohttp.ClientResponse, tuple[str, ...]] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def session(self) -> aiohttp.ClientSession:
        """The underlying ``aiohttp.ClientSession`` (created on first use)."""
        if self._session is None or self._session.closed:
            import aiohttp

            # auto_decompress stays on: providers may gzip JSON bodies.
            # trust_env makes aiohttp look up a proxy and ~/.netrc in a worker
            # thread on every request (and a netrc entry for the API host
            # clashes with the Authorization header): only when a proxy is set.
            self._resolver = _bounded_resolver(self.connect_timeout)
            connector = aiohttp.TCPConnector(limit=self.max_connections, resolver=self._resolver)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout(None), trust_env=proxy_configured()
            )
        return self._session

    def _timeout(self, read_timeout: float | None) -> aiohttp.ClientTimeout:
        """Timeouts for connecting, and ``read_timeout`` between two reads.

        aiohttp's ``connect`` timeout also counts the wait for a free slot
        when ``max_connections`` are in use, so a stream queued behind
        hundreds of others would fail as a "connect timeout" (and burn its
        retries) although nothing is wrong. It is left unset: the wait for a
        slot is a queue, as long as it takes; ``sock_connect`` bounds the TCP
        and TLS handshake of each new connection, and the resolver bounds the
        name lookup (:func:`_bounded_resolver`).
        """
        return _client_timeout(self.connect_timeout, read_timeout)

    @property
    def closed(self) -> bool:
        """True when no session is open (none was made yet, or it was closed)."""
        return self._session is None or self._session.closed

    def secrets_of(self, response: aiohttp.ClientResponse) -> tuple[str, ...]:
        """The credentials ``response``'s request carried, for :func:`~imagestream.provider.redact`."""
        return self._secrets_for.get(response, ())

    async def close(self) -> None:
        """Close the session and every connection it holds."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
        if self._resolver is not None:  # the connector closes only a resolver it made
            await self._resolver.close()
            self._resolver = None

    async def send(
        self,
        method: str,
        url: str,
        *,
        provider: str,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        data: Any = None,
        parse_error: ErrorParser | None = None,
        retry: RetryPolicy | None = None,
        stall_timeout: float | None = None,
    ) -> aiohttp.ClientResponse:
        """Send a request; return the response once its status is 2xx.

        Retries (with backoff and jitter, honouring ``Retry-After``) on
        retryable statuses and on connection errors. ``data`` may be a callable
        that builds a fresh body for each attempt (multipart forms cannot be
        sent twice).

        Raises:
            ProviderError: A subclass chosen by ``parse_error`` for an error status.
            APIConnectionError: No connection could be made.
            APITimeoutError: Connecting or waiting for the headers timed out.
            ConfigurationError: ``url`` carries ``user:password@`` and the
                headers an ``Authorization`` of their own.
        """
        import aiohttp

        _check_userinfo(url, headers, provider)
        # Every credential of the request, for masking whatever is quoted:
        # the headers' keys, and the URL's password and query secrets.
        secrets = _secrets(headers) + url_secrets(url)
        # A redirect would carry the key to wherever it points (aiohttp drops
        # only Authorization across origins, not x-api-key and the like).
        follow = not any(name.lower() in _SECRET_HEADERS for name in headers or {})
        policy = retry or self.retry
        parse = parse_error or _default_parser(provider)
        read_timeout = stall_timeout if stall_timeout is not None else self.stall_timeout
        timeout = self._timeout(read_timeout)
        attempt = 0
        while True:
            attempt += 1
            body = data() if callable(data) else data
            error: ProviderError
            try:
                response = await self.session.request(
                    method,
                    url,
                    headers=dict(headers or {}),
                    json=json_body,
                    data=body,
                    timeout=timeout,
                    allow_redirects=follow,
                )
            except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
                error = APITimeoutError(
                    f"no response within the timeout ({type(exc).__name__})", provider=provider
                )
            except aiohttp.ClientError as exc:
                error = APIConnectionError(
                    f"cannot reach {_origin(url)}: {_unreachable_reason(exc, secrets)}",
                    provider=provider,
                )
            else:
                if response.status < 300:
                    self._stall_for[response] = read_timeout
                    self._secrets_for[response] = secrets
                    return response
                if response.status < 400:
                    response.release()
                    raise _redirect_refused(response, provider, secrets)
                try:
                    raw = await _read_capped(response, _defaults.MAX_ERROR_BODY)
                except (aiohttp.ClientError, TimeoutError):
                    raw = b""
                finally:
                    response.release()
                error = parse(response.status, raw, response.headers)
                if error.status is None:
                    error.status = response.status
                # A provider's parser may set its own (a body's "retryDelay"):
                # callers sleep on it, so it is finite and capped whoever set it.
                error.retry_after = clamp_retry_after(error.retry_after)
                _redact(error, secrets)
                # The parser may know better than the status: a 429 that means
                # "out of credit" will not succeed however long we wait.
                if response.status not in policy.statuses or isinstance(error, _FINAL_ERRORS):
                    raise error
            wait = policy.delay(attempt, getattr(error, "retry_after", None))
            if wait is None:
                raise error
            log.info(
                "%s: %s; retrying in %.2fs (attempt %d of %d)",
                provider,
                error.message,
                wait,
                attempt,
                policy.max_retries,
            )
            await asyncio.sleep(wait)

    async def iter_body(
        self, response: aiohttp.ClientResponse, *, provider: str
    ) -> AsyncGenerator[bytes, None]:
        """Yield body bytes as they arrive; typed errors for stalls and breaks.

        The stall timeout was set when the request was sent. The response is
        released when the iterator finishes or is closed.
        """
        import aiohttp

        received = 0
        try:
            async for piece in response.content.iter_any():
                received += len(piece)
                yield piece
        except (TimeoutError, aiohttp.ServerTimeoutError):
            stall = self._stall_for.get(response, self.stall_timeout)
            raise APITimeoutError(
                f"stream stalled: no data for {stall:g}s after {received} bytes",
                provider=provider,
                hint="raise the stall timeout (timeout=) if the provider is just slow",
            ) from None
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, ConnectionError) as exc:
            raise StreamInterruptedError(
                f"connection lost after {received} bytes: {exc or type(exc).__name__}",
                provider=provider,
                status=response.status,
            ) from None
        finally:
            response.release()

    async def read_body(
        self,
        response: aiohttp.ClientResponse,
        *,
        provider: str,
        limit: int = _defaults.MAX_RESPONSE_BYTES,
    ) -> bytes:
        """Read a whole body, refusing one larger than ``limit`` bytes."""
        pieces = []
        size = 0
        async for piece in self.iter_body(response, provider=provider):
            size += len(piece)
            if size > limit:
                response.close()
                raise ProviderError(
                    f"response larger than {limit} bytes",
                    provider=provider,
                    status=response.status,
                    hint="pass a larger max_response_bytes= option if this is expected",
                )
            pieces.append(piece)
        return b"".join(pieces)


def _bounded_resolver(timeout: float) -> AbstractResolver:
    """aiohttp's default resolver, each lookup cut off after ``timeout`` seconds.

    With the connect timeout unset (see :meth:`HttpClient._timeout`) nothing
    else would bound a name lookup. A lookup that takes too long raises
    ``TimeoutError``, which aiohttp passes on and :meth:`HttpClient.send`
    reports as :class:`~imagestream.APITimeoutError`. An address given as an
    IP is never looked up.
    """
    return _bounded_resolver_class()(timeout)


@functools.cache
def _bounded_resolver_class() -> Callable[[float], AbstractResolver]:
    # Defined on first use: importing this module must not import aiohttp.
    import aiohttp
    from aiohttp.abc import AbstractResolver, ResolveResult

    class BoundedResolver(AbstractResolver):
        def __init__(self, timeout: float) -> None:
            self._timeout = timeout
            self._inner = aiohttp.DefaultResolver()

        async def resolve(
            self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
        ) -> list[ResolveResult]:
            async with asyncio.timeout(self._timeout):
                return await self._inner.resolve(host, port, family)

        async def close(self) -> None:
            await self._inner.close()

    return BoundedResolver


@functools.cache
def proxy_configured() -> bool:
    """True if a ``*_proxy`` environment variable is set (what ``trust_env`` is for).

    Read once per process: scanning the environment for every request costs
    time, and proxy settings do not change under a running program.
    ``proxy_configured.cache_clear()`` reads it again.
    """
    return any(
        value and name.lower().endswith("_proxy") and name.lower() != "no_proxy"
        for name, value in os.environ.items()
    )


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    pieces = []
    size = 0
    async for piece in response.content.iter_any():
        pieces.append(piece)
        size += len(piece)
        if size >= limit:
            break
    return b"".join(pieces)[:limit]


@functools.lru_cache(maxsize=32)
def _client_timeout(connect: float, read: float | None) -> aiohttp.ClientTimeout:
    # Made once per pair, not per request: a ClientTimeout is immutable.
    import aiohttp

    return aiohttp.ClientTimeout(total=None, connect=None, sock_connect=connect, sock_read=read)


_SECRET_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "apikey", "x-goog-api-key"})


def _secrets(headers: Mapping[str, str] | None) -> tuple[str, ...]:
    """The credentials among request headers: whole values and bare tokens."""
    found: list[str] = []
    for name, value in (headers or {}).items():
        if name.lower() in _SECRET_HEADERS and value:
            found.append(value)
            scheme, _, token = value.partition(" ")
            if token and scheme.lower() in {"bearer", "key", "basic"}:
                found.append(token)
    return tuple(found)


def _check_userinfo(url: str, headers: Mapping[str, str] | None, provider: str) -> None:
    """Refuse ``user:password@`` in a URL sent with an ``Authorization`` header.

    aiohttp turns the URL's credentials into an ``Authorization`` header and
    refuses a request that has one already (a bare ``ValueError``). The
    message shows where, never the credentials.
    """
    if "@" not in url:
        return  # no user name anywhere in it (the usual URL): nothing to parse
    from urllib.parse import urlsplit

    try:
        userinfo = "@" in urlsplit(url).netloc
    except ValueError:
        return  # the request itself says what is wrong with the URL
    if userinfo and any(name.lower() == "authorization" for name in headers or {}):
        from .errors import ConfigurationError

        raise ConfigurationError(
            f"{provider}: the URL {redact(url)} carries a user name and password, "
            "but the request authenticates with its own Authorization header",
            hint="remove 'user:password@' from the base URL; "
            "a proxy's credentials go in HTTPS_PROXY",
        )


def _redirect_refused(
    response: aiohttp.ClientResponse, provider: str, secrets: tuple[str, ...]
) -> UnexpectedResponseError:
    where = redact(response.headers.get("Location", "") or "another address", secrets)
    return UnexpectedResponseError(
        f"the server redirected ({response.status}) to {where}; a request that carries "
        "an API key is never redirected, so the key cannot follow it elsewhere",
        provider=provider,
        status=response.status,
        hint="point the base URL at the address the server redirects to",
    )


def _redact(error: ProviderError, secrets: tuple[str, ...]) -> None:
    """Remove credentials we sent from an error built from the server's reply.

    A misbehaving server or proxy may echo the request headers (or its URL)
    back; the error message and hint must still never contain the key.
    """
    message = redact(error.message, secrets)
    if message != error.message:
        error.message = message
        error.args = (message,)
    if error.hint:
        error.hint = redact(error.hint, secrets)


def _unreachable_reason(exc: BaseException, secrets: tuple[str, ...]) -> str:
    """Why a connection failed, in words (not aiohttp's text, which names its internals).

    Never the whole URL: some of aiohttp's errors (InvalidURL) quote it,
    credentials and all, so what is not rephrased here is redacted.
    """
    import ssl

    cause = getattr(exc, "os_error", None)
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"its TLS certificate is not trusted ({cause.verify_message})"
    if isinstance(cause, ssl.SSLError):
        return f"the TLS handshake failed ({cause.reason or cause.strerror})"
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused (nothing is listening there)"
    if isinstance(cause, socket.gaierror):
        return "its host name does not resolve"
    if isinstance(cause, OSError) and cause.strerror and cause.errno is not None:
        return cause.strerror[:1].lower() + cause.strerror[1:]
    return redact(str(exc) or type(exc).__name__, secrets)


def _origin(url: str) -> str:
    # Never echo a whole URL: some gateways put keys in query strings.
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if not parts.hostname:
        return "the server"
    # Rebuilt from host and port: netloc may hold "user:password@".
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"
