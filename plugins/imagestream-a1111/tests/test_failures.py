"""What goes wrong: no server, no --api, a login, a missing checkpoint, out of memory, cancellation."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

import imagestream

from .conftest import CHECKPOINTS, Runner


async def _drain(chunks: Any) -> None:
    async with chunks:
        async for _ in chunks:
            pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_server_that_is_not_running(a1111_plugins: Any) -> None:
    port = _free_port()
    with pytest.raises(imagestream.APIConnectionError) as caught:
        await _drain(
            imagestream.stream("a castle", provider="a1111", base_url=f"http://127.0.0.1:{port}")
        )
    error = caught.value
    assert (
        f"is the web UI (AUTOMATIC1111 or Forge) running at http://127.0.0.1:{port} with --api?"
        in error.message
    )
    assert error.hint is not None and "--api" in error.hint and "A1111_BASE_URL" in error.hint


async def test_a_server_started_without_api(webui: Runner) -> None:
    webui.server.script.api = False
    with pytest.raises(imagestream.ProviderError) as caught:
        await webui.run()
    assert (caught.value.status, caught.value.code) == (404, "api_not_enabled")
    assert caught.value.hint is not None and "--api" in caught.value.hint


async def test_api_auth(webui: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    server = webui.server
    server.script.credentials = "alice:s3cret-pass"
    with pytest.raises(imagestream.AuthenticationError) as caught:
        await webui.run()
    assert caught.value.hint is not None and "--key user:password" in caught.value.hint

    chunks = await webui.run(api_key="alice:s3cret-pass")
    assert len([c for c in chunks if c.kind == "image_final"]) == 1

    monkeypatch.setenv("A1111_API_AUTH", "alice:s3cret-pass")
    assert len(await webui.run()) > 1

    monkeypatch.delenv("A1111_API_AUTH")
    in_url = server.base_url.replace("http://", "http://alice:s3cret-pass@")
    assert len(await webui.run(base_url=in_url)) > 1
    # Every request of every run carried the login.
    assert all("Authorization" in headers for _, _, headers, _ in server.requests[2:])

    with pytest.raises(imagestream.AuthenticationError) as wrong:
        await webui.run(api_key="alice:wrong-password")
    assert "wrong-password" not in str(wrong.value)


async def test_a_missing_checkpoint_is_refused_before_sending(webui: Runner) -> None:
    with pytest.raises(imagestream.InvalidRequestError) as caught:
        await webui.run(model="nope")
    error = caught.value
    assert error.code == "checkpoint_not_found" and "no checkpoint 'nope'" in error.message
    assert error.hint is not None and CHECKPOINTS[0]["model_name"] in error.hint
    assert "/sdapi/v1/txt2img" not in webui.server.paths("POST")


async def test_an_unknown_sampler(webui: Runner) -> None:
    with pytest.raises(imagestream.InvalidRequestError) as caught:
        await webui.run(sampler="Euler z")
    assert (caught.value.status, caught.value.code) == (404, "sampler_not_found")
    assert "Sampler not found" in caught.value.message


async def test_out_of_memory_keeps_the_previews(webui: Runner) -> None:
    webui.server.script.oom_at_step = 3
    with pytest.raises(imagestream.ServerError) as caught:
        await webui.run(steps=6)
    error = caught.value
    assert (error.status, error.code) == (500, "out_of_memory")
    assert "the GPU ran out of memory: OutOfMemoryError: CUDA out of memory" in error.message
    assert error.hint is not None and "--medvram" in error.hint
    assert error.partial is not None and error.partial.preview_count == 2
    # Not sent twice: a generation is not retried.
    assert webui.server.paths("POST").count("/sdapi/v1/txt2img") == 1


async def test_leaving_early_interrupts_the_job(webui: Runner) -> None:
    server = webui.server
    chunks = webui.stream(steps=40)
    async with chunks:
        async for chunk in chunks:
            if isinstance(chunk, imagestream.ImagePreview) and chunk.step == 2:
                break
    assert "/sdapi/v1/interrupt" in server.paths("POST")
    await server.wait_for(lambda: server.jobs[0].outcome != "running")
    assert server.jobs[0].outcome == "interrupted"


async def test_cancelling_while_another_job_runs_interrupts_nothing(webui: Runner) -> None:
    server = webui.server
    foreign = asyncio.create_task(server.run_foreign(steps=200))
    await server.wait_for(lambda: server.state.job_count > 0)

    async def consume() -> None:
        await webui.run(steps=3)

    task = asyncio.create_task(consume())
    await server.wait_for(lambda: len(server.jobs) == 2)  # ours is waiting for the server
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "/sdapi/v1/interrupt" not in server.paths("POST")  # the running job is not ours
    server.state.interrupted = True  # end the other job
    await foreign


async def test_progress_requests_that_fail_do_not_end_the_run(webui: Runner) -> None:
    webui.server.script.flaky_progress = True
    chunks = await webui.run(steps=4)
    assert chunks[-1].kind == "image_final"
    assert [p.step for p in chunks if isinstance(p, imagestream.ImagePreview)] == [0, 1, 2, 3]
    assert webui.server.progress_requests > 8


async def test_progress_that_never_answers_stalls_the_run(webui: Runner) -> None:
    webui.server.script.progress_delay = 30.0  # every progress request with a picture hangs
    with pytest.raises(imagestream.APITimeoutError, match="no answer to the progress requests"):
        await webui.run(steps=4, timeout=0.3)


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        ({"size": "100x64"}, imagestream.ValidationError, "width must be a multiple of 8"),
        ({"output_format": "webp"}, imagestream.ConfigurationError, "output_format"),
        ({"partial_images": 2}, imagestream.ConfigurationError, "no partial_images"),
        ({"quality": "high"}, imagestream.ConfigurationError, "no quality levels"),
        ({"poll_interval": 0}, imagestream.ValidationError, "poll_interval must be between"),
        ({"params": {"steps": 3}}, imagestream.ValidationError, "params may not set steps"),
        (
            {"override_settings": {"sd_model_checkpoint": "x"}},
            imagestream.ValidationError,
            "with -m",
        ),
        (
            {"denoising_strength": 0.3},
            imagestream.ValidationError,
            "denoising_strength is for img2img",
        ),
        ({"image": "/nonexistent.png"}, imagestream.ConfigurationError, "image"),
        ({"cfg_scal": 7}, imagestream.ConfigurationError, "did you mean 'cfg_scale'"),
    ],
)
async def test_bad_settings_fail_before_anything_is_sent(
    webui: Runner, params: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        await webui.run(**params)
    assert webui.server.requests == []
