"""Sending a request through the run's HTTP client, and reading server-sent events back.

Retries, backoff and ``Retry-After`` are the core :class:`~imagestream.HttpClient`'s
job and happen only before a response body is read; once an event has been
consumed nothing is retried, because a second request would bill a second
image. What this module adds is OpenAI's error parsing, the ``sse`` decoder
plugin, and JSON parsing of each event (orjson when the ``fast`` extra is
installed).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, Protocol

from imagestream import Chunk, ProviderResponse
from imagestream._builtins.fake_streaming import chunks_from_response
from imagestream.errors import (
    StreamDecodeError,
    StreamInterruptedError,
    StreamTruncatedError,
)

from ._errors import http_error_parser
from ._json import dumps, loads_event

if TYPE_CHECKING:
    import aiohttp

    from imagestream import RunContext

    from ._options import Settings

__all__ = ["post", "read_json", "sse_payloads", "streamed"]

log = logging.getLogger("imagestream.openai")

_PROVIDER = "openai"


async def post(
    context: RunContext,
    settings: Settings,
    path: str,
    *,
    body: Any = None,
    form: Callable[[], Any] | None = None,
) -> aiohttp.ClientResponse:
    """POST a JSON ``body`` (or a multipart ``form`` factory) and return the 2xx response.

    Raises:
        ProviderError: The typed error of the response's status and error body.
    """
    endpoint = settings.endpoint
    accept = "text/event-stream" if settings.stream else "application/json"
    if form is not None:
        # aiohttp writes the multipart content type with its boundary itself.
        headers = endpoint.headers(accept=accept, content_type=None)
        data: Any = form
    else:
        headers = endpoint.headers(accept=accept)
        data = dumps(body)
    log.debug("openai: POST %s (model %s, stream=%s)", path, settings.model, settings.stream)
    return await context.http.send(
        "POST",
        endpoint.url(path),
        provider=_PROVIDER,
        headers=headers,
        data=data,
        parse_error=http_error_parser(endpoint.api_key),
        stall_timeout=settings.timeout,
    )


class EventMachine(Protocol):
    """Turns one API's SSE events into chunks (``ImagesEvents``, ``ResponsesEvents``)."""

    def handle(self, payload: Mapping[str, Any], event: str = ...) -> list[Chunk]: ...

    def finish(self) -> None: ...


async def chunks_of(
    context: RunContext,
    response: aiohttp.ClientResponse,
    *,
    stream: bool,
    machine: Callable[[], EventMachine],
    whole: Callable[[], Awaitable[ProviderResponse]],
) -> AsyncGenerator[Chunk, None]:
    """The chunks of one response: its events when it streams, else the whole body.

    ``machine`` is called only for an event stream; ``whole`` reads and parses
    a non-streamed body (a gateway may ignore ``stream``).
    """
    try:
        if stream and streamed(response):
            events_to_chunks = machine()
            async with aclosing(sse_payloads(context, response)) as events:
                async for event, payload in events:
                    for chunk in events_to_chunks.handle(payload, event):
                        yield chunk
            events_to_chunks.finish()
        else:
            async for chunk in chunks_from_response(await whole()):
                yield chunk
    finally:
        # A body read to the end was already handed back to the pool, and this
        # does nothing; one left unread (the consumer stopped, an error, a
        # cancellation) is dropped, so the server stops sending it.
        response.close()


def streamed(response: aiohttp.ClientResponse) -> bool:
    """True if the server answered with an event stream (a gateway may ignore ``stream``)."""
    return response.content_type == "text/event-stream"


async def read_json(context: RunContext, response: aiohttp.ClientResponse, limit: int) -> Any:
    """A whole JSON body, capped at ``limit`` bytes.

    Raises:
        StreamDecodeError: The body is not JSON.
    """
    body = await context.http.read_body(response, provider=_PROVIDER, limit=limit)
    try:
        return loads_event(body.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError is a ValueError too
        raise StreamDecodeError(f"openai: the response body is not JSON ({exc})") from None


async def sse_payloads(
    context: RunContext, response: aiohttp.ClientResponse
) -> AsyncGenerator[tuple[str, Any], None]:
    """``(event name, parsed JSON data)`` for each event of an SSE body.

    Stops at a ``data: [DONE]`` line (some servers and proxies send one).

    Raises:
        StreamInterruptedError: The connection broke, or the body ended inside an event.
        APITimeoutError: No data for longer than the stall timeout.
        StreamDecodeError: An event's data is not JSON.
    """
    decoder = context.get_decoder("sse")
    feed = decoder.feed
    pieces = context.http.iter_body(response, provider=_PROVIDER)
    try:
        async for piece in pieces:
            for event in feed(piece):
                data = event.data
                if data.startswith("[DONE]"):
                    return
                try:
                    payload = loads_event(data)
                except ValueError as exc:
                    if event.event == "error":
                        # A proxy's plain-text error event: still an error, not garbage.
                        yield event.event, {"error": {"message": data[:500]}}
                        continue
                    raise StreamDecodeError(
                        f"openai: a {event.event!r} event's data is not JSON ({exc})"
                    ) from None
                yield event.event, payload
    finally:
        # Close the body iterator now rather than when it is garbage collected.
        aclose = getattr(pieces, "aclose", None)
        if aclose is not None:
            await aclose()
    try:
        decoder.close()
    except StreamTruncatedError as exc:
        raise StreamInterruptedError(
            f"the stream ended inside an event ({exc.message})", provider=_PROVIDER
        ) from None
