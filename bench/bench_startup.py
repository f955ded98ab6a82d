"""Start-up time: ``imagestream --help`` and friends against ``python -c pass``.

Run with every plugin of the repository installed (``nox -s bench`` does).
Each command runs in a fresh interpreter, repeatedly; medians are printed with
the ratio to a bare interpreter start. Target: ``imagestream --help`` under 0.25 s.

    python bench/bench_startup.py [--quick]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time

TARGET_HELP_S = 0.25


def median_runtime(argv: list[str], runs: int) -> float:
    """Median wall time of ``argv`` over ``runs`` runs (after one warm-up)."""
    subprocess.run(argv, capture_output=True, check=False)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    args = parser.parse_args()
    runs = 5 if args.quick else 21
    py = sys.executable
    cases = {
        "python -c pass": [py, "-c", "pass"],
        "python -c 'import imagestream'": [py, "-c", "import imagestream"],
        "imagestream --help": [py, "-m", "imagestream", "--help"],
        "imagestream plugins": [py, "-m", "imagestream", "plugins"],
        "imagestream providers": [py, "-m", "imagestream", "providers"],
    }
    llm = shutil.which("llm")
    if llm:
        cases["llm --help (peer)"] = [llm, "--help"]
    results = {name: median_runtime(argv, runs) for name, argv in cases.items()}
    base = results["python -c pass"]
    print(f"start-up, median of {runs} runs, Python {sys.version.split()[0]}")
    print(f"{'command':34} {'median s':>9} {'x python':>9}")
    for name, seconds in results.items():
        print(f"{name:34} {seconds:9.3f} {seconds / base:9.2f}")
    help_s = results["imagestream --help"]
    verdict = "PASS" if help_s < TARGET_HELP_S else "MISS"
    print(f"target: imagestream --help < {TARGET_HELP_S} s: {help_s:.3f} s {verdict}")


if __name__ == "__main__":
    main()
