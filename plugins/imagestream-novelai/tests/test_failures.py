"""Every way a generation can fail becomes a typed error, keeping what arrived."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from imagestream import (
    AuthenticationError,
    ConflictError,
    DecoderLimitError,
    ImageFinal,
    ImagePreview,
    InvalidRequestError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    StreamDecodeError,
    StreamInterruptedError,
    StreamTruncatedError,
    UnexpectedResponseError,
)
from imagestream.testing import chunks_of

STREAMS = ["msgpack", "sse"]


async def _fail(nai: Any, error: type[Exception], **params: Any) -> Any:
    """Run a stream that must fail; return the error (with the chunks seen before it)."""
    seen: list[Any] = []
    chunks = nai.stream(**params)

    async def consume() -> None:
        async with chunks:
            async for chunk in chunks:
                seen.append(chunk)

    with pytest.raises(error) as info:
        await consume()
    info.value.seen = seen  # type: ignore[attr-defined]
    return info.value


@pytest.mark.parametrize("stream", STREAMS)
async def test_stream_that_ends_before_the_final_keeps_its_previews(nai: Any, stream: str) -> None:
    nai.server.script.end_after = 5
    error = await _fail(nai, StreamInterruptedError, steps=10, stream=stream)
    assert "0 of 1 final image" in error.message and "step 5 of 10" in error.message
    assert error.provider == "novelai"
    assert error.partial.preview_count == 5 and error.partial.images == []


@pytest.mark.parametrize("stream", STREAMS)
async def test_truncated_last_event(nai: Any, stream: str) -> None:
    nai.server.script.truncate_final = True
    error = await _fail(nai, StreamInterruptedError, steps=6, stream=stream)
    # Chained: the kit's StreamInterruptedError, caused by the decoder's StreamTruncatedError.
    assert isinstance(error.__cause__, StreamInterruptedError)
    assert isinstance(error.__cause__.__cause__, StreamTruncatedError)
    assert "ended inside an event" in error.message and "novelai: novelai" not in error.message
    assert len(chunks_of(ImagePreview, error.seen)) == 6


async def test_absurd_length_prefix_is_a_limit_error(nai: Any) -> None:
    nai.server.script.absurd_after = 2
    error = await _fail(nai, DecoderLimitError, steps=6)
    assert error.limit == "max_frame_bytes"
    assert error.partial.preview_count == 2


@pytest.mark.parametrize("stream", STREAMS)
async def test_garbage_bytes(nai: Any, stream: str) -> None:
    nai.server.script.garbage_after = 3
    error = await _fail(nai, StreamDecodeError, steps=6, stream=stream)
    assert error.partial.preview_count == 3


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize(
    ("event", "error_type"),
    [
        ({"message": "the sampler exploded"}, ServerError),
        ({"message": "Concurrent generation is locked"}, RateLimitError),
        ({"error": "Not enough Anlas"}, QuotaExceededError),
        ({"statusCode": 400, "message": "bad parameter"}, InvalidRequestError),
    ],
)
async def test_error_events_are_typed(
    nai: Any, stream: str, event: dict[str, Any], error_type: type[Exception]
) -> None:
    nai.server.script.error_event_after = 2
    nai.server.script.error_event = event
    error = await _fail(nai, error_type, steps=6, stream=stream)
    assert "error event in the stream" in error.message
    assert error.partial.preview_count == 2


@pytest.mark.parametrize(
    ("status", "error_type", "hint"),
    [
        (400, InvalidRequestError, "parameter"),
        (401, AuthenticationError, "NOVELAI_API_KEY"),
        (402, QuotaExceededError, "subscription"),
        (409, ConflictError, "conflict"),
        (429, RateLimitError, "one generation at a time"),
    ],
)
async def test_http_errors_are_typed_and_not_retried(
    nai: Any, status: int, error_type: type[Exception], hint: str
) -> None:
    nai.server.script.fail_status = status
    nai.server.script.fail_message = "Concurrent generation is locked" if status == 429 else "nope"
    error = await _fail(nai, error_type)
    assert error.status == status and hint in (error.hint or "")
    assert error.message.startswith("novelai: ") and nai.server.script.fail_message in error.message
    # One generation at a time per account: retrying a 429 only adds to the pile.
    assert len(nai.server.requests) == 1


async def test_wrong_token_is_an_authentication_error(nai: Any) -> None:
    error = await _fail(nai, AuthenticationError, api_key="pst-wrong")
    assert error.status == 401


async def test_connection_dropped_mid_stream(nai: Any) -> None:
    nai.server.script.drop_after = 4
    error = await _fail(nai, StreamInterruptedError, steps=10)
    assert "final image" in error.message
    assert error.partial.preview_count == 4


async def test_connection_dropped_after_the_last_final_loses_nothing(
    nai: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="imagestream")
    nai.server.script.drop_at_end = True
    chunks = await nai.run(steps=5, n=2)
    assert "ended untidily" in caplog.text
    assert len(chunks_of(ImagePreview, chunks)) == 10
    assert len(chunks_of(ImageFinal, chunks)) == 2


async def test_zip_bomb_is_an_error_not_an_out_of_memory(nai_server: Any) -> None:
    import imagestream
    from imagestream_novelai import NovelAIProvider, ZipLimits

    nai_server.script.zip_mode = "bomb"  # one more entry: 4 MiB of zeros, ~4 KiB compressed
    provider = NovelAIProvider(zip_limits=ZipLimits(max_entry_bytes=2**20))
    pipe = imagestream.Pipeline(provider)
    with pytest.raises(DecoderLimitError) as info:
        await pipe.agenerate(
            "1girl", model="nai-diffusion-3", base_url=nai_server.base_url, api_key=nai_server.token
        )
    assert info.value.limit == "max_entry_bytes"
    assert "image_99.png" in info.value.message


async def test_zip_with_too_many_entries(nai: Any) -> None:
    nai.server.script.zip_mode = "many"
    error = await _fail(nai, DecoderLimitError, model="nai-diffusion-3")
    assert error.limit == "max_entries" and "40 entries" in error.message


PAGES = [
    (
        "text/html; charset=utf-8",
        b"<!DOCTYPE html><html><head><title>Sign in to the proxy</title></head></html>",
    ),
    ("application/json", b'{"statusCode": 500, "message": "upstream failed"}'),
]


@pytest.mark.parametrize("stream", ["msgpack", "sse", "none"])
@pytest.mark.parametrize(("content_type", "page"), PAGES, ids=["html", "json"])
async def test_a_page_sent_with_200_is_an_unexpected_response(
    nai: Any, stream: str, content_type: str, page: bytes
) -> None:
    # A proxy's login page, or a JSON error sent with status 200, to the
    # streaming endpoint (msgpack, sse) or the ZIP endpoint (none).
    nai.server.script.page = (content_type, page)
    error = await _fail(nai, UnexpectedResponseError, steps=4, stream=stream)
    assert error.status == 200 and error.content_type == content_type.split(";")[0]
    assert page[:30].decode() in error.message  # its first bytes are quoted
    assert error.message.startswith("novelai: expected ")
    assert error.hint is not None and "base_url" in error.hint
    assert error.seen == []


@pytest.mark.parametrize(
    ("stream", "content_type"),
    [
        ("msgpack", "application/octet-stream"),
        ("msgpack", "application/x-msgpack"),
        ("sse", "text/event-stream; charset=utf-8"),
        ("none", "binary/octet-stream"),
        ("none", "application/zip"),
    ],
)
async def test_other_names_of_the_right_content_type_are_accepted(
    nai: Any, stream: str, content_type: str
) -> None:
    nai.server.script.content_type = content_type
    chunks = await nai.run(steps=3, stream=stream)
    assert len(chunks_of(ImageFinal, chunks)) == 1
