"""Runs against the fake server: progress, previews, finals, other clients, faults on the wire."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import imagestream
from imagestream.testing import chunks_of

from .conftest import CHECKPOINTS, FakeComfyUI, Runner


def _kinds(chunks: list[Any]) -> list[str]:
    return [chunk.kind for chunk in chunks]


async def test_a_run_streams_progress_previews_and_the_saved_png(comfy: Runner) -> None:
    server = comfy.server
    chunks = await comfy.run("a castle", steps=4, seed=42, negative_prompt="fog")

    previews = chunks_of(imagestream.ImagePreview, chunks)
    assert [(p.step, p.total_steps, p.index) for p in previews] == [
        (0, 4, 0),
        (1, 4, 1),
        (2, 4, 2),
        (3, 4, 3),
    ]
    assert all(p.image.data.startswith(b"\xff\xd8\xff") for p in previews)
    assert all(p.mime_type == "image/jpeg" and p.extra["node"] == "sampler" for p in previews)
    steps = [
        (c.step, c.total_steps)
        for c in chunks_of(imagestream.Progress, chunks)
        if c.step is not None
    ]
    assert steps == [(0, 4), (1, 4), (2, 4), (3, 4)]
    [final] = chunks_of(imagestream.ImageFinal, chunks)
    assert final.image.data.startswith(b"\x89PNG\r\n\x1a\n")
    assert (final.mime_type, final.width, final.height, final.seed) == ("image/png", 64, 64, 42)
    assert final.extra["type"] == "output" and final.extra["node"] == "save"
    assert _kinds(chunks)[-1] == "image_final"

    # What was sent: the built-in workflow, filled in, under the WebSocket's client id.
    [body] = server.prompts
    workflow = body["prompt"]
    assert workflow["checkpoint"]["inputs"]["ckpt_name"] == CHECKPOINTS[0]  # the server's first
    assert workflow["sampler"]["inputs"] | {"model": None, "positive": None, "negative": None, "latent_image": None} == {
        "seed": 42, "steps": 4, "cfg": 8.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0,
        "model": None, "positive": None, "negative": None, "latent_image": None,
    }  # fmt: skip
    assert workflow["positive"]["inputs"]["text"] == "a castle"
    assert workflow["negative"]["inputs"]["text"] == "fog"
    assert workflow["latent"]["inputs"] == {"width": 64, "height": 64, "batch_size": 1}
    ws_paths = [path for method, path, _ in server.requests if path.startswith("/ws")]
    assert ws_paths == [f"/ws?clientId={body['client_id']}"]
    # The socket was opened before the prompt was queued, and asked for metadata previews.
    order = [path.split("?")[0] for _, path, _ in server.requests]
    assert order.index("/ws") < order.index("/prompt")
    assert server.finished == {server.history.popitem()[0]: "success"}


async def test_the_negative_prompt_as_an_option(comfy: Runner) -> None:
    await comfy.run(negative_prompt="fog")  # the field
    # The option, as the command line gives it (-o negative_prompt rain):
    await comfy.run(options={"negative_prompt": "rain"})
    texts = [body["prompt"]["negative"]["inputs"]["text"] for body in comfy.server.prompts]
    assert texts == ["fog", "rain"]


async def test_a_batch_gives_one_final_per_image_and_the_chosen_checkpoint(comfy: Runner) -> None:
    chunks = await comfy.run(
        n=3, model=CHECKPOINTS[1], cfg=5.5, sampler="dpmpp_2m", scheduler="karras"
    )

    finals = chunks_of(imagestream.ImageFinal, chunks)
    assert [f.sample for f in finals] == [0, 1, 2]
    assert len({f.image.data for f in finals}) == 3
    workflow = comfy.server.prompts[0]["prompt"]
    assert workflow["checkpoint"]["inputs"]["ckpt_name"] == CHECKPOINTS[1]
    assert workflow["latent"]["inputs"]["batch_size"] == 3
    assert (workflow["sampler"]["inputs"]["cfg"], workflow["sampler"]["inputs"]["scheduler"]) == (
        5.5,
        "karras",
    )


@pytest.mark.parametrize("previews", ["auto", "legacy", "png"])
async def test_each_preview_frame_format(comfy: Runner, previews: str) -> None:
    comfy.server.script.previews = previews
    chunks = await comfy.run(steps=3)

    found = chunks_of(imagestream.ImagePreview, chunks)
    assert [p.step for p in found] == [0, 1, 2]
    magic = b"\x89PNG" if previews == "png" else b"\xff\xd8\xff"
    assert all(p.image.data.startswith(magic) for p in found)


async def test_messages_about_other_prompts_are_ignored_even_split_into_frames(
    comfy: Runner,
) -> None:
    clean = await comfy.run(steps=5, seed=1)
    comfy.server.script.noise = True
    comfy.server.script.split = True
    noisy = await comfy.run(steps=5, seed=1)

    # The same chunks, whatever else the socket carried and however it was cut.
    assert _kinds(noisy) == _kinds(clean)
    previews = chunks_of(imagestream.ImagePreview, noisy)
    assert [p.step for p in previews] == [0, 1, 2, 3, 4]
    # The other client's previews (pure red) never came through.
    assert all(
        p.image.data == c.image.data
        for p, c in zip(previews, chunks_of(imagestream.ImagePreview, clean), strict=True)
    )
    assert len(chunks_of(imagestream.ImageFinal, noisy)) == 1


async def test_without_the_preview_method_the_bar_still_moves(comfy: Runner) -> None:
    comfy.server.script.previews = "none"
    chunks = await comfy.run(steps=6)

    assert chunks_of(imagestream.ImagePreview, chunks) == []
    progress = [c for c in chunks_of(imagestream.Progress, chunks) if c.step is not None]
    assert [c.progress for c in progress][-1] == 1.0
    assert len(chunks_of(imagestream.ImageFinal, chunks)) == 1


async def test_partial_images_keeps_previews_spread_over_the_steps(comfy: Runner) -> None:
    chunks = await comfy.run(steps=8, partial_images=2)
    assert [p.step for p in chunks_of(imagestream.ImagePreview, chunks)] == [3, 7]
    chunks = await comfy.run(steps=4, partial_images=0)
    assert chunks_of(imagestream.ImagePreview, chunks) == []


async def test_a_workflow_answered_from_the_cache_reads_the_history(comfy: Runner) -> None:
    comfy.server.script.cached = True
    chunks = await comfy.run(steps=3)

    [final] = chunks_of(imagestream.ImageFinal, chunks)
    assert final.extra["filename"].startswith("cached_")
    assert any(path.startswith("/history/") for _, path, _ in comfy.server.requests)


async def test_a_workflow_file_with_placeholders(comfy: Runner, tmp_path: Path) -> None:
    workflow = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "{{checkpoint}}"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "masterpiece, {{prompt}}, {{style}}", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "{{negative_prompt}}", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": "{{width}}", "height": "{{ height }}", "batch_size": 1}},
        "5": {"class_type": "KSampler", "inputs": {
            "seed": "{{seed}}", "steps": "{{steps}}", "cfg": 7, "sampler_name": "euler_ancestral", "scheduler": "karras",
            "denoise": 1, "model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0]}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "PreviewImage", "inputs": {"images": ["6", 0]}},
        "_meta": {"class_type": "VAEDecode", "inputs": {}},
    }  # fmt: skip
    del workflow["_meta"]
    path = tmp_path / "castle.json"
    path.write_text(json.dumps(workflow))

    chunks = await comfy.run(
        "a castle", workflow=str(path), values={"style": "ink"}, steps=3, seed=9, size="32x48"
    )

    sent = comfy.server.prompts[0]["prompt"]
    assert sent["2"]["inputs"]["text"] == "masterpiece, a castle, ink"
    assert sent["4"]["inputs"] == {"width": 32, "height": 48, "batch_size": 1}
    assert (sent["5"]["inputs"]["seed"], sent["5"]["inputs"]["steps"]) == (9, 3)
    assert sent["1"]["inputs"]["ckpt_name"] == CHECKPOINTS[0]
    # Only previewed, not saved: the previewed image is the result.
    [final] = chunks_of(imagestream.ImageFinal, chunks)
    assert (final.extra["type"], final.width, final.height, final.seed) == ("temp", 32, 48, 9)
    assert len(chunks_of(imagestream.ImagePreview, chunks)) == 3


async def test_two_runs_at_once_share_the_server(comfy: Runner) -> None:
    import asyncio

    comfy.server.script.delay = 0.002
    first, second = await asyncio.gather(comfy.run(steps=5, seed=1), comfy.run(steps=3, seed=2))

    assert [p.step for p in chunks_of(imagestream.ImagePreview, first)] == [0, 1, 2, 3, 4]
    assert [p.step for p in chunks_of(imagestream.ImagePreview, second)] == [0, 1, 2]
    assert chunks_of(imagestream.ImageFinal, first)[0].seed == 1
    assert chunks_of(imagestream.ImageFinal, second)[0].seed == 2
    # The one that waited heard it was queued, with the step count it will have.
    queued = [
        c
        for c in chunks_of(imagestream.Progress, first + second)
        if c.message and "queued" in c.message
    ]
    assert queued and all(c.total_steps in (3, 5) for c in queued)


def test_the_server_of_comfyui_base_url(
    comfy_plugins: Any, comfy_thread_server: FakeComfyUI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMFYUI_BASE_URL", comfy_thread_server.base_url + "/")
    result = imagestream.generate("a castle", provider="comfyui", steps=2, size="16x16")
    assert len(result.images) == 1 and len(result.previews) == 2
    assert result.images[0].image.data.startswith(b"\x89PNG")
