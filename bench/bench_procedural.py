"""The procedural provider in process: 512x512 and 2048x2048, 20 steps, every chunk consumed.

Each case is one ``imagestream.stream()`` run through the real pipeline (the
installed plugins, the built-in middleware) with every preview and the final
read to the end, on wall time. Cases run interleaved, in shuffled order each
round, after one warm-up round; medians, min-max and the load average are
printed, and each row is checked against the goal of issue 13 (512x512: at
most 40 ms, 2048x2048: at most 0.5 s).

Two prompts: a simple one, drawn as asked (shapes on a plain background), and
one drawn as abstract art, whose picture costs more to draw at any size.

    python bench/bench_procedural.py [--quick] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time

import imagestream

GOALS = {512: 0.040, 2048: 0.5}
"""Wall time goals in seconds, by side (issue 13)."""

PROMPTS = {"simple": "a simple red circle", "abstract": "a lighthouse at dusk"}
STEPS = 20
SEED = 7


async def run_once(side: int, prompt: str) -> tuple[float, int]:
    """Wall time of one whole run, and the number of chunks read."""
    started = time.perf_counter()
    count = 0
    async with imagestream.stream(
        prompt, provider="procedural", size=f"{side}x{side}", steps=STEPS, seed=SEED
    ) as chunks:
        async for _chunk in chunks:
            count += 1
    return time.perf_counter() - started, count


async def main_async(rounds: int) -> dict[tuple[int, str], list[float]]:
    cases = [(side, name) for side in GOALS for name in PROMPTS]
    times: dict[tuple[int, str], list[float]] = {case: [] for case in cases}
    for case in cases:  # warm-up: plugins loaded, Pillow's codecs initialised
        await run_once(case[0], PROMPTS[case[1]])
    order = list(cases)
    for _ in range(rounds):
        random.shuffle(order)
        for side, name in order:
            seconds, count = await run_once(side, PROMPTS[name])
            assert count == STEPS + 3, count  # text, 20 previews, final, usage
            times[side, name].append(seconds)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="5 rounds instead of 21")
    parser.add_argument("--rounds", type=int, help="rounds of every case")
    args = parser.parse_args()
    rounds = args.rounds or (5 if args.quick else 21)
    times = asyncio.run(main_async(rounds))
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"procedural provider, {STEPS} steps, in process, {rounds} rounds, "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load}"
    )
    print(f"{'case':28} {'median':>9} {'min-max':>17} {'goal':>8}")
    for (side, name), seconds in times.items():
        median = statistics.median(seconds)
        verdict = "PASS" if median <= GOALS[side] else "MISS"
        spread = f"{min(seconds) * 1000:.0f}-{max(seconds) * 1000:.0f} ms"
        print(
            f"{side}x{side} {name:18} {median * 1000:6.0f} ms {spread:>17} "
            f"{GOALS[side] * 1000:5.0f} ms {verdict}"
        )


if __name__ == "__main__":
    main()
