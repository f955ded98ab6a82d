"""What ``imagestream batch`` does once its options are read: run, draw, summarise, exit."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from ._display import BatchDisplay, describe
from ._files import REPLACED_DIR
from ._runner import BatchStats, BatchSummary, arun_batch

__all__ = ["run_command"]

EXIT_DONE = 0
EXIT_UNFINISHED = 1
EXIT_SIGINT = 130
EXIT_SIGTERM = 143
SHOWN_FAILURES = 5


class _Terminated(Exception):
    """SIGTERM arrived: the run was stopped the way Ctrl-C stops it."""


async def _run(job: Path, observer: _Observer, options: Mapping[str, Any]) -> BatchSummary:
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    terminated: list[bool] = []

    def on_sigterm() -> None:
        terminated.append(True)
        if main is not None:
            main.cancel()

    # Not in the main thread, or no signals here: Ctrl-C only.
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    try:
        return await arun_batch(job, observer=observer.update, **options)
    except asyncio.CancelledError:
        if terminated:
            raise _Terminated from None
        raise
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGTERM)


def run_command(
    job: Path, *, defaults: Mapping[str, Any], quiet: bool, as_json: bool, **options: Any
) -> int:
    """Run the batch; return the exit status."""
    stats: list[BatchStats] = []
    display = BatchDisplay(enabled=not quiet)
    code = EXIT_DONE
    interrupted: str | None = None
    summary: BatchSummary | None = None
    with display:
        observer = _Observer(display, stats)
        try:
            summary = asyncio.run(_run(job, observer, {**options, **defaults}))
        except KeyboardInterrupt:
            interrupted, code = "SIGINT", EXIT_SIGINT
        except _Terminated:
            interrupted, code = "SIGTERM", EXIT_SIGTERM
    if summary is None:
        current = stats[0] if stats else None
        message = f"interrupted ({interrupted})"
        if current is not None:
            message += f": {describe(current)}"
        if not quiet:
            click.echo(message + "; run the same command again to resume", err=True)
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "interrupted": interrupted,
                        "done_now": current.done if current else 0,
                        "failed_now": current.failed if current else 0,
                    }
                )
            )
        return code
    if as_json:
        click.echo(json.dumps(summary.as_dict()))
    if not quiet:
        _print_summary(summary)
    return EXIT_DONE if summary.ok else EXIT_UNFINISHED


class _Observer:
    """Feeds the display and keeps the live stats for an interrupted run's message."""

    def __init__(self, display: BatchDisplay, stats: list[BatchStats]) -> None:
        self._display = display
        self._stats = stats

    def update(self, current: BatchStats) -> None:
        if not self._stats:
            self._stats.append(current)
        self._display.update(current)


def _print_summary(summary: BatchSummary) -> None:
    earlier = summary.done - summary.done_now
    parts = [f"{summary.done}/{summary.total} done"]
    if earlier:
        parts[0] += f" ({earlier} earlier)"
    parts.append(f"{summary.failed} failed")
    if summary.pending:
        parts.append(f"{summary.pending} pending")
    parts.append(f"{summary.images} images in {summary.elapsed_s:.1f}s")
    parts.append(f"{summary.images_per_minute:.1f} img/min")
    cost = f"${summary.total_cost_usd:.2f}"
    if summary.cost_unknown:
        cost += f" (+{summary.cost_unknown} of unknown cost)"
    parts.append(cost)
    if summary.rate_limited:
        parts.append(f"{summary.rate_limited}x 429")
    click.echo("batch: " + ", ".join(parts), err=True)
    for request_id, kind, message in summary.failures[:SHOWN_FAILURES]:
        click.echo(f"  failed {request_id}: {kind}: {message}", err=True)
    if len(summary.failures) > SHOWN_FAILURES:
        click.echo(f"  ... and {len(summary.failures) - SHOWN_FAILURES} more failed", err=True)
    if summary.replaced:
        moved = "1 earlier image" if summary.replaced == 1 else f"{summary.replaced} earlier images"
        click.echo(f"  {moved} moved to {summary.out_dir / REPLACED_DIR}", err=True)
    if summary.stopped == "max-cost":
        click.echo("  stopped starting requests: --max-cost reached", err=True)
    click.echo(f"  results: {summary.results}", err=True)
