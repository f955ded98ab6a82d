"""Failures: HTTP errors, retries, broken and stalled streams, error events, cancellation, key hygiene."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from _openai_server import OpenAIServer, Script, b64_image
from _support import collect

import imagestream
from imagestream.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    ContentPolicyError,
    ImagestreamError,
    InvalidRequestError,
    ProviderError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    StreamDecodeError,
    StreamInterruptedError,
    UnexpectedResponseError,
)

SECRET = "sk-proj-RECOGNISABLE0123456789abcdefSECRET"


async def failure(server: OpenAIServer, **params: Any) -> ImagestreamError:
    params.setdefault("model", "gpt-image-1")
    with pytest.raises(ImagestreamError) as caught:
        await collect(server, **params)
    return caught.value


def error_body(
    message: str, error_type: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


async def wait_for(condition: Any, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


# -- HTTP errors and retries ---------------------------------------------------


async def test_401_is_an_authentication_error(server: OpenAIServer) -> None:
    error = await failure(server, api_key="sk-wrong-key-123456")
    assert isinstance(error, AuthenticationError)
    assert (error.status, error.code, error.request_id) == (401, "invalid_api_key", "req_auth")
    # The server quoted the whole key; the error does not.
    assert "sk-wrong-key-123456" not in str(error)
    assert len(server.requests) == 0  # refused before the body was read


async def test_400_unknown_parameter_from_the_recording(
    server: OpenAIServer, recordings: Path
) -> None:
    body = json.loads((recordings / "vercel-ai_images-error-unknown-parameter.json").read_text())
    server.script(Script(status=400, body=body))
    error = await failure(server)
    assert isinstance(error, InvalidRequestError)
    assert error.code == "unknown_parameter" and error.error_type == "invalid_request_error"
    assert "Unknown parameter: 'response_format'." in str(error)
    assert error.status == 400
    assert len(server.requests) == 1  # never retried


@pytest.mark.parametrize("header", [{"Retry-After": "0.05"}, {"retry-after-ms": "50"}])
async def test_429_waits_as_told_then_succeeds(
    server: OpenAIServer, header: dict[str, str]
) -> None:
    server.script(
        Script(
            status=429,
            body=error_body("Rate limit reached", "requests", "rate_limit_exceeded"),
            headers=header,
        )
    )
    started = time.monotonic()
    chunks = await collect(server, model="gpt-image-1", partial_images=1)
    assert time.monotonic() - started >= 0.05
    assert [type(c).__name__ for c in chunks] == ["ImagePreview", "ImageFinal", "Usage"]
    assert len(server.requests) == 2


async def test_429_retries_run_out(server: OpenAIServer) -> None:
    limited = Script(
        status=429,
        body=error_body("Rate limit reached", "requests", "rate_limit_exceeded"),
        headers={"retry-after-ms": "10"},
    )
    server.script(limited, limited, limited, limited)
    error = await failure(server)
    assert isinstance(error, RateLimitError)
    assert error.retry_after == pytest.approx(0.01)
    assert len(server.requests) == 3  # the first try and two retries


async def test_500_then_success(server: OpenAIServer) -> None:
    server.script(Script(status=500, body=error_body("The server had an error", "server_error")))
    chunks = await collect(server, model="gpt-image-1")
    assert [type(c).__name__ for c in chunks] == ["ImageFinal", "Usage"]
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (
            429,
            error_body(
                "You exceeded your current quota", "insufficient_quota", "insufficient_quota"
            ),
            QuotaExceededError,
        ),
        (
            400,
            error_body(
                "Your request was rejected by the safety system.",
                "image_generation_user_error",
                "moderation_blocked",
            ),
            ContentPolicyError,
        ),
        (
            400,
            error_body("Invalid prompt", "invalid_request_error", "content_policy_violation"),
            ContentPolicyError,
        ),
        (
            403,
            error_body("Project does not have access", "invalid_request_error", "unauthorized"),
            AuthenticationError,
        ),
        (
            404,
            error_body("The model does not exist", "invalid_request_error", "model_not_found"),
            InvalidRequestError,
        ),
        (503, b"<html>502 Bad Gateway</html>", ServerError),
    ],
)
async def test_errors_map_by_type_and_code(
    server: OpenAIServer, status: int, body: Any, cls: type[ProviderError]
) -> None:
    script = Script(
        status=status, body=body, content_type="text/html", headers={"retry-after-ms": "1"}
    )
    server.script(script, script, script)
    error = await failure(server)
    assert type(error) is cls
    assert error.status == status


async def test_unreachable_server() -> None:
    error = None
    try:
        await imagestream.agenerate(
            "x",
            provider="openai",
            base_url="http://127.0.0.1:9/v1",
            api_key=SECRET,
            model="gpt-image-1",
        )
    except APIConnectionError as exc:
        error = exc
    assert error is not None and SECRET not in str(error)


_LOGIN_PAGE = b"<!DOCTYPE html><html><body>Please sign in to the corporate proxy</body></html>"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"partial_images": 1}, "text/event-stream or application/json"),
        ({"stream": False}, "application/json"),
        ({"api": "responses"}, "text/event-stream or application/json"),
        ({"api": "responses", "stream": False}, "application/json"),
    ],
)
async def test_an_html_page_with_status_200_is_quoted_not_decoded(
    server: OpenAIServer, params: dict[str, Any], expected: str
) -> None:
    server.script(Script(body=_LOGIN_PAGE, content_type="text/html"))
    error = await failure(server, **params)
    assert isinstance(error, UnexpectedResponseError)
    assert (error.status, error.content_type) == (200, "text/html")
    assert f"expected {expected} but the server sent text/html" in str(error)
    assert "Please sign in to the corporate proxy" in str(error)
    assert len(server.requests) == 1  # a 2xx is never retried


async def test_generate_refuses_an_html_page_too(server: OpenAIServer) -> None:
    from imagestream_openai import OpenAIProvider

    server.script(Script(body=_LOGIN_PAGE, content_type="text/html"))
    provider = OpenAIProvider()
    prepared = provider.validate(
        imagestream.ImageRequest(
            "x", model="gpt-image-1", api_key=server.key, base_url=server.base_url
        )
    )
    http = imagestream.HttpClient()
    context = imagestream.RunContext(
        prepared.request,
        provider,
        decoders=imagestream.get_decoder,
        http=lambda: http,
        generate=lambda: provider.generate(prepared.request, context),
    )
    try:
        with pytest.raises(UnexpectedResponseError, match="expected application/json"):
            await provider.generate(prepared.request, context)
    finally:
        await http.close()


# -- broken streams --------------------------------------------------------------


async def test_reset_mid_stream_keeps_the_previews(server: OpenAIServer) -> None:
    server.script(Script(reset_after=2, cut_inside=True))
    error = await failure(server, partial_images=3)
    assert isinstance(error, StreamInterruptedError)
    assert error.partial is not None
    assert error.partial.preview_count == 2
    assert [p.index for p in error.partial.previews] == [1]  # the latest is kept
    assert error.partial.images == []
    assert len(server.requests) == 1  # nothing is retried once events were read


async def test_stream_that_ends_without_completion(server: OpenAIServer) -> None:
    server.script(Script(end_after=2))
    error = await failure(server, partial_images=3)
    assert isinstance(error, StreamInterruptedError)
    assert "0 of 1" in str(error)
    assert error.partial is not None and error.partial.preview_count == 2


async def test_stream_that_ends_inside_an_event(server: OpenAIServer) -> None:
    server.script(Script(end_after=1, cut_inside=True))
    error = await failure(server, partial_images=3)
    assert isinstance(error, StreamInterruptedError)
    assert "inside an event" in str(error)


async def test_responses_stream_without_response_completed(server: OpenAIServer) -> None:
    events = server.responses_events({"model": "gpt-5"}, {"partial_images": 1})
    cut = [name for name, _ in events].index("response.output_text.delta")
    server.script(Script(end_after=cut + 2))
    error = await failure(server, api="responses", partial_images=1)
    assert isinstance(error, StreamInterruptedError)
    assert error.partial is not None
    assert len(error.partial.previews) == 1 and len(error.partial.images) == 1
    assert error.partial.text == "Here is"


ERROR_EVENTS = [
    # The SDK's flat shape.
    (
        {
            "type": "error",
            "code": "rate_limit_exceeded",
            "message": "Slow down",
            "param": None,
            "sequence_number": 3,
        },
        RateLimitError,
    ),
    # The recorded, nested shape.
    (
        {
            "type": "error",
            "sequence_number": 3,
            "error": {
                "type": "insufficient_quota",
                "code": "insufficient_quota",
                "message": "You exceeded your current quota",
                "param": None,
            },
        },
        QuotaExceededError,
    ),
    # An Images API stream's error: no type, an error object.
    ({"error": {"message": "upstream unavailable"}}, ProviderError),
    (
        {
            "type": "response.failed",
            "response": {
                "status": "failed",
                "error": {
                    "code": "moderation_blocked",
                    "message": "Your request was rejected by the safety system.",
                },
            },
        },
        ContentPolicyError,
    ),
    (
        {
            "type": "response.failed",
            "response": {
                "status": "failed",
                "error": {"code": "server_error", "message": "Something went wrong"},
            },
        },
        ServerError,
    ),
    (
        {
            "type": "response.incomplete",
            "response": {
                "status": "incomplete",
                "incomplete_details": {"reason": "max_output_tokens"},
            },
        },
        ProviderError,
    ),
]


@pytest.mark.parametrize(("payload", "cls"), ERROR_EVENTS)
@pytest.mark.parametrize("api", ["images", "responses"])
async def test_error_events_mid_stream(
    server: OpenAIServer, payload: dict[str, Any], cls: type[ProviderError], api: str
) -> None:
    if api == "images":
        preview = (
            "image_generation.partial_image",
            {
                "type": "image_generation.partial_image",
                "b64_json": b64_image("png", 1),
                "partial_image_index": 0,
                "output_format": "png",
            },
        )
    else:
        preview = (
            "response.image_generation_call.partial_image",
            {
                "type": "response.image_generation_call.partial_image",
                "item_id": "ig_1",
                "partial_image_index": 0,
                "partial_image_b64": b64_image("png", 1),
                "output_format": "png",
            },
        )
    server.script(Script(events=[preview, (str(payload.get("type", "error")), payload)]))
    error = await failure(server, api=api, partial_images=1)
    assert type(error) is cls
    assert error.partial is not None and len(error.partial.previews) == 1


# -- stalls and cancellation --------------------------------------------------------


async def test_stalled_server_times_out(server: OpenAIServer) -> None:
    server.script(Script(stall_after=1))
    started = time.monotonic()
    error = await failure(server, partial_images=2, timeout=0.3)
    assert isinstance(error, APITimeoutError)
    assert 0.3 <= time.monotonic() - started < 5
    assert error.partial is not None and len(error.partial.previews) == 1
    await wait_for(lambda: server.disconnects == 1 and server.open_connections == 0)


async def test_breaking_out_closes_the_connection(server: OpenAIServer) -> None:
    server.script(Script(stall_after=1))
    chunks = imagestream.stream(
        "x",
        provider="openai",
        model="gpt-image-1",
        partial_images=2,
        base_url=server.base_url,
        api_key=server.key,
    )
    async with chunks:
        async for chunk in chunks:
            assert isinstance(chunk, imagestream.ImagePreview)
            break
    await wait_for(lambda: server.disconnects == 1 and server.open_connections == 0)


async def test_breaking_out_without_async_with(server: OpenAIServer) -> None:
    server.script(Script(stall_after=1))
    async for _chunk in imagestream.stream(
        "x",
        provider="openai",
        model="gpt-image-1",
        partial_images=2,
        base_url=server.base_url,
        api_key=server.key,
    ):
        break
    gc.collect()  # the abandoned stream is closed when it is collected
    await wait_for(lambda: server.disconnects == 1 and server.open_connections == 0)


async def test_task_cancel_closes_the_connection(server: OpenAIServer) -> None:
    server.script(Script(stall_after=1))
    first = asyncio.Event()

    async def consume() -> None:
        async for _chunk in imagestream.stream(
            "x",
            provider="openai",
            model="gpt-image-1",
            partial_images=2,
            base_url=server.base_url,
            api_key=server.key,
        ):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_for(lambda: server.disconnects == 1 and server.open_connections == 0)


# -- the key never leaks ---------------------------------------------------------------


async def test_the_key_never_appears_in_errors_reprs_or_logs(
    plugins: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = OpenAIServer(key=SECRET)
    await server.start()
    errors: list[BaseException] = []
    try:
        scripts = [
            Script(
                status=400, body=error_body(f"Bad key {SECRET} in header", "invalid_request_error")
            ),
            Script(
                status=429,
                body=error_body(f"quota for {SECRET}", "insufficient_quota", "insufficient_quota"),
                headers={"retry-after-ms": "1"},
            ),
            Script(
                status=500,
                body=f"proxy failure for key={SECRET}".encode(),
                content_type="text/plain",
                headers={"retry-after-ms": "1"},
            ),
            Script(reset_after=1),
            Script(end_after=1),
            Script(stall_after=1),
            Script(
                events=[
                    (
                        "error",
                        {"type": "error", "code": "server_error", "message": f"boom {SECRET}"},
                    )
                ]
            ),
        ]
        for script in scripts:
            repeat = 3 if script.status in (429, 500) else 1
            server.script(*[script] * repeat)
            with pytest.raises(ImagestreamError) as caught:
                await collect(
                    server, model="gpt-image-1", partial_images=1, timeout=0.3, api_key=SECRET
                )
            errors.append(caught.value)
        with pytest.raises(ImagestreamError) as caught:
            await collect(
                server, model="gpt-image-1", api_key=SECRET[:-1]
            )  # 401 echoing the wrong key
        errors.append(caught.value)
        with pytest.raises(ImagestreamError) as caught:
            await collect(
                server, model="dall-e-3", partial_images=2, api_key=SECRET
            )  # refused locally
        errors.append(caught.value)
    finally:
        await server.stop()
    assert len(errors) == 9
    for error in errors:
        for text in (
            str(error),
            repr(error),
            repr(getattr(error, "partial", None)),
            repr(error.args),
        ):
            assert SECRET not in text and SECRET[:-1] not in text
    assert SECRET not in caplog.text and SECRET[:-1] not in caplog.text
    request = imagestream.ImageRequest("x", api_key=SECRET, options={"api_key_note": 1})
    assert SECRET not in repr(request)
    from imagestream_openai import OpenAIProvider

    settings = OpenAIProvider().validate(imagestream.ImageRequest("x", api_key=SECRET)).settings
    assert SECRET not in repr(settings) and SECRET not in repr(settings.endpoint)


async def test_plain_text_error_event_and_garbage(server: OpenAIServer) -> None:
    server.script(Script(events=[("error", "upstream unavailable")]))
    error = await failure(server)
    assert type(error) is ProviderError and "upstream unavailable" in str(error)
    server.script(Script(events=[("image_generation.partial_image", "{not json")]))
    with pytest.raises(StreamDecodeError, match="not JSON"):
        await collect(server, model="gpt-image-1")
