"""Runs against the fake web UI: polled previews and progress, finals with their seeds, races."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path
from typing import Any

import pytest

import imagestream
from imagestream.testing import chunks_of

from .conftest import CHECKPOINTS, FakeWebUI, Runner, make_png


async def test_txt2img_streams_each_new_picture_then_the_pngs(webui: Runner) -> None:
    server = webui.server
    chunks = await webui.run(
        "a castle", steps=6, seed=42, negative_prompt="fog", cfg_scale=5.5, sampler="Euler a"
    )

    previews = chunks_of(imagestream.ImagePreview, chunks)
    assert [(p.step, p.total_steps) for p in previews] == [
        (0, 6),
        (1, 6),
        (2, 6),
        (3, 6),
        (4, 6),
        (5, 6),
    ]
    assert [p.index for p in previews] == list(range(6))
    assert all(p.image.data.startswith(b"\xff\xd8\xff") for p in previews)
    assert len({p.image.data for p in previews}) == 6  # each picture once
    [final] = chunks_of(imagestream.ImageFinal, chunks)
    assert final.image.data.startswith(b"\x89PNG\r\n\x1a\n")
    assert (final.seed, final.width, final.height, final.mime_type) == (42, 64, 64, "image/png")
    assert "Seed: 42" in final.extra["infotext"]
    assert chunks[-1] is final

    [body] = [b for m, path, _, b in server.requests if path == "/sdapi/v1/txt2img"]
    assert body == {
        "prompt": "a castle", "negative_prompt": "fog", "steps": 6, "width": 64, "height": 64, "cfg_scale": 5.5,
        "seed": 42, "batch_size": 1, "n_iter": 1, "send_images": True, "save_images": False, "sampler_name": "Euler a",
    }  # fmt: skip
    polls = [path for path in server.paths("GET") if path.startswith("/sdapi/v1/progress")]
    assert polls[0] == "/sdapi/v1/progress?skip_current_image=true"  # the look before sending
    assert set(polls[1:]) == {"/sdapi/v1/progress?skip_current_image=false"}
    assert server.jobs[0].outcome == "done"


async def test_the_negative_prompt_as_an_option(webui: Runner) -> None:
    await webui.run(steps=1, options={"negative_prompt": "rain"})
    [body] = [b for _, path, _, b in webui.server.requests if path == "/sdapi/v1/txt2img"]
    assert body["negative_prompt"] == "rain"


async def test_a_batch_leaves_the_grid_out_and_reads_each_seed(webui: Runner) -> None:
    chunks = await webui.run(n=3, n_iter=2, steps=2)

    finals = chunks_of(imagestream.ImageFinal, chunks)
    assert [f.sample for f in finals] == [0, 1, 2, 3, 4, 5]
    assert [f.seed for f in finals] == [1234567 + i for i in range(6)]  # the server drew them
    assert all((f.width, f.height) == (64, 64) for f in finals)  # not the 128x64 grid
    # Previews of the second batch belong to its first image.
    samples = {p.sample for p in chunks_of(imagestream.ImagePreview, chunks)}
    assert samples == {0, 3}


async def test_previews_off_still_moves_a_determinate_bar(webui: Runner) -> None:
    chunks = await webui.run(steps=5, previews=False)

    assert chunks_of(imagestream.ImagePreview, chunks) == []
    progress = chunks_of(imagestream.Progress, chunks)
    assert progress and all(p.total_steps == 5 and p.fraction is None for p in progress)
    assert [p.step for p in progress if p.step is not None] == [0, 1, 2, 3, 4]
    assert all(
        "skip_current_image=true" in path
        for path in webui.server.paths("GET")
        if "progress" in path
    )


async def test_the_servers_live_preview_setting_decides_how_often(webui: Runner) -> None:
    webui.server.script.every = 3
    chunks = await webui.run(steps=7)

    assert [p.step for p in chunks_of(imagestream.ImagePreview, chunks)] == [2, 5]
    # The steps between pictures still move the bar.
    steps = [c.step for c in chunks_of(imagestream.Progress, chunks)]
    assert {0, 1, 3, 4, 6} <= set(steps)


async def test_polling_racing_the_blocking_call(webui: Runner) -> None:
    # Progress answers take long; the generation is quick and does not wait for them.
    server = webui.server
    server.script.lockstep = False
    server.script.progress_delay = 1.0
    started = time.monotonic()
    chunks = await webui.run(steps=3, poll_interval=0.01)
    took = time.monotonic() - started

    # The images did not wait for the slow progress answer in flight, and nothing came after them.
    assert took < 0.8
    assert chunks[-1].kind == "image_final"
    assert server.jobs[0].outcome == "done"


async def test_polls_run_while_the_generation_blocks(webui: Runner) -> None:
    server = webui.server
    server.script.lockstep = False
    server.script.delay = 0.03
    chunks = await webui.run(steps=10, poll_interval=0.02)

    previews = chunks_of(imagestream.ImagePreview, chunks)
    assert len(previews) >= 3  # seen while the POST was still waiting
    steps = [p.step for p in previews]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
    assert chunks[-1].kind == "image_final"


async def test_a_checkpoint_by_name_is_sent_as_its_title(webui: Runner) -> None:
    await webui.run(model="sd_xl_base_1.0")
    [body] = [b for _, path, _, b in webui.server.requests if path == "/sdapi/v1/txt2img"]
    assert body["override_settings"] == {"sd_model_checkpoint": CHECKPOINTS[1]["title"]}
    assert body["override_settings_restore_afterwards"] is True
    await webui.run(
        model="v1-5-pruned-emaonly.safetensors", override_settings={"CLIP_stop_at_last_layers": 2}
    )
    body = webui.server.requests[-1][3] if webui.server.requests[-1][3] else None
    sent = [b for _, path, _, b in webui.server.requests if path == "/sdapi/v1/txt2img"][-1]
    assert sent["override_settings"] == {
        "CLIP_stop_at_last_layers": 2,
        "sd_model_checkpoint": CHECKPOINTS[0]["title"],
    }


async def test_img2img_sends_the_picture(webui: Runner, tmp_path: Path) -> None:
    start = tmp_path / "start.png"
    start.write_bytes(make_png(64, 64, (1, 2, 3)))
    chunks = await webui.run(image=str(start), denoising_strength=0.4, params={"resize_mode": 1})

    assert len(chunks_of(imagestream.ImageFinal, chunks)) == 1
    [body] = [b for _, path, _, b in webui.server.requests if path == "/sdapi/v1/img2img"]
    assert base64.b64decode(body["init_images"][0]) == start.read_bytes()
    assert (body["denoising_strength"], body["resize_mode"]) == (0.4, 1)


async def test_someone_elses_job_is_not_this_runs(webui: Runner) -> None:
    server = webui.server
    foreign = asyncio.create_task(server.run_foreign(steps=15))
    await server.wait_for(lambda: server.state.job_count > 0)

    chunks = await webui.run(steps=3)
    await foreign

    previews = chunks_of(imagestream.ImagePreview, chunks)
    assert [(p.step, p.total_steps) for p in previews] == [(0, 3), (1, 3), (2, 3)]
    waiting = [
        c
        for c in chunks_of(imagestream.Progress, chunks)
        if c.message and "another job" in c.message
    ]
    assert len(waiting) == 1


def test_the_server_of_a1111_base_url(
    a1111_plugins: Any, webui_thread_server: FakeWebUI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("A1111_BASE_URL", webui_thread_server.base_url)
    result = imagestream.generate(
        "a castle", provider="a1111", steps=2, size="64x64", poll_interval=0.05
    )
    assert len(result.images) == 1 and len(result.previews) == 2
