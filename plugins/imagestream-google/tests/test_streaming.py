"""imagestream against the local Google server: streams, failures, cancellation, secrets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from _google_server import (
    KEY,
    PROJECT,
    TOKEN,
    GoogleServer,
    Scenario,
    google_error,
    html_page,
    image_part,
    response,
    stream_events,
    text_part,
    usage,
)

import imagestream
from imagestream import (
    APITimeoutError,
    AuthenticationError,
    HttpClient,
    ImageFinal,
    Pipeline,
    RateLimitError,
    RetryPolicy,
    ServerError,
    StreamDecodeError,
    StreamInterruptedError,
    TextDelta,
    UnexpectedResponseError,
    Usage,
)
from imagestream_google import GeminiProvider, VertexProvider

FAST = RetryPolicy(max_retries=2, initial=0.01, maximum=0.02, retry_after_max=5)


@pytest.fixture
async def pipe() -> AsyncIterator[Pipeline]:
    """A pipeline over both providers with validation, fast retries and its own client."""
    client = HttpClient(retry=FAST, stall_timeout=10)
    pipeline = Pipeline(
        GeminiProvider(),
        middleware=[imagestream.Validation()],
        plugins=[],
        http=client,
    )
    try:
        yield pipeline
    finally:
        await client.close()


async def run(pipe: Pipeline, server: GoogleServer, **params: Any) -> list[Any]:
    params.setdefault("api_key", KEY)
    params.setdefault("options", {}).setdefault("api_version", "v1beta")
    return [chunk async for chunk in pipe.stream("a watercolor fox", base_url=server.url, **params)]


async def test_text_and_images_interleave(
    pipe: Pipeline, google_server: GoogleServer, png: bytes, jpeg: bytes
) -> None:
    google_server.stream(
        *stream_events(
            text_part("Here is a fox"),
            text_part(":"),
            image_part(png),
            text_part(" and a jpeg:"),
            image_part(jpeg, "image/jpeg"),
        )
    )
    chunks = await run(pipe, google_server)
    kinds = [type(chunk).__name__ for chunk in chunks]
    assert kinds == ["TextDelta", "TextDelta", "ImageFinal", "TextDelta", "ImageFinal", "Usage"]
    finals = [c for c in chunks if isinstance(c, ImageFinal)]
    assert [f.image.data for f in finals] == [png, jpeg]
    assert [f.image.mime_type for f in finals] == ["image/png", "image/jpeg"]
    request = google_server.last
    assert request.path == "/v1beta/models/gemini-2.5-flash-image:streamGenerateContent"
    assert request.query == {"alt": "sse"}
    assert request.headers["x-goog-api-key"] == KEY
    assert KEY not in request.query_string


async def test_lf_separators_and_tiny_pieces(
    pipe: Pipeline, google_server: GoogleServer, png: bytes
) -> None:
    google_server.max_piece = 7
    google_server.stream(*stream_events(text_part("tiny"), image_part(png)), separator="\n\n")
    chunks = await run(pipe, google_server)
    assert [c.image.data for c in chunks if isinstance(c, ImageFinal)] == [png]


async def test_a_429_with_retry_delay_is_waited_out(
    pipe: Pipeline, google_server: GoogleServer
) -> None:
    google_server.fail_times(1, 429, retry_delay="0.05s")
    started = asyncio.get_running_loop().time()
    chunks = await run(pipe, google_server)
    assert any(isinstance(c, ImageFinal) for c in chunks)
    assert asyncio.get_running_loop().time() - started >= 0.05
    assert len(google_server.requests) == 2


async def test_a_429_that_asks_too_long_a_wait_is_raised(
    pipe: Pipeline, google_server: GoogleServer
) -> None:
    google_server.fail_times(1, 429, retry_delay="34.4s")
    with pytest.raises(RateLimitError) as info:
        await run(pipe, google_server)
    assert info.value.retry_after == 34.4
    assert info.value.status == 429 and info.value.code == "RESOURCE_EXHAUSTED"


async def test_500_then_success(pipe: Pipeline, google_server: GoogleServer) -> None:
    google_server.fail_times(1, 500)
    chunks = await run(pipe, google_server)
    assert isinstance(chunks[-1], Usage)


async def test_403_is_an_authentication_error_without_the_key(
    pipe: Pipeline, google_server: GoogleServer
) -> None:
    google_server.enqueue(
        Scenario(
            status=403,
            body=google_error(403, f"key {KEY} is not allowed", status="PERMISSION_DENIED"),
        )
    )
    with pytest.raises(AuthenticationError) as info:
        await run(pipe, google_server)
    assert KEY not in str(info.value) and "[redacted]" in str(info.value)
    assert len(google_server.requests) == 1  # not retried


async def test_a_reset_mid_stream_keeps_what_arrived(
    pipe: Pipeline, google_server: GoogleServer, png: bytes
) -> None:
    google_server.stream(
        *stream_events(text_part("Here is"), image_part(png), text_part("more")), reset_after=2
    )
    with pytest.raises(StreamInterruptedError) as info:
        await run(pipe, google_server)
    partial = info.value.partial
    assert partial is not None
    assert partial.text == "Here is"
    assert [image.image.data for image in partial.images] == [png]
    assert len(google_server.requests) == 1  # nothing is retried once data has arrived


async def test_a_stream_that_ends_before_its_finish_reason(
    pipe: Pipeline, google_server: GoogleServer, png: bytes
) -> None:
    google_server.stream(*stream_events(text_part("Here is"), image_part(png)), end_after=2)
    with pytest.raises(StreamInterruptedError, match="no finishReason") as info:
        await run(pipe, google_server)
    assert info.value.partial is not None and len(info.value.partial.images) == 1


async def test_a_malformed_event(pipe: Pipeline, google_server: GoogleServer) -> None:
    google_server.stream(response(text_part("ok")), '{"candidates": [', response(finish="STOP"))
    with pytest.raises(StreamDecodeError, match="not JSON"):
        await run(pipe, google_server)


async def test_an_error_object_in_the_stream(pipe: Pipeline, google_server: GoogleServer) -> None:
    google_server.stream(
        response(text_part("Here is"), usage_metadata=usage(9, 2)),
        google_error(503, "The model is overloaded.", status="UNAVAILABLE"),
    )
    with pytest.raises(ServerError, match="overloaded") as info:
        await run(pipe, google_server)
    assert info.value.partial is not None and info.value.partial.text == "Here is"


async def test_a_page_instead_of_a_stream(pipe: Pipeline, google_server: GoogleServer) -> None:
    google_server.enqueue(Scenario(body=html_page(), content_type="text/html"))
    with pytest.raises(UnexpectedResponseError, match="text/html"):
        await run(pipe, google_server)


async def test_a_stall_is_a_timeout(pipe: Pipeline, google_server: GoogleServer) -> None:
    google_server.stream(*stream_events(text_part("Here")), stall_after=1, stall_seconds=None)
    with pytest.raises(APITimeoutError, match="stalled"):
        await asyncio.wait_for(run(pipe, google_server, timeout=0.3), 10)
    google_server.resume()


async def test_stopping_early_closes_the_connection(
    pipe: Pipeline, google_server: GoogleServer
) -> None:
    google_server.stream(
        *stream_events(text_part("Here"), text_part("more")), stall_after=1, stall_seconds=None
    )
    stream = pipe.stream("a fox", base_url=google_server.url, api_key=KEY)
    async with stream:
        async for chunk in stream:
            assert isinstance(chunk, TextDelta)
            break
    closed = await google_server.wait_closed(5)
    assert closed.client_closed


async def test_cancellation_closes_the_connection(
    pipe: Pipeline, google_server: GoogleServer
) -> None:
    google_server.stream(*stream_events(text_part("Here")), stall_after=1, stall_seconds=None)
    task = asyncio.create_task(run(pipe, google_server))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await google_server.wait_closed(5)


async def test_continuation_spans_two_requests(
    pipe: Pipeline, google_server: GoogleServer, png: bytes
) -> None:
    google_server.stream(
        response(text_part("First half."), usage_metadata=usage(9, 3)),
        response(finish="CONTINUATION", continuation_token=b"hop-1", usage_metadata=usage(9, 3)),
    )
    google_server.stream(*stream_events(image_part(png)))
    chunks = await run(pipe, google_server)
    assert [type(c).__name__ for c in chunks] == ["TextDelta", "ImageFinal", "Usage"]
    first, second = google_server.requests
    assert "continuationToken" not in first.json
    assert second.json["continuationToken"] == "aG9wLTE="
    assert chunks[-1].input_tokens == 18  # usage summed over both requests


async def test_the_key_never_appears(
    pipe: Pipeline, google_server: GoogleServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    google_server.enqueue(
        Scenario(status=400, body=google_error(400, f"bad key {KEY}", status="INVALID_ARGUMENT"))
    )
    with pytest.raises(imagestream.InvalidRequestError) as info:
        await run(pipe, google_server)
    shown = [str(info.value), repr(info.value), caplog.text, repr(info.value.partial)]
    assert all(KEY not in text for text in shown)


async def test_vertex_with_a_token_in_a_region(google_server: GoogleServer, png: bytes) -> None:
    google_server.stream(*stream_events(text_part("A fox"), image_part(png)))
    async with Pipeline(VertexProvider()) as pipe:
        chunks = [
            c
            async for c in pipe.stream(
                "a fox",
                base_url=google_server.url,
                options={"access_token": TOKEN, "project": PROJECT, "location": "europe-west4"},
            )
        ]
    assert [c.image.data for c in chunks if isinstance(c, ImageFinal)] == [png]
    request = google_server.last
    assert request.path == (
        f"/v1beta1/projects/{PROJECT}/locations/europe-west4/publishers/google/models/"
        "gemini-2.5-flash-image:streamGenerateContent"
    )
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert "x-goog-api-key" not in request.headers


async def test_vertex_with_application_default_credentials(
    google_server: GoogleServer, png: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    import google.auth
    import google.oauth2.credentials

    calls: list[object] = []

    def default(scopes: list[str] | None = None, **_: Any) -> tuple[Any, str]:
        calls.append(scopes)
        credentials = google.oauth2.credentials.Credentials(
            token=TOKEN, quota_project_id="quota-proj"
        )
        return credentials, PROJECT

    monkeypatch.setattr(google.auth, "default", default)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    provider = VertexProvider()
    for _ in range(2):
        google_server.stream(*stream_events(image_part(png)))
        async with Pipeline(provider) as pipe:
            await pipe.agenerate("a fox", base_url=google_server.url)
    assert calls == [["https://www.googleapis.com/auth/cloud-platform"]]  # found once, then cached
    assert google_server.last.headers["authorization"] == f"Bearer {TOKEN}"
    assert google_server.last.headers["x-goog-user-project"] == "quota-proj"


async def test_vertex_express_mode(google_server: GoogleServer, png: bytes) -> None:
    google_server.stream(*stream_events(image_part(png)))
    async with Pipeline(VertexProvider()) as pipe:
        result = await pipe.agenerate("a fox", base_url=google_server.url, api_key=KEY)
    assert result.images[0].image.data == png
    assert (
        google_server.last.path
        == "/v1beta1/publishers/google/models/gemini-2.5-flash-image:streamGenerateContent"
    )
    assert google_server.last.headers["x-goog-api-key"] == KEY


async def test_imagen_is_a_whole_answer(google_server: GoogleServer) -> None:
    async with Pipeline(VertexProvider()) as pipe:
        result = await pipe.agenerate(
            "a fox", base_url=google_server.url, model="imagen-4.0-generate-001", n=2, api_key=KEY
        )
    assert len(result.images) == 2 and all(image.synthetic for image in result.images)
    assert google_server.last.path.endswith("/models/imagen-4.0-generate-001:predict")
    assert google_server.last.json["parameters"]["sampleCount"] == 2


async def test_analytics_prices_the_run(google_server: GoogleServer, png: bytes) -> None:
    google_server.stream(*stream_events(text_part("A fox"), image_part(png)))
    async with Pipeline(GeminiProvider(), middleware=[imagestream.AnalyticsMiddleware()]) as pipe:
        result = await pipe.agenerate("a fox", base_url=google_server.url, api_key=KEY)
    assert result.analytics is not None and result.analytics.cost_usd is not None
    # 9 prompt tokens at $0.30/1M, 1 text token at $2.50/1M, 1,290 image tokens at $30/1M.
    assert result.analytics.cost_usd == pytest.approx(9 * 0.3e-6 + 1 * 2.5e-6 + 1290 * 30e-6)
