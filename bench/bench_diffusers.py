"""What previews cost imagestream-diffusers per sampler step: previews none vs latent vs vae.

Runs the tiny random-weights Stable Diffusion pipeline
(``imagestream_diffusers.tiny``: real UNet, VAE, text encoder and scheduler
classes, a few hundred kilobytes) through the provider the way users do
(``imagestream.Pipeline``, the worker thread, the queue to the event loop),
on the CPU with torch on one thread (a 2-core machine shared with the event
loop and the JPEG encoder gives unstable numbers otherwise).

Two measures of what previews add to a step. CPU: the process's CPU time
over a whole run (every thread: the sampler's, the event loop's receiving
the chunks), minus that of a run without previews, per step, against the
CPU a step takes without previews (the sampler thread's between two UNet
calls); other programs on the machine barely change it. Wall: the median
interval between two UNet calls, which includes everything the step
callback does before the sampler goes on; other programs change it, so the
machine's load is printed. Runs of the three modes are interleaved, round
after round; tables show medians over runs with the min–max. The target
is judged on CPU. Two sizes: 64x64 (an 8x8 latent, the tests' size) and 512x512
(a 64x64 latent and a 256-pixel preview, SD 1.5's sizes).

The tiny UNet is thousands of times cheaper than a real one, so the ratio
here is a worst case: the same milliseconds added to a real model's step
(tens of milliseconds on a GPU, seconds on a CPU) are a far smaller share.
Target: latent previews add under 5% per step. It always exits 0: it is a
report, not a test.

    python bench/bench_diffusers.py [--quick] [--steps N] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs

TARGET_LATENT = 0.05
MODES = ("none", "latent", "vae")
SIZES = ("64x64", "512x512")


def _imports() -> tuple[Any, Any, Any, Any]:
    try:
        import torch

        import imagestream
        from imagestream_diffusers import DiffusersProvider, PipelineCache
        from imagestream_diffusers.tiny import save_tiny_pipeline
    except ImportError as exc:  # pragma: no cover - a report, not a test
        print(f"SKIP: imagestream-diffusers and torch are needed ({exc})")
        raise SystemExit(0) from None
    torch.set_num_threads(1)
    return imagestream, DiffusersProvider, PipelineCache, save_tiny_pipeline


async def _one_run(
    pipeline: Any, model: str, size: str, mode: str, steps: int, calls: list[tuple[float, float]]
) -> Run:
    """One run, with the UNet's calls recorded in ``calls``."""
    calls.clear()
    previews = 0
    started = time.perf_counter()
    cpu = time.process_time()
    async with pipeline.stream(
        "a lighthouse at dusk", model=model, size=size, steps=steps, seed=7, preview=mode
    ) as stream:
        async for chunk in stream:
            previews += type(chunk).__name__ == "ImagePreview"
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - started
    walls = [b[0] - a[0] for a, b in itertools.pairwise(calls)] or [0.0]
    step_cpus = [b[1] - a[1] for a, b in itertools.pairwise(calls)] or [0.0]
    return Run(statistics.median(walls), statistics.median(step_cpus), wall, cpu, previews)


@attrs.frozen
class Run:
    """What one run measured, in seconds."""

    step_wall: float  # median interval between two UNet calls
    step_cpu: float  # the same in the worker thread's CPU time
    wall: float  # the whole run
    cpu: float  # the process's CPU time over the whole run, every thread
    previews: int


def _spread(values: list[float], scale: float = 1000.0) -> str:
    middle = statistics.median(values) * scale
    return f"{middle:.2f} ({min(values) * scale:.2f}–{max(values) * scale:.2f})"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--steps", type=int, default=20, help="sampler steps per run")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds")
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 9)
    steps = args.steps
    imagestream, DiffusersProvider, PipelineCache, save_tiny_pipeline = _imports()

    with tempfile.TemporaryDirectory() as scratch:
        folder = save_tiny_pipeline(Path(scratch) / "tiny-sd").resolve()
        model = str(folder)
        cache = PipelineCache()
        pipeline = imagestream.Pipeline(DiffusersProvider(cache=cache))
        calls: list[tuple[float, float]] = []
        for mode in MODES:  # load, and warm every path up
            await _one_run(pipeline, model, "64x64", mode, 2, calls)
        loaded = cache.find(model)
        loaded.pipe.unet.register_forward_pre_hook(
            lambda module, inputs: calls.append((time.perf_counter(), time.thread_time()))
        )

        load = os.getloadavg()[0]
        print(
            "imagestream-diffusers, what previews cost per sampler step: tiny SD pipeline on "
            f"the CPU, 1 torch thread, {steps} steps, {rounds} interleaved rounds, "
            f"Python {sys.version.split()[0]}, load average {load:.1f} on {os.cpu_count()} cores"
        )
        verdicts = []
        for size in SIZES:
            runs: dict[str, list[Run]] = {mode: [] for mode in MODES}
            for number in range(rounds):
                order = MODES[number % 3 :] + MODES[: number % 3]
                for mode in order:
                    runs[mode].append(await _one_run(pipeline, model, size, mode, steps, calls))
            step_cpu = statistics.median(run.step_cpu for run in runs["none"])
            step_wall = statistics.median(run.step_wall for run in runs["none"])
            base_cpu = statistics.median(run.cpu for run in runs["none"])
            print(f"\n{size}: a step without previews takes {step_cpu * 1000:.2f} ms of CPU")
            print(
                "| previews | CPU per run, ms | added CPU per step | wall per step, ms "
                "| added wall per step | run wall, ms | previews |"
            )
            print("|---|---|---|---|---|---|---|")
            for mode in MODES:
                cpu_runs = [run.cpu for run in runs[mode]]
                wall_steps = [run.step_wall for run in runs[mode]]
                added_cpu = (statistics.median(cpu_runs) - base_cpu) / steps
                added_wall = statistics.median(wall_steps) - step_wall
                cells = ["—", "—"]
                if mode != "none":
                    cells = [
                        f"{added_cpu * 1000:+.2f} ms ({added_cpu / step_cpu:+.1%})",
                        f"{added_wall * 1000:+.2f} ms ({added_wall / step_wall:+.1%})",
                    ]
                print(
                    f"| {mode} | {_spread(cpu_runs)} | {cells[0]} | {_spread(wall_steps)} "
                    f"| {cells[1]} | {_spread([run.wall for run in runs[mode]])} "
                    f"| {runs[mode][-1].previews} |"
                )
                if mode == "latent":
                    verdicts.append((size, added_cpu / step_cpu, added_wall / step_wall))
        print()
        for size, cpu, wall in verdicts:
            verdict = "PASS" if cpu < TARGET_LATENT else "MISS"
            print(
                f"target: latent previews add < {TARGET_LATENT:.0%} CPU per step at {size}: "
                f"{cpu:+.1%} {verdict} (wall {wall:+.1%})"
            )
        cache.clear()


if __name__ == "__main__":
    asyncio.run(main())
