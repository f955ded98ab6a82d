"""What goes wrong: refused workflows, failed runs, interrupts, cancellation, no server."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import pytest

import imagestream
from imagestream.testing import chunks_of
from imagestream_comfyui import ComfyUIExecutionError, ComfyUINodeError

from .conftest import CHECKPOINTS, Runner


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _drain(chunks: Any) -> None:
    async with chunks:
        async for _ in chunks:
            pass


async def test_a_server_that_is_not_running(comfy_plugins: Any) -> None:
    port = _free_port()
    chunks = imagestream.stream("a castle", provider="comfyui", base_url=f"http://127.0.0.1:{port}")
    with pytest.raises(imagestream.APIConnectionError) as caught:
        await _drain(chunks)
    error = caught.value
    assert f"is ComfyUI running at http://127.0.0.1:{port}?" in error.message
    assert (
        error.hint is not None and "--base-url" in error.hint and "COMFYUI_BASE_URL" in error.hint
    )


async def test_a_refused_node_is_named(comfy: Runner) -> None:
    with pytest.raises(ComfyUINodeError) as caught:
        await comfy.run(sampler="euler_nonexistent")
    error = caught.value
    assert isinstance(error, imagestream.InvalidRequestError)
    assert (error.node_id, error.class_type, error.status, error.code) == (
        "sampler",
        "KSampler",
        400,
        "node_error",
    )
    assert "node sampler (KSampler) refused the workflow" in error.message
    assert "sampler_name: 'euler_nonexistent' not in" in error.message
    assert error.errors[0]["type"] == "value_not_in_list"
    assert comfy.server.finished == {}  # nothing ran


async def test_a_missing_checkpoint_is_refused_before_queueing(comfy: Runner) -> None:
    with pytest.raises(imagestream.InvalidRequestError) as caught:
        await comfy.run(model="nope.safetensors")
    error = caught.value
    assert error.code == "checkpoint_not_found"
    assert "no checkpoint 'nope.safetensors'" in error.message
    assert error.hint is not None and CHECKPOINTS[0] in error.hint
    assert comfy.server.prompts == []


async def test_a_checkpoint_refused_by_the_server_says_so(comfy: Runner, tmp_path: Path) -> None:
    # A workflow naming its checkpoint itself: the server's node_errors tell.
    workflow = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "gone.safetensors"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
    }
    path = tmp_path / "w.json"
    path.write_text(json.dumps(workflow))
    with pytest.raises(ComfyUINodeError) as caught:
        await comfy.run(workflow=str(path))
    assert (caught.value.code, caught.value.node_id) == ("checkpoint_not_found", "1")


async def test_a_server_without_checkpoints(comfy: Runner) -> None:
    comfy.server.checkpoints = []
    with pytest.raises(imagestream.InvalidRequestError, match="no checkpoint") as caught:
        await comfy.run()
    assert caught.value.hint is not None and "models/checkpoints" in caught.value.hint


async def test_out_of_memory_keeps_the_previews(comfy: Runner) -> None:
    comfy.server.script.oom_at_step = 3
    with pytest.raises(ComfyUIExecutionError) as caught:
        await comfy.run(steps=6)
    error = caught.value
    assert isinstance(error, imagestream.ServerError)
    assert error.code == "out_of_memory"
    assert "ran out of memory in node sampler (KSampler)" in error.message
    assert error.exception_type == "torch.OutOfMemoryError"
    assert error.hint is not None and "batch" in error.hint
    assert error.partial is not None and error.partial.preview_count == 2
    # The run ended on the server: nothing to interrupt.
    assert not any(path.startswith("/interrupt") for _, path, _ in comfy.server.requests)


async def test_an_interrupt_from_elsewhere(comfy: Runner) -> None:
    comfy.server.script.interrupt_at_step = 2
    with pytest.raises(imagestream.StreamInterruptedError) as caught:
        await comfy.run(steps=5)
    assert caught.value.code == "interrupted"
    assert "interrupted on the server at node sampler (KSampler)" in caught.value.message


async def test_the_socket_dropping_mid_run(comfy: Runner) -> None:
    comfy.server.script.drop_at_step = 3
    with pytest.raises(imagestream.StreamInterruptedError) as caught:
        await comfy.run(steps=5)
    assert caught.value.partial is not None and caught.value.partial.preview_count == 2


async def test_leaving_early_interrupts_the_prompt_and_closes_the_socket(comfy: Runner) -> None:
    server = comfy.server
    server.script.delay = 0.01
    chunks = comfy.stream(steps=50)
    async with chunks:
        async for chunk in chunks:
            if isinstance(chunk, imagestream.ImagePreview) and chunk.step == 2:
                break
    await server.wait_for(lambda: bool(server.finished))
    [(prompt_id, how)] = server.finished.items()
    assert how == "interrupted"
    posted = {path: body for method, path, body in server.requests if method == "POST"}
    assert posted["/interrupt"] == {"prompt_id": prompt_id}
    assert posted["/queue"] == {"delete": [prompt_id]}
    await server.wait_for(lambda: not server.clients)


async def test_cancelling_a_queued_run_takes_it_off_the_queue(comfy: Runner) -> None:
    server = comfy.server
    server.script.hold = asyncio.Event()  # the server is busy with something else

    async def consume() -> None:
        await comfy.run(steps=3)

    task = asyncio.create_task(consume())
    await server.wait_for(lambda: bool(server.queue))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [prompt_id] = [item for item in server.finished]
    assert server.finished[prompt_id] == "deleted"
    assert server.queue == []
    server.script.hold.set()


async def test_a_workflow_without_outputs(comfy: Runner, tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    path.write_text(
        json.dumps(
            {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CHECKPOINTS[0]}}}
        )
    )
    with pytest.raises(imagestream.InvalidRequestError, match="Prompt has no outputs") as caught:
        await comfy.run(workflow=str(path))
    assert caught.value.code == "prompt_no_outputs"


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        ({"size": "60x64"}, imagestream.ValidationError, "width must be a multiple of 8"),
        ({"size": "8x64"}, imagestream.ValidationError, "width must be between 16"),
        ({"output_format": "jpeg"}, imagestream.ConfigurationError, "output_format"),
        ({"quality": "high"}, imagestream.ConfigurationError, "no quality levels"),
        ({"cfg": 500}, imagestream.ValidationError, "cfg must be between"),
        ({"sampeler": "euler"}, imagestream.ConfigurationError, "did you mean 'sampler'"),
        ({"values": {"prompt": "x"}}, imagestream.ValidationError, "values may not set"),
        (
            {"model": "a.safetensors", "checkpoint": "b.safetensors"},
            imagestream.ValidationError,
            "disagree",
        ),
        ({"workflow": "/nonexistent/w.json"}, imagestream.ConfigurationError, "does not exist"),
    ],
)
async def test_bad_settings_fail_before_anything_is_sent(
    comfy: Runner, params: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        await comfy.run(**params)
    assert comfy.server.requests == []


async def test_workflow_files_that_are_not_api_format(comfy: Runner, tmp_path: Path) -> None:
    ui = tmp_path / "ui.json"
    ui.write_text(json.dumps({"nodes": [], "links": [], "version": 0.4}))
    with pytest.raises(imagestream.ConfigurationError, match="UI's format") as caught:
        await comfy.run(workflow=str(ui))
    assert caught.value.hint is not None and "Save (API Format)" in caught.value.hint
    broken = tmp_path / "broken.json"
    broken.write_text("{oops")
    with pytest.raises(imagestream.ConfigurationError, match="not JSON"):
        await comfy.run(workflow=str(broken))
    unknown = tmp_path / "unknown.json"
    unknown.write_text(
        json.dumps({"1": {"class_type": "CLIPTextEncode", "inputs": {"text": "{{promt}}"}}})
    )
    with pytest.raises(imagestream.ConfigurationError, match=r"\{\{promt\}\}, which has no value"):
        await comfy.run(workflow=str(unknown))
    assert comfy.server.requests == []


async def test_the_run_is_seen_through_to_the_end(comfy: Runner) -> None:
    chunks = await comfy.run(steps=2)
    assert len(chunks_of(imagestream.ImageFinal, chunks)) == 1
    # A run that ended well cancels nothing.
    assert not any(path in ("/interrupt", "/queue") for _, path, _ in comfy.server.requests)
