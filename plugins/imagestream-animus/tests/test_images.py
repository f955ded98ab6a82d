"""Both image endpoints against the local server: progress by polling, downloads, failures, limits."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from _animus_server import KEY, PNG, AnimusServer, Generation

import imagestream
from imagestream import (
    APITimeoutError,
    ConfigurationError,
    ContentPolicyError,
    ImageFinal,
    ImageValidationError,
    Progress,
    ProviderError,
    QuotaExceededError,
    ServerError,
    UnexpectedResponseError,
    Usage,
    ValidationError,
)
from imagestream.testing import make_png
from imagestream_animus import AnimusAuth, AnimusProvider, read_status

FAST = {"poll_interval": 0.01, "max_poll_interval": 0.03}


def pipe(auth: AnimusAuth) -> imagestream.Pipeline:
    return imagestream.Pipeline(AnimusProvider(auth=auth))


async def run(
    auth: AnimusAuth, server: AnimusServer, prompt: str = "a sunset over the sea", **params: Any
) -> tuple[list[imagestream.Chunk], imagestream.GenerationResult]:
    params = {"base_url": server.base, "api_key": KEY, **FAST, **params}
    chunks = pipe(auth).stream(prompt, **params)
    async with chunks:
        seen = [chunk async for chunk in chunks]
    return seen, chunks.result


async def test_generation_streams_progress_0_to_100_then_the_image(
    server: AnimusServer, auth: AnimusAuth
) -> None:
    chunks, result = await run(
        auth, server, size="512x768", seed=7, steps=20, negative_prompt="blur", guidance_scale=6.5
    )
    progress = [chunk for chunk in chunks if isinstance(chunk, Progress)]
    assert [p.fraction for p in progress] == [0.0, 0.3, 0.6, 1.0]
    assert [p.message for p in progress] == ["queued", "processing", "processing", "completed"]
    assert all(p.extra["generation_id"] == "gen_1" for p in progress)
    assert progress[0].extra["estimated_time"] == 3
    finals = [chunk for chunk in chunks if isinstance(chunk, ImageFinal)]
    assert len(finals) == 1 and finals[0].image.data == PNG
    assert (finals[0].width, finals[0].height, finals[0].seed) == (16, 12, 7)
    assert finals[0].extra["url"] == server.file_url("result.png")
    # Progress first, the image after the last progress, the credits at the end.
    assert chunks.index(finals[0]) > chunks.index(progress[-1])
    assert isinstance(chunks[-1], Usage)
    assert chunks[-1].raw == {"credits_deducted": 1, "remaining_balance": 99}
    (create,) = server.of("POST", "/v3/generation/create")
    assert create.json == {
        "prompt": "a sunset over the sea",
        "negative_prompt": "blur",
        "seed": 7,
        "num_inference_steps": 20,
        "width": 512,
        "height": 768,
        "guidance_scale": 6.5,
    }
    # One poll per step, none after the end.
    assert len(server.of("GET", "/v3/generation/status/gen_1")) == 4
    assert result.images[0].image.data == PNG


async def test_polls_wait_longer_each_time_up_to_the_maximum(
    server: AnimusServer, auth: AnimusAuth
) -> None:
    server.next_generation = Generation(
        steps=[("processing", 10)] * 6 + [("completed", 100)],
        result_urls=[server.file_url("result.png")],
    )
    await run(auth, server, poll_interval=0.02, max_poll_interval=0.06)
    polls = server.of("GET", "/v3/generation/status/")
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(polls)]
    assert len(polls) == 7
    assert gaps[0] >= 0.025  # 0.03 after the first wait of 0.02
    assert max(gaps) < 2.0  # a busy machine is slow, but the waits stay bounded
    assert gaps[-1] >= 0.055  # capped at 0.06


async def test_unchanged_status_is_one_progress_chunk(
    server: AnimusServer, auth: AnimusAuth
) -> None:
    server.next_generation = Generation(
        steps=[("processing", 40)] * 4 + [("completed", 100)],
        result_urls=[server.file_url("result.png")],
    )
    chunks, _ = await run(auth, server)
    assert [c.fraction for c in chunks if isinstance(c, Progress)] == [0.0, 0.4, 1.0]


async def test_the_generate_image_endpoint_answers_one_url(
    server: AnimusServer, auth: AnimusAuth
) -> None:
    chunks, result = await run(
        auth, server, model="generate-image", input_image="https://example.com/in.png"
    )
    assert isinstance(chunks[0], Progress)
    assert result.images[0].image.data == PNG
    assert result.model == "generate-image"
    (call,) = server.of("POST", "/v3/generate/image")
    assert call.json == {
        "prompt": "a sunset over the sea",
        "input_image": "https://example.com/in.png",
    }


async def test_several_result_urls_are_several_samples(
    server: AnimusServer, auth: AnimusAuth
) -> None:
    other = make_png(8, 8, (0, 0, 255))
    server.files["second.png"] = ("image/png", other, True)
    server.next_generation = Generation(
        steps=[("completed", 100)],
        result_urls=[server.file_url("result.png"), server.file_url("second.png")],
    )
    _, result = await run(auth, server, n=2)
    assert [(i.sample, i.image.data) for i in result.images] == [(0, PNG), (1, other)]
    assert server.of("POST", "/v3/generation/create")[0].json["num_images"] == 2


async def test_a_failed_generation_is_a_typed_error(server: AnimusServer, auth: AnimusAuth) -> None:
    server.next_generation = Generation(
        steps=[("processing", 20), ("failed", 20)], error="worker crashed"
    )
    with pytest.raises(ServerError) as caught:
        await run(auth, server)
    assert "gen_1 failed: worker crashed" in str(caught.value)
    assert caught.value.code == "generation_failed"
    assert caught.value.partial is not None and not caught.value.partial.images


async def test_a_generation_refused_by_policy_is_a_content_policy_error(
    server: AnimusServer, auth: AnimusAuth
) -> None:
    server.next_generation = Generation(
        steps=[("failed", 0)], error="prompt rejected by content policy"
    )
    with pytest.raises(ContentPolicyError):
        await run(auth, server)


async def test_a_url_that_serves_a_page_is_an_unexpected_response(
    server: AnimusServer, auth: AnimusAuth
) -> None:
    server.files["result.png"] = ("text/html", b"<!doctype html><title>Sign in</title>", True)
    with pytest.raises(UnexpectedResponseError) as caught:
        await run(auth, server)
    assert caught.value.content_type == "text/html"
    assert "Sign in" in str(caught.value)


async def test_a_url_that_serves_bytes_that_are_no_image_is_refused(
    server: AnimusServer, auth: AnimusAuth
) -> None:
    server.files["result.png"] = ("application/octet-stream", b"PK\x03\x04 not an image", True)
    with pytest.raises(ImageValidationError, match="not an image"):
        await run(auth, server, model="generate-image")


@pytest.mark.parametrize("with_length", [True, False], ids=["content-length", "chunked"])
async def test_an_oversized_image_is_refused(
    server: AnimusServer, auth: AnimusAuth, with_length: bool
) -> None:
    big = make_png(400, 400, (1, 2, 3)) + b"\0" * 20_000
    server.files["result.png"] = ("image/png", big, with_length)
    with pytest.raises(ProviderError, match="larger than max_image_bytes=10000") as caught:
        await run(auth, server, max_image_bytes=10_000)
    assert ("Content-Length" in str(caught.value)) is with_length


async def test_the_token_goes_only_to_the_api_origin(
    server: AnimusServer, auth: AnimusAuth
) -> None:
    async with AnimusServer() as storage:
        server.next_generation = Generation(
            steps=[("completed", 100)], result_urls=[storage.file_url("result.png")]
        )
        _, result = await run(auth, server)
        assert result.images[0].image.data == PNG
        (download,) = storage.requests
        assert "Authorization" not in download.headers
    server.next_generation = Generation(
        steps=[("completed", 100)], result_urls=[server.file_url("result.png")]
    )
    await run(auth, server)
    assert server.of("GET", "/files/")[0].headers["Authorization"].startswith("Bearer ")


async def test_closing_the_stream_stops_polling(server: AnimusServer, auth: AnimusAuth) -> None:
    server.next_generation = Generation(
        steps=[("processing", 10), ("processing", 20)] + [("processing", 20)] * 1000
    )
    chunks = pipe(auth).stream("a sunset", base_url=server.base, api_key=KEY, **FAST)
    async with chunks:
        progress = 0
        async for chunk in chunks:
            progress += isinstance(chunk, Progress)
            if progress == 3:
                break
    polls = len(server.of("GET", "/v3/generation/status/"))
    await asyncio.sleep(0.2)
    assert len(server.of("GET", "/v3/generation/status/")) == polls


async def test_cancelling_the_task_stops_polling(server: AnimusServer, auth: AnimusAuth) -> None:
    server.next_generation = Generation(steps=[("processing", 10)] * 1000)
    task = asyncio.create_task(run(auth, server))
    await server.wait_for("GET", "/v3/generation/status/", 3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    polls = len(server.of("GET", "/v3/generation/status/"))
    await asyncio.sleep(0.2)
    assert len(server.of("GET", "/v3/generation/status/")) == polls


async def test_polling_gives_up_after_the_poll_timeout(
    server: AnimusServer, auth: AnimusAuth
) -> None:
    server.next_generation = Generation(steps=[("processing", 10)] * 1000)
    with pytest.raises(APITimeoutError, match="not finished after 0.2s"):
        await run(auth, server, poll_timeout=0.2)


async def test_out_of_credit_is_a_quota_error(server: AnimusServer, auth: AnimusAuth) -> None:
    server.fail["/v3/generation/create"] = (402, "insufficient credits")
    with pytest.raises(QuotaExceededError) as caught:
        await run(auth, server)
    assert "insufficient credits" in str(caught.value)
    assert "credits" in (caught.value.hint or "")


async def test_a_server_error_on_create_is_not_retried(
    server: AnimusServer, auth: AnimusAuth
) -> None:
    server.fail["/v3/generation/create"] = (500, "boom")
    with pytest.raises(ServerError):
        await run(auth, server)
    assert len(server.of("POST", "/v3/generation/create")) == 1


@pytest.mark.parametrize(
    ("params", "error", "words"),
    [
        ({"output_format": "webp"}, ConfigurationError, "output_format"),
        ({"model": "generate-image", "size": "512x512"}, ValidationError, "size"),
        ({"model": "generate-image", "seed": 3}, ValidationError, "seed"),
        ({"source_image_url": "/tmp/x.png"}, ConfigurationError, "http(s) URL"),
        ({"input_image": "https://example.com/a.png"}, ValidationError, "source_image_url"),
        ({"pol_interval": 1}, ConfigurationError, "poll_interval"),
        ({"api_version": "three", "base_url": None}, ConfigurationError, "api_version"),
        ({"size": "16x16"}, ValidationError, "width"),
        ({"partial_images": 2}, ValidationError, "partial"),
    ],
)
async def test_refusals_come_before_any_request(
    server: AnimusServer,
    auth: AnimusAuth,
    params: dict[str, Any],
    error: type[Exception],
    words: str,
) -> None:
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        await run(auth, server, **params)
    assert server.requests == []


def test_status_answers_are_read_leniently() -> None:
    assert read_status({"status": "COMPLETED", "progress": 100, "result_urls": ["u"]})[0] == "done"
    assert read_status({"status": "processing", "progress": 250})[1] == 1.0
    assert read_status({"status": "processing", "progress": -3})[1] == 0.0
    assert read_status({"status": "processing", "progress": "50"})[1] is None
    assert read_status({"status": "weird", "error": "out of memory"})[0] == "failed"
    assert read_status({"progress": 100, "result_urls": ["u"]})[0] == "done"
    assert read_status({"status": "running", "progress": 100, "result_urls": []})[0] == "running"
    with pytest.raises(UnexpectedResponseError):
        read_status(["not", "an", "object"])


def test_the_default_server_and_version() -> None:
    from imagestream_animus._config import api_base, auth_url_for

    assert api_base(None, None) == "https://api.animusai.co/v3"
    assert api_base(None, "v2") == "https://api.animusai.co/v2"
    assert auth_url_for(api_base(None, "v2")) == "https://api.animusai.co/auth/generate-token"
    assert auth_url_for("http://127.0.0.1:9/v3") == "http://127.0.0.1:9/auth/generate-token"
