"""Tests of the code shown in the plugin guide."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import ndjson_decoder
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from runlog_middleware import RunLog
from sketch_provider import Settings, SketchProvider
from still_provider import StillProvider

import imagestream
from imagestream.provider import MASK
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
            "a blue square", base_url=url, api_key="test-key", partial_images=2, style="Ink"
        )

    assert seen[0]["prompt"] == "a blue square"
    assert seen[0]["partial_images"] == 2
    assert (seen[0]["style"], seen[0]["detail"]) == ("ink", 5)
    assert "image" not in seen[0]
    assert len(result.previews) == 2
    assert result.images[0].image.data == PNG
    assert result.images[0].seed == 7
    assert result.usage is not None and result.usage.output_tokens == 90


@pytest.mark.asyncio
async def test_sketch_sends_an_input_image_as_a_data_url() -> None:
    seen: list[dict[str, object]] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append(await request.json())
        return await send_events(request, [sse("image", {"b64": PNG_B64})])

    async with serving(handler) as url:
        await pipeline().agenerate("make it red", base_url=url, api_key="test-key", image=PNG)

    assert seen[0]["image"] == "data:image/png;base64," + PNG_B64


def test_sketch_reads_the_key_from_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKETCH_API_KEY", "env-key")
    prepared = SketchProvider().validate(imagestream.ImageRequest("a blue square"))

    settings = prepared.settings
    assert isinstance(settings, Settings)
    assert settings.key.get() == "env-key"
    assert settings.url == "https://api.sketch.example/v1/sketches"
    assert "env-key" not in repr(prepared)


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
async def test_sketch_html_page_with_status_200_is_an_unexpected_response() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        # A captive portal or a proxy's login page: status 200, but not the stream.
        page = "<!doctype html><title>Sign in</title><p>Bearer test-key expired</p>"
        return web.Response(text=page, content_type="text/html")

    async with serving(handler) as url:
        with pytest.raises(imagestream.UnexpectedResponseError) as caught:
            await pipeline().agenerate("a blue square", base_url=url, api_key="test-key")

    error = caught.value
    assert (error.provider, error.status, error.content_type) == ("sketch", 200, "text/html")
    assert "Sign in" in error.message
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


@pytest.mark.asyncio
async def test_sketch_error_events_never_quote_a_key() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        message = "key test-key-0001 is revoked; try sk_sketch_0123456789abcdef"
        return await send_events(request, [sse("error", {"status": 401, "message": message})])

    async with serving(handler) as url:
        with pytest.raises(imagestream.AuthenticationError) as caught:
            await pipeline().agenerate("a blue square", base_url=url, api_key="test-key-0001")

    text = str(caught.value)
    assert "test-key-0001" not in text
    assert "sk_sketch_0123456789abcdef" not in text
    assert text.count(MASK) == 2


@pytest.mark.asyncio
async def test_sketch_runs_two_at_a_time_per_key() -> None:
    running = 0
    peak = 0

    async def handler(request: web.Request) -> web.StreamResponse:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            await asyncio.sleep(0.05)
            return await send_events(request, [sse("image", {"b64": PNG_B64})])
        finally:
            running -= 1

    async with serving(handler) as url:
        pipe = pipeline()
        results = await asyncio.gather(
            *(pipe.agenerate(f"sketch {i}", base_url=url, api_key="test-key") for i in range(4))
        )

    assert len(results) == 4
    assert peak == SketchProvider.max_concurrency == 2


def test_sketch_without_a_key_fails_before_any_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SKETCH_API_KEY", raising=False)
    with pytest.raises(imagestream.MissingAPIKeyError, match="no API key") as caught:
        pipeline().generate("a blue square", base_url="http://127.0.0.1:9")
    assert caught.value.hint == (
        "set SKETCH_API_KEY, run 'imagestream keys set sketch', or pass --key / api_key="
    )


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        # Cannot be read as the setting it is for: ConfigurationError.
        ({"stlye": "ink"}, imagestream.ConfigurationError, "did you mean 'style'"),
        ({"style": "crayon"}, imagestream.ConfigurationError, "unknown style 'crayon'"),
        ({"detail": "fine"}, imagestream.ConfigurationError, "detail must be a whole number"),
        ({"image": "no-such-file.png"}, imagestream.ConfigurationError, "no such file"),
        # Read, but refused: ValidationError.
        ({"detail": 11}, imagestream.ValidationError, "detail must be between 1 and 10"),
        ({"image": b"GIF89a" + bytes(32)}, imagestream.ValidationError, "not a .* image"),
    ],
)
def test_sketch_refuses_bad_options_before_any_call(
    options: dict[str, object], error: type[imagestream.ImagestreamError], message: str
) -> None:
    with pytest.raises(error, match=message):
        # Port 9 (discard) is never contacted: validate() fails first.
        pipeline().generate(
            "a blue square", base_url="http://127.0.0.1:9", api_key="test-key", **options
        )


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
