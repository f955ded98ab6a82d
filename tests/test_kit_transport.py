"""The kit's streaming HTTP call against a real local server: content type first, always closed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ClassVar

import pytest
from aiohttp import web

from imagestream import (
    ImageData,
    ImageFinal,
    Pipeline,
    StreamDecodeError,
    StreamInterruptedError,
    TextDelta,
    UnexpectedResponseError,
)
from imagestream.provider import (
    Chunk,
    ImageRequest,
    Provider,
    ProviderResponse,
    RunContext,
    iter_events,
    read_json,
    stream_events,
)
from imagestream.testing import make_png

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Serve = Callable[[Handler], Awaitable[str]]

KEY = "sk-test-NEVER-SHOWN-4242"

# A run asks for an image: one that ends without any is a NoImageError.
FINAL = ImageFinal(image=ImageData.from_bytes(make_png(), "image/png"))


class EventsProvider(Provider):
    """Streams each SSE event's data as text, through stream_events."""

    name: ClassVar[str] = "events"

    async def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Chunk]:
        decoder = context.get_decoder("sse")
        events = stream_events(
            context,
            "POST",
            f"{request.base_url}/v1/stream",
            provider=self.name,
            decoder=decoder,
            content_types=("text/event-stream",),
            headers={"Authorization": f"Bearer {KEY}"},
            json_body={"prompt": request.prompt},
        )
        async for event in events:
            yield TextDelta(event.data)
        yield FINAL


class WholeProvider(Provider):
    """Reads a whole JSON body through read_json."""

    name: ClassVar[str] = "whole"

    async def generate(self, request: ImageRequest, context: RunContext) -> ProviderResponse:
        response = await context.http.send(
            "GET", f"{request.base_url}/v1/whole", provider=self.name
        )
        body = await read_json(context, response, provider=self.name, limit=1000)
        return ProviderResponse(text=body["text"], images=[FINAL])


async def _run(provider: Provider, base_url: str) -> list[Chunk]:
    async with Pipeline(provider) as pipe:
        return [chunk async for chunk in pipe.stream("a cat", base_url=base_url)]


def _sse(*events: str) -> bytes:
    return b"".join(f"data: {event}\n\n".encode() for event in events)


async def test_events_come_out_in_order(serve: Serve) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        assert await request.json() == {"prompt": "a cat"}
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await response.prepare(request)
        for piece in (b"data: one\n", b"\ndata: t", b"wo\n\n"):
            await response.write(piece)
        return response

    chunks = await _run(EventsProvider(), await serve(handler))
    assert [chunk.text for chunk in chunks if isinstance(chunk, TextDelta)] == ["one", "two"]


@pytest.mark.parametrize(
    ("content_type", "body", "quoted"),
    [
        ("text/html", b"<html><body>Please log in, " + KEY.encode() + b"</body></html>", "<html>"),
        ("application/json", b'{"error": {"message": "quota"}}', '"quota"'),
        ("", b"", ""),
    ],
)
async def test_a_2xx_that_is_not_a_stream_is_a_clear_error(
    serve: Serve, content_type: str, body: bytes, quoted: str
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.Response(body=body, status=200)
        if content_type:
            response.content_type = content_type
        else:
            response.headers["Content-Type"] = ""
        return response

    with pytest.raises(UnexpectedResponseError) as info:
        await _run(EventsProvider(), await serve(handler))
    error = info.value
    assert error.status == 200
    assert error.content_type == content_type
    assert error.provider == "events"
    assert "expected text/event-stream" in error.message
    assert quoted in error.message
    assert KEY not in str(error)
    assert "base_url" in (error.hint or "")


async def test_a_body_cut_inside_an_event_is_an_interrupted_stream(serve: Serve) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(_sse("whole") + b"data: half")
        return response

    with pytest.raises(StreamInterruptedError, match="ended inside an event") as info:
        await _run(EventsProvider(), await serve(handler))
    partial = info.value.partial
    assert partial is not None and partial.text == "whole"  # nothing lost


async def test_stopping_early_closes_the_connection(serve: Serve) -> None:
    closed = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            for number in range(1000):
                await response.write(_sse(str(number)))
                await asyncio.sleep(0.01)
        except (ConnectionError, asyncio.CancelledError):
            closed.set()
            raise
        return response

    base_url = await serve(handler)
    async with Pipeline(EventsProvider()) as pipe:
        async for _ in pipe.stream("a cat", base_url=base_url):
            break
    await asyncio.wait_for(closed.wait(), 5)


async def test_nothing_is_sent_until_the_first_event_is_asked_for(serve: Serve) -> None:
    hits: list[str] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        hits.append(request.path)
        return web.Response(body=_sse("x"), content_type="text/event-stream")

    base_url = await serve(handler)
    async with Pipeline(EventsProvider()) as pipe:
        stream = pipe.stream("a cat", base_url=base_url)
        await asyncio.sleep(0.05)
        assert hits == []
        assert [chunk async for chunk in stream]
    assert hits == ["/v1/stream"]


async def test_read_json(serve: Serve) -> None:
    bodies = iter(
        [
            web.json_response({"text": "hello"}),
            web.Response(body=b'{"text": "problem"}', content_type="application/problem+json"),
            web.Response(body=b"{not json", content_type="application/json"),
            web.Response(body=b"<html></html>", content_type="text/html"),
            web.json_response({"text": "x" * 2000}),
        ]
    )

    async def handler(request: web.Request) -> web.StreamResponse:
        return next(bodies)

    base_url = await serve(handler)
    assert (await _run(WholeProvider(), base_url))[0] == TextDelta("hello", synthetic=True)
    assert (await _run(WholeProvider(), base_url))[0] == TextDelta("problem", synthetic=True)
    with pytest.raises(StreamDecodeError, match="whole: the response body is not JSON"):
        await _run(WholeProvider(), base_url)
    with pytest.raises(UnexpectedResponseError, match="expected application/json"):
        await _run(WholeProvider(), base_url)
    with pytest.raises(Exception, match="larger than 1000 bytes"):
        await _run(WholeProvider(), base_url)


async def test_iter_events_without_a_type_check(serve: Serve) -> None:
    seen: list[Any] = []

    class Untyped(Provider):
        name: ClassVar[str] = "untyped"

        async def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Chunk]:
            response = await context.http.send("GET", f"{request.base_url}/", provider=self.name)
            async for event in iter_events(
                context, response, context.get_decoder("sse"), provider=self.name
            ):
                seen.append(json.loads(event.data))
                yield TextDelta(event.data)
            yield FINAL

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=_sse('{"a": 1}'), content_type="application/octet-stream")

    await _run(Untyped(), await serve(handler))
    assert seen == [{"a": 1}]
