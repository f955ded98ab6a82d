"""The streaming HTTP call every network provider makes, written once.

``send`` (status → typed error, retries before the first byte), then the
**Content-Type checked before any byte is decoded** (a proxy's HTML page or a
JSON error sent with status 200 becomes an :class:`UnexpectedResponseError`
quoting its first bytes, not a baffling decoder failure), then the body fed
to a decoder and its events handed out, and the response closed however the
loop ends (finished, failed, abandoned by the consumer, cancelled)::

    decoder = context.get_decoder("sse")        # before sending: a missing plugin costs nothing
    async for event in stream_events(
        context, "POST", url, provider="acme", decoder=decoder,
        content_types=("text/event-stream",), headers=headers, json_body=body,
    ):
        ...
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, Callable, Collection
from typing import TYPE_CHECKING, Any, TypeVar

from . import _defaults
from ._redact import redact
from .errors import (
    StreamDecodeError,
    StreamInterruptedError,
    StreamTruncatedError,
    UnexpectedResponseError,
)

if TYPE_CHECKING:
    import aiohttp

    from ._context import RunContext
    from ._decoding import Decoder

__all__ = [
    "JSON_TYPES",
    "check_content_type",
    "iter_events",
    "media_type",
    "read_json",
    "stream_events",
]

E = TypeVar("E")

JSON_TYPES = ("application/json",)
"""Media types of a JSON body (any ``application/*+json`` type is accepted too)."""

_QUOTE_BYTES = 200


def media_type(response: aiohttp.ClientResponse) -> str:
    """The response's media type, lower case, without parameters (``""`` when none)."""
    value = response.headers.get("Content-Type", "")
    return value.split(";", 1)[0].strip().lower()


def _accepted(media: str, expected: Collection[str]) -> bool:
    if media in expected:
        return True
    # application/problem+json and friends are JSON too.
    return (
        "application/json" in expected
        and media.startswith("application/")
        and media.endswith("+json")
    )


async def check_content_type(
    context: RunContext,
    response: aiohttp.ClientResponse,
    expected: Collection[str],
    *,
    provider: str,
) -> None:
    """Raise :class:`UnexpectedResponseError` unless the response is one of ``expected``.

    The error quotes the body's first bytes (credentials masked) and the
    response is closed; a matching response is left untouched.
    """
    media = media_type(response)
    if _accepted(media, expected):
        return
    try:
        head = await _read_head(response)
    except Exception:  # the quote is a courtesy: never let it hide the real error
        head = b""
    finally:
        response.close()
    text = " ".join(head.decode("utf-8", "replace").split())
    quoted = redact(text, context.http.secrets_of(response))[:_QUOTE_BYTES]
    listed = list(expected)
    # Five names of one format read worse than the first few.
    wanted = " or ".join(listed[:3]) + (" (or similar)" if len(listed) > 3 else "")
    raise UnexpectedResponseError(
        f"expected {wanted} but the server sent {media or 'no content type'}"
        + (f": {quoted!r}" if quoted else ""),
        provider=provider,
        status=response.status,
        content_type=media,
        hint="check base_url: a proxy, a login page or a wrong path answers this way",
    )


async def _read_head(response: aiohttp.ClientResponse) -> bytes:
    pieces: list[bytes] = []
    size = 0
    while size < _QUOTE_BYTES:
        piece = await response.content.read(_QUOTE_BYTES - size)
        if not piece:
            break
        pieces.append(piece)
        size += len(piece)
    return b"".join(pieces)


async def iter_events(
    context: RunContext,
    response: aiohttp.ClientResponse,
    decoder: Decoder[E],
    *,
    provider: str,
    content_types: Collection[str] | None = None,
) -> AsyncGenerator[E, None]:
    """The events of a response body, decoded as they arrive; the response always closed.

    Closed promptly when the generator is closed (``contextlib.aclosing``,
    or the pipeline closing the provider's stream).

    Args:
        context: The run's context (its HTTP client reads the body).
        response: A 2xx response from :meth:`HttpClient.send`.
        decoder: A fresh decoder (``context.get_decoder(name)``).
        provider: The provider's name, for errors.
        content_types: Media types the body may have; ``None`` skips the check.

    Raises:
        UnexpectedResponseError: The body is not one of ``content_types``.
        StreamInterruptedError: The connection broke, or the body ended
            inside an event (the decoder's truncation, as seen by a caller).
        APITimeoutError: No data for longer than the stall timeout.
        StreamDecodeError: The decoder found malformed bytes.
    """
    try:
        if content_types is not None:
            await check_content_type(context, response, content_types, provider=provider)
        feed = decoder.feed
        pieces = context.http.iter_body(response, provider=provider)
        # aclosing: the body iterator is closed now, not when it is garbage collected.
        async with contextlib.aclosing(pieces):
            async for piece in pieces:
                for event in feed(piece):
                    yield event
        try:
            tail = decoder.close()
        except StreamTruncatedError as exc:
            raise StreamInterruptedError(
                f"the stream ended inside an event ({exc.message})", provider=provider
            ) from exc
        for event in tail:
            yield event
    finally:
        # A body read to its end went back to the pool already and this does
        # nothing; one left unread (an error, the consumer stopped, a
        # cancellation) is dropped, so the server stops sending it.
        response.close()


async def stream_events(
    context: RunContext,
    method: str,
    url: str,
    *,
    provider: str,
    decoder: Decoder[E],
    content_types: Collection[str] | None,
    **send: Any,
) -> AsyncGenerator[E, None]:
    """Send a request and yield the events of its body: :meth:`HttpClient.send` + :func:`iter_events`.

    Iterate it inside ``contextlib.aclosing(...)`` (or let the pipeline close
    the provider's stream): then a consumer that stops early closes the
    connection at once, not when the generator is garbage collected.

    Keyword arguments other than these go to :meth:`HttpClient.send`
    (``headers``, ``json_body``, ``data``, ``parse_error``, ``retry``,
    ``stall_timeout``). Nothing is sent until the first event is asked for.
    """
    response = await context.http.send(method, url, provider=provider, **send)
    events = iter_events(context, response, decoder, provider=provider, content_types=content_types)
    try:
        async for event in events:
            yield event
    finally:
        await events.aclose()


async def read_json(
    context: RunContext,
    response: aiohttp.ClientResponse,
    *,
    provider: str,
    limit: int = _defaults.MAX_RESPONSE_BYTES,
    content_types: Collection[str] | None = JSON_TYPES,
    loads: Callable[[bytes], Any] = json.loads,
) -> Any:
    """A whole JSON body, capped at ``limit`` bytes; the response closed.

    Raises:
        UnexpectedResponseError: The body is not one of ``content_types``.
        ProviderError: The body is larger than ``limit``.
        StreamDecodeError: The body is not JSON.
    """
    try:
        if content_types is not None:
            await check_content_type(context, response, content_types, provider=provider)
        body = await context.http.read_body(response, provider=provider, limit=limit)
    finally:
        response.close()
    try:
        return loads(body)
    except ValueError as exc:  # UnicodeDecodeError is a ValueError too
        raise StreamDecodeError(f"{provider}: the response body is not JSON ({exc})") from None
