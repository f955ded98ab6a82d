"""Tests of the code shown in the plugin guide."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import ndjson_decoder
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from runlog_middleware import RunLog
from sketch_provider import SketchProvider
from still_provider import StillProvider

import imagestream
from imagestream.testing import PluginHarness, ScriptedProvider, make_png
from imagestream_sse import SSEDecoder

PNG = make_png(4, 4, (0, 0, 255))
PNG_B64 = imagestream.ImageData.from_bytes(PNG).b64

# -- a provider that only generates -----------------------------------------


def test_generate_only_is_streamed_by_the_core(imagestream_plugins: PluginHarness) -> None:
    imagestream_plugins.register_provider(StillProvider())
    chunks = imagestream_plugins.run("anything", provider="still")

    assert [chunk.kind for chunk in chunks] == ["text_delta", "image_final"]
    assert all(chunk.synthetic for chunk in chunks)


def test_scripted_provider_with_a_response(imagestream_plugins: PluginHarness) -> None:
    final = imagestream.ImageFinal(imagestream.ImageData.from_bytes(PNG))
    response = imagestream.ProviderResponse(images=[final], text="hello")
    imagestream_plugins.register_provider(ScriptedProvider("canned", response=response))

    result = imagestream.generate("anything", provider="canned")

    assert result.text == "hello"
    assert result.images[0].synthetic


# -- an HTTP provider --------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[str]:
    """Run ``handler`` for ``POST /v1/sketches`` on a local port; yield the base URL."""
    app = web.Application()
    app.router.add_post("/v1/sketches", handler)
    server = TestServer(app)
    await server.start_server()
    try:
        yield str(server.make_url(""))
    finally:
        await server.close()


def sse(event: str, data: object) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


async def send_events(request: web.Request, events: list[bytes]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for event in events:
        await response.write(event)
    await response.write_eof()
    return response


def pipeline() -> imagestream.Pipeline:
    # No global state: the provider, the middleware and the decoder are all given here.
    return imagestream.Pipeline(
        SketchProvider(), middleware=[imagestream.Validation()], decoders={"sse": SSEDecoder}
    )


@pytest.mark.asyncio
async def test_sketch_streams_partials_then_the_image() -> None:
    seen: list[dict[str, object]] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        assert request.headers["Authorization"] == "Bearer test-key"
        seen.append(await request.json())
        return await send_events(
            request,
            [
                sse("partial", {"index": 0, "b64": PNG_B64}),
                sse("partial", {"index": 1, "b64": PNG_B64}),
                sse("image", {"b64": PNG_B64, "seed": 7}),
                sse("usage", {"input_tokens": 5, "output_tokens": 90}),
            ],
        )

    async with serving(handler) as url:
        result = await pipeline().agenerate(
            "a blue square", base_url=url, api_key="test-key", partial_images=2
        )

    assert seen[0]["prompt"] == "a blue square"
    assert seen[0]["partial_images"] == 2
    assert len(result.previews) == 2
    assert result.images[0].image.data == PNG
    assert result.images[0].seed == 7
    assert result.usage is not None and result.usage.output_tokens == 90


@pytest.mark.asyncio
async def test_sketch_http_errors_are_typed_and_keyless() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {"message": "that key is not valid"}, status=401, headers={"x-request-id": "req_42"}
        )

    async with serving(handler) as url:
        with pytest.raises(imagestream.AuthenticationError) as caught:
            await pipeline().agenerate("a blue square", base_url=url, api_key="test-key")

    error = caught.value
    assert (error.provider, error.status, error.request_id) == ("sketch", 401, "req_42")
    assert "test-key" not in str(error)


@pytest.mark.asyncio
async def test_sketch_error_event_keeps_what_arrived() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await send_events(
            request,
            [
                sse("partial", {"index": 0, "b64": PNG_B64}),
                sse("error", {"status": 429, "message": "slow down", "code": "rate_limited"}),
            ],
        )

    async with serving(handler) as url:
        with pytest.raises(imagestream.RateLimitError) as caught:
            await pipeline().agenerate("a blue square", base_url=url, api_key="test-key")

    assert caught.value.code == "rate_limited"
    assert caught.value.partial is not None
    assert len(caught.value.partial.previews) == 1


def test_sketch_without_a_key_fails_before_any_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SKETCH_API_KEY", raising=False)
    with pytest.raises(imagestream.MissingAPIKeyError, match="no API key") as caught:
        pipeline().generate("a blue square", base_url="http://127.0.0.1:9")
    assert caught.value.hint == "set SKETCH_API_KEY, or pass --key / api_key="


# -- a middleware plugin -----------------------------------------------------


def test_runlog_in_a_pipeline(caplog: pytest.LogCaptureFixture) -> None:
    image = imagestream.ImageData.from_bytes(PNG)
    provider = ScriptedProvider(
        "scripted", [imagestream.ImagePreview(image, index=0), imagestream.ImageFinal(image)]
    )
    pipe = imagestream.Pipeline(provider, middleware=[RunLog()])

    with caplog.at_level(logging.INFO, logger="imagestream"):
        result = pipe.generate("anything")

    assert result.images[0].extra["run_id"] >= 1
    assert "scripted made 1 image(s) and 1 preview(s)" in caplog.text


def test_runlog_sees_failures(
    imagestream_plugins: PluginHarness, caplog: pytest.LogCaptureFixture
) -> None:
    broken = imagestream.StreamInterruptedError("connection lost", provider="flaky")
    imagestream_plugins.register(RunLog(), "runlog")
    imagestream_plugins.register_provider(ScriptedProvider("flaky", [broken]))

    with (
        caplog.at_level(logging.INFO, logger="imagestream"),
        pytest.raises(imagestream.StreamInterruptedError),
    ):
        imagestream_plugins.run("anything", provider="flaky")

    assert "failed: StreamInterruptedError" in caplog.text


# -- a decoder plugin --------------------------------------------------------

BODY = b'{"a": 1}\n\n{"b": [2, 3]}\r\n"text"\n'
VALUES = [{"a": 1}, {"b": [2, 3]}, "text"]


def test_ndjson_is_the_same_whatever_the_pieces() -> None:
    whole = ndjson_decoder.NDJSONDecoder()
    assert whole.feed(BODY) + whole.close() == VALUES

    bytewise = ndjson_decoder.NDJSONDecoder()
    values = [value for i in range(len(BODY)) for value in bytewise.feed(BODY[i : i + 1])]
    assert values + bytewise.close() == VALUES


def test_ndjson_errors() -> None:
    decoder = ndjson_decoder.NDJSONDecoder()
    decoder.feed(b'{"a": 1}\n{"b"')
    with pytest.raises(imagestream.StreamTruncatedError):
        decoder.close()
    with pytest.raises(imagestream.StreamDecodeError, match="at byte 9"):
        ndjson_decoder.NDJSONDecoder().feed(b'{"a": 1}\nnot json\n')
    with pytest.raises(imagestream.DecoderLimitError) as caught:
        ndjson_decoder.NDJSONDecoder(max_line_bytes=8).feed(b"[" + b"1," * 10)
    assert caught.value.limit == "max_line_bytes"


def test_ndjson_through_the_plugin_manager(imagestream_plugins: PluginHarness) -> None:
    imagestream_plugins.register(ndjson_decoder)
    decoder = imagestream.get_decoder("ndjson", max_line_bytes=1024)
    assert decoder.feed(b"[1]\n") == [[1]]
    assert decoder.close() == []
