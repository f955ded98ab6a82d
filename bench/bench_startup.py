"""Start-up time: ``imagestream providers``, ``plugins`` and ``--help`` against ``python -c pass``.

Run with every plugin of the repository installed (``nox -s bench`` does).
Each command runs in a fresh interpreter (cold: nothing imported, but the
bytecode compiled, as an installed package has it: ``PYTHONDONTWRITEBYTECODE``
is dropped for the runs, and one warm-up run of each writes it). Commands run
interleaved, in shuffled order each round; medians, min-max, the ratio to a
bare interpreter and the load average are printed, and each command with a
goal (issue 13) is marked PASS or MISS:

* ``imagestream providers`` and ``imagestream plugins``: at most 0.12 s;
* ``imagestream --help``: under 0.25 s.

``--disable a1111,comfyui`` adds rows for ``providers`` and ``plugins`` with
those plugins disabled (``IMAGESTREAM_DISABLE_PLUGINS``), to see what they cost.

    python bench/bench_startup.py [--quick] [--rounds N] [--disable NAMES]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import time

GOALS = {
    "imagestream providers": 0.12,
    "imagestream plugins": 0.12,
    "imagestream --help": 0.25,
}
"""Wall time goals in seconds (issue 13); ``--help``'s is a bound, not reached."""


def runtime(argv: list[str], env: dict[str, str]) -> float:
    """Wall time of one run of ``argv``, which must succeed."""
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.decode()[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="7 rounds instead of 25")
    parser.add_argument("--rounds", type=int, help="rounds of every command")
    parser.add_argument("--disable", default="", help="comma-separated plugins for extra rows")
    args = parser.parse_args()
    rounds = args.rounds or (7 if args.quick else 25)
    env = {
        key: value
        for key, value in os.environ.items()
        if key != "PYTHONDONTWRITEBYTECODE" and not key.startswith("IMAGESTREAM_")
    }
    py = sys.executable
    cases: dict[str, tuple[list[str], dict[str, str]]] = {
        "python -c pass": ([py, "-c", "pass"], env),
        "python -c 'import imagestream'": ([py, "-c", "import imagestream"], env),
        "imagestream --help": ([py, "-m", "imagestream", "--help"], env),
        "imagestream plugins": ([py, "-m", "imagestream", "plugins"], env),
        "imagestream providers": ([py, "-m", "imagestream", "providers"], env),
    }
    if args.disable:
        without = {**env, "IMAGESTREAM_DISABLE_PLUGINS": args.disable}
        for command in ("plugins", "providers"):
            cases[f"imagestream {command}, without {args.disable}"] = (
                [py, "-m", "imagestream", command],
                without,
            )
    llm = shutil.which("llm")
    if llm:
        cases["llm --help (peer)"] = ([llm, "--help"], env)
    for argv, case_env in cases.values():  # warm-up: bytecode written, caches filled
        runtime(argv, case_env)
    times: dict[str, list[float]] = {name: [] for name in cases}
    order = list(cases)
    for _ in range(rounds):
        random.shuffle(order)
        for name in order:
            times[name].append(runtime(*cases[name]))

    base = statistics.median(times["python -c pass"])
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"start-up, cold, {rounds} rounds interleaved, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs, load average {load}"
    )
    width = max(len(name) for name in cases)
    print(f"{'command':{width}} {'median':>9} {'min-max':>15} {'x python':>8}  goal")
    for name, seconds in times.items():
        median = statistics.median(seconds)
        spread = f"{min(seconds) * 1000:.0f}-{max(seconds) * 1000:.0f} ms"
        goal = GOALS.get(name)
        verdict = ""
        if goal is not None:
            verdict = f"{goal * 1000:.0f} ms {'PASS' if median <= goal else 'MISS'}"
        print(
            f"{name:{width}} {median * 1000:6.0f} ms {spread:>15} {median / base:8.1f}  {verdict}"
        )


if __name__ == "__main__":
    main()
