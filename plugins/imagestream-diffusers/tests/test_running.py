"""How a run lives beside the event loop: worker thread, backpressure, cancelling, one device."""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import imagestream
from imagestream import ImageFinal, ImagePreview

SIZE = "64x64"
WORKER = "imagestream-diffusers"


def workers() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == WORKER]


async def no_workers_within(seconds: float) -> float:
    """Wait until no worker thread is left; how long that took."""
    start = time.monotonic()
    while workers():
        if time.monotonic() - start > seconds:
            raise AssertionError(f"a worker thread still runs after {seconds} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


@pytest.fixture
async def unet_calls(pipeline: imagestream.Pipeline, tiny_model: Path, loaded_unet: Any) -> Any:
    """Loads the tiny pipeline, then records each call of its UNet: (time, thread)."""
    async with pipeline.stream("warm up", model=str(tiny_model), steps=1, size=SIZE) as stream:
        async for _ in stream:
            pass
    unet = loaded_unet()
    calls: list[tuple[float, int]] = []

    def record(module: Any, args: Any) -> None:
        calls.append((time.monotonic(), threading.get_ident()))

    handle = unet.register_forward_pre_hook(record)
    await no_workers_within(10)
    yield calls
    handle.remove()


@pytest.fixture
def slow_steps(unet_calls: list[tuple[float, int]], loaded_unet: Any) -> Iterator[None]:
    """Every UNet call takes at least 20 ms more: steps long enough to watch."""
    unet = loaded_unet()
    handle = unet.register_forward_pre_hook(lambda module, args: time.sleep(0.02))
    yield
    handle.remove()


async def test_generation_runs_in_a_worker_thread(
    pipeline: imagestream.Pipeline, tiny_model: Path, unet_calls: list[tuple[float, int]]
) -> None:
    async with pipeline.stream("a fox", model=str(tiny_model), steps=3, size=SIZE) as stream:
        async for _ in stream:
            pass
    assert len(unet_calls) == 3
    assert {thread for _, thread in unet_calls} != {threading.get_ident()}
    await no_workers_within(10)


async def test_the_event_loop_keeps_ticking(
    pipeline: imagestream.Pipeline,
    tiny_model: Path,
    unet_calls: list[tuple[float, int]],
    slow_steps: None,
) -> None:
    loop = asyncio.get_running_loop()
    period = 0.005
    lateness: list[float] = []
    done = asyncio.Event()

    async def tick() -> None:
        while not done.is_set():
            start = loop.time()
            await asyncio.sleep(period)
            lateness.append(loop.time() - start - period)

    ticker = asyncio.create_task(tick())
    started = time.monotonic()
    async with pipeline.stream("a fox", model=str(tiny_model), steps=40, size=SIZE) as stream:
        async for _ in stream:
            pass
    took = time.monotonic() - started
    done.set()
    await ticker

    assert len(unet_calls) == 40
    # Were the pipeline on the loop, the ticker would miss the whole run (took).
    assert max(lateness) < min(0.3, took / 2), (max(lateness), took)
    assert statistics.median(lateness) < 0.02
    assert len(lateness) > took / (period + 0.02) / 2


async def test_closing_the_stream_stops_the_sampler_at_the_next_step(
    pipeline: imagestream.Pipeline,
    tiny_model: Path,
    unet_calls: list[tuple[float, int]],
    slow_steps: None,
    loaded_pipeline: Any,
) -> None:
    decodes: list[int] = []
    handle = loaded_pipeline().vae.decoder.register_forward_pre_hook(
        lambda module, args: decodes.append(1)
    )
    steps = 200
    try:
        async with pipeline.stream(
            "a fox", model=str(tiny_model), steps=steps, size=SIZE
        ) as stream:
            async for chunk in stream:
                if isinstance(chunk, ImagePreview) and chunk.step == 1:
                    break
        at_close = len(unet_calls)
        waited = await no_workers_within(10)
    finally:
        handle.remove()

    # At most the step that was running when the stream closed.
    assert len(unet_calls) <= at_close + 1, (at_close, len(unet_calls))
    assert len(unet_calls) < 10
    assert waited < 2
    assert decodes == []  # nor is the unfinished picture decoded


async def test_cancelling_the_task_stops_the_sampler(
    pipeline: imagestream.Pipeline,
    tiny_model: Path,
    unet_calls: list[tuple[float, int]],
    slow_steps: None,
) -> None:
    first = asyncio.Event()

    async def consume() -> None:
        async with pipeline.stream("a fox", model=str(tiny_model), steps=200, size=SIZE) as stream:
            async for chunk in stream:
                if isinstance(chunk, ImagePreview):
                    first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    at_cancel = len(unet_calls)

    await no_workers_within(10)
    assert len(unet_calls) <= at_cancel + 1
    assert len(unet_calls) < 20


async def test_a_reader_that_stops_reading_pauses_the_sampler(
    tiny_model: Path, pipeline_cache: Any, unet_calls: list[tuple[float, int]], slow_steps: None
) -> None:
    from imagestream_diffusers import DiffusersProvider

    pipeline = imagestream.Pipeline(DiffusersProvider(cache=pipeline_cache, queue_size=2))
    steps = 30
    seen = 0
    async with pipeline.stream("a fox", model=str(tiny_model), steps=steps, size=SIZE) as stream:
        async for chunk in stream:
            seen += 1
            if seen == 1:
                await asyncio.sleep(0.5)  # 25 steps' worth
                # The first preview, 2 waiting in the queue, 1 blocked handing its own over.
                assert len(unet_calls) <= 1 + 2 + 1, len(unet_calls)
            if isinstance(chunk, ImageFinal):
                break
    assert len(unet_calls) == steps
    assert seen == steps + 1


async def test_runs_on_one_device_take_turns(
    pipeline: imagestream.Pipeline, tiny_model: Path, unet_calls: list[tuple[float, int]]
) -> None:
    async def one(seed: int) -> list[Any]:
        async with pipeline.stream(
            "a fox", model=str(tiny_model), steps=6, size=SIZE, seed=seed
        ) as stream:
            return [chunk async for chunk in stream]

    first, second = await asyncio.gather(one(1), one(2))

    assert len(unet_calls) == 12
    threads = [thread for _, thread in unet_calls]
    # Two worker threads, one after the other: never interleaved.
    assert len(set(threads)) == 2
    assert threads == sorted(threads, key=threads.index)
    assert threads[:6] == [threads[0]] * 6
    assert len(first) == len(second) == 7
    await no_workers_within(10)


async def test_runs_on_one_device_take_turns_across_event_loops(
    tiny_model: Path, pipeline_cache: Any, unet_calls: list[tuple[float, int]]
) -> None:
    from imagestream_diffusers import DiffusersProvider

    def in_own_loop(seed: int) -> int:
        pipe = imagestream.Pipeline(DiffusersProvider(cache=pipeline_cache))
        result = pipe.generate("a fox", model=str(tiny_model), steps=5, size=SIZE, seed=seed)
        return len(result.previews)

    counts = await asyncio.gather(
        asyncio.to_thread(in_own_loop, 1), asyncio.to_thread(in_own_loop, 2)
    )

    assert counts == [5, 5]
    threads = [thread for _, thread in unet_calls]
    assert len(set(threads)) == 2
    assert threads == sorted(threads, key=threads.index)


async def test_a_slow_reader_gets_every_preview_in_order(
    tiny_model: Path, pipeline_cache: Any, unet_calls: list[tuple[float, int]]
) -> None:
    from imagestream_diffusers import DiffusersProvider

    # Steps far faster than the reader: previews pile up (up to 3) and are
    # read several at a time, after a single wake-up of the loop.
    pipeline = imagestream.Pipeline(
        DiffusersProvider(cache=pipeline_cache, queue_size=3),
        middleware=[imagestream.Validation()],
    )
    steps = 16
    chunks: list[Any] = []
    async with pipeline.stream("a fox", model=str(tiny_model), steps=steps, size=SIZE) as stream:
        async for chunk in stream:
            chunks.append(chunk)
            # Never more than the read ones, 3 waiting and 1 being handed over.
            assert len(unet_calls) <= len(chunks) + 3 + 1, (len(unet_calls), len(chunks))
            await asyncio.sleep(0.03)

    shown = [chunk for chunk in chunks if isinstance(chunk, ImagePreview)]
    assert [preview.step for preview in shown] == list(range(steps))
    assert [preview.index for preview in shown] == list(range(steps))
    sigmas = [preview.sigma for preview in shown]
    assert sigmas == sorted(sigmas, reverse=True), sigmas
    assert isinstance(chunks[-1], ImageFinal) and len(chunks) == steps + 1


async def test_closing_the_stream_while_previews_wait_unread_stops_the_sampler(
    tiny_model: Path,
    pipeline_cache: Any,
    unet_calls: list[tuple[float, int]],
    slow_steps: None,
) -> None:
    from imagestream_diffusers import DiffusersProvider

    pipeline = imagestream.Pipeline(DiffusersProvider(cache=pipeline_cache, queue_size=3))
    async with pipeline.stream("a fox", model=str(tiny_model), steps=200, size=SIZE) as stream:
        async for _ in stream:
            await asyncio.sleep(0.4)  # the queue fills and the worker waits for room
            break
    at_close = len(unet_calls)
    await no_workers_within(10)

    assert at_close <= 1 + 3 + 1, at_close
    assert len(unet_calls) <= at_close + 1  # the waiting preview is dropped, no step follows


@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.parametrize("preview", ["latent", "none"])
async def test_a_loop_closed_under_a_running_stream_stops_the_sampler(
    tiny_model: Path,
    pipeline_cache: Any,
    unet_calls: list[tuple[float, int]],
    slow_steps: None,
    preview: str,
) -> None:
    from imagestream_diffusers import DiffusersProvider

    def abandon() -> int:
        # The stream is never closed: only its loop's closing can tell the worker.
        pipeline = imagestream.Pipeline(DiffusersProvider(cache=pipeline_cache))
        stream = pipeline.stream(
            "a fox", model=str(tiny_model), steps=200, size=SIZE, preview=preview
        )

        async def start_reading() -> None:
            reading = asyncio.ensure_future(stream.__anext__())
            deadline = time.monotonic() + 30
            while len(unet_calls) < 3:
                if time.monotonic() > deadline:
                    raise AssertionError("the sampler did not start")
                await asyncio.sleep(0.005)
            reading.cancel()  # not awaited: the loop stops and closes now

        loop = asyncio.new_event_loop()
        loop.run_until_complete(start_reading())
        loop.close()
        return len(unet_calls)

    at_close = await asyncio.to_thread(abandon)
    await no_workers_within(10)

    # At most the step that was running: each step first looks at the loop.
    assert len(unet_calls) <= at_close + 1, (at_close, len(unet_calls))
