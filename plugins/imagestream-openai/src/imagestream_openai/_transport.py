"""One OpenAI call through the run's HTTP client, and its answer read back as chunks.

Retries, backoff and ``Retry-After`` are the core :class:`~imagestream.HttpClient`'s
job and happen only before a response body is read; once an event has been
consumed nothing is retried, because a second request would bill a second
image. The Content-Type check, the decoder loop, truncation and closing the
response are the kit's (:func:`~imagestream.provider.iter_events`,
:func:`~imagestream.provider.read_json`). What this module adds is OpenAI's
error parsing, the fast JSON parsing of each event (orjson when the ``fast``
extra is installed, images lifted out before parsing), ``data: [DONE]``, and
a proxy's plain-text ``error`` event.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, Protocol

from imagestream.errors import ProviderError, StreamDecodeError
from imagestream.provider import (
    JSON_TYPES,
    Chunk,
    ProviderResponse,
    check_content_type,
    iter_events,
    media_type,
    read_json,
)

from ._errors import http_error_parser
from ._json import ImageLifter, dumps, loads_body, loads_event

if TYPE_CHECKING:
    import aiohttp

    from imagestream.provider import RunContext

    from ._options import Settings

__all__ = ["EventMachine", "Whole", "call", "call_whole"]

log = logging.getLogger("imagestream.openai")

_P = "openai"
_EVENT_STREAM = ("text/event-stream",)


class EventMachine(Protocol):
    """Turns one API's SSE events into chunks (``ImagesEvents``, ``ResponsesEvents``)."""

    def handle(self, payload: Mapping[str, Any], event: str = ...) -> list[Chunk]: ...

    def finish(self) -> None: ...


Whole = Callable[[Mapping[str, Any], Mapping[str, str]], Awaitable[ProviderResponse]]
"""Turns a whole JSON body (and the response headers) into a :class:`ProviderResponse`."""


async def _post(
    context: RunContext, settings: Settings, path: str, body: Any, form: Callable[[], Any] | None
) -> aiohttp.ClientResponse:
    """POST a JSON ``body`` (or a multipart ``form`` factory) and return the 2xx response."""
    endpoint = settings.endpoint
    accept = _EVENT_STREAM[0] if settings.stream else JSON_TYPES[0]
    # aiohttp writes the multipart content type with its boundary itself.
    headers = endpoint.headers(accept=accept, content_type=None if form else JSON_TYPES[0])
    log.debug("openai: POST %s (model %s, stream=%s)", path, settings.model, settings.stream)
    return await context.http.send(
        "POST",
        endpoint.url(path),
        provider=_P,
        headers=headers,
        data=form if form is not None else dumps(body),
        parse_error=http_error_parser(endpoint.api_key),
        stall_timeout=settings.timeout,
    )


async def _read_body(
    context: RunContext, settings: Settings, response: aiohttp.ClientResponse
) -> Mapping[str, Any]:
    """A whole JSON object body, capped at ``max_response_bytes``; the response closed.

    Raises:
        UnexpectedResponseError: The body is not JSON (a proxy's HTML page, say).
        StreamDecodeError: The body is not valid JSON.
    """
    body = await read_json(
        context, response, provider=_P, limit=settings.max_response_bytes, loads=loads_body
    )
    if not isinstance(body, Mapping):
        raise ProviderError("the response is not a JSON object", provider=_P)
    return body


async def call(
    context: RunContext,
    settings: Settings,
    path: str,
    *,
    body: Any = None,
    form: Callable[[], Any] | None = None,
    machine: Callable[[Mapping[str, str]], EventMachine],
    whole: Whole,
) -> AsyncGenerator[Chunk, None]:
    """The chunks of one call: its events when it streams, else its whole body.

    A streamed call may still get a whole JSON body back (a gateway that
    ignores ``stream``); anything but an event stream or JSON is refused
    with :class:`~imagestream.UnexpectedResponseError` before a byte is decoded.
    ``machine`` gets the response headers (request ids for errors).
    """
    # Asked for before sending: a missing decoder plugin then costs no request.
    # The lifter reads each large event's images out of the bytes as they arrive.
    lifter = ImageLifter()
    decoder = lifter.decoder(context.get_decoder) if settings.stream else None
    response = await _post(context, settings, path, body, form)
    try:
        if decoder is not None:
            await check_content_type(context, response, (*_EVENT_STREAM, *JSON_TYPES), provider=_P)
        if decoder is None or media_type(response) not in _EVENT_STREAM:
            parsed = await _read_body(context, settings, response)
            for chunk in (await whole(parsed, response.headers)).chunks():
                yield chunk
            return
        events_to_chunks = machine(response.headers)
        events = iter_events(context, response, decoder, provider=_P, content_types=_EVENT_STREAM)
        async with aclosing(events):
            async for event in events:
                named = _payload(event, lifter.loads)
                if named is None:  # [DONE]
                    break
                name, payload = named
                for chunk in events_to_chunks.handle(payload, name):
                    yield chunk
        events_to_chunks.finish()
    finally:
        # Closed whatever happened (the kit's readers close it too, but a
        # cancellation may land before they start).
        response.close()


async def call_whole(
    context: RunContext,
    settings: Settings,
    path: str,
    *,
    body: Any = None,
    form: Callable[[], Any] | None = None,
    whole: Whole,
) -> ProviderResponse:
    """One non-streamed call, as a whole response."""
    response = await _post(context, settings, path, body, form)
    try:
        return await whole(await _read_body(context, settings, response), response.headers)
    finally:
        response.close()


def _payload(event: Any, parse: Callable[[str], Any] = loads_event) -> tuple[str, Any] | None:
    """``(event name, parsed JSON data)`` of one SSE event; ``None`` for ``data: [DONE]``.

    Raises:
        StreamDecodeError: The event's data is not JSON.
    """
    data = event.data
    if data.startswith("[DONE]"):  # some servers and proxies send one
        return None
    try:
        return event.event, parse(data)
    except ValueError as exc:
        if event.event == "error":
            # A proxy's plain-text error event: still an error, not garbage.
            return event.event, {"error": {"message": data[:500]}}
        raise StreamDecodeError(
            f"openai: a {event.event!r} event's data is not JSON ({exc})"
        ) from None
