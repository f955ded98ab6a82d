"""One progress line for a whole batch, on standard error.

``[batch] ━━━━━━━━━━━━━━━━━━━━━━━━━ 612/1000  600 done · 12 failed · 8 running ·
41.5 img/min · $1.84 · ETA 9m 20s  0:14:43``

It draws only where ``rich`` can (a terminal, a notebook), as the core's
:class:`imagestream.ProgressDisplay` does; a log or a pipe gets nothing but
the summary at the end.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from ._runner import BatchStats

if TYPE_CHECKING:
    from types import TracebackType

    from rich.console import Console
    from rich.progress import Progress, TaskID

__all__ = ["BatchDisplay", "describe"]


def _duration(elapsed: float) -> str:
    seconds: int = round(elapsed)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def describe(stats: BatchStats) -> str:
    """The counters as one line of text."""
    parts = [f"{stats.done} done", f"{stats.failed} failed", f"{stats.running} running"]
    if stats.earlier:
        parts.append(f"{stats.earlier} earlier")
    parts.append(f"{stats.images_per_minute:.1f} img/min")
    parts.append(f"${stats.spent_before + stats.cost_usd:.2f}")
    if stats.rate_limited:
        parts.append(f"{stats.rate_limited}x 429")
    eta = stats.eta_s
    if eta is not None and stats.done + stats.failed < stats.to_run:
        parts.append(f"ETA {_duration(eta)}")
    return " · ".join(parts)


class BatchDisplay:
    """A ``rich`` progress bar for a batch, fed :class:`BatchStats` (a context manager).

    Args:
        enabled: ``False`` draws nothing (``--quiet``).
        console: The console to draw on (default: standard error when it is a terminal).
    """

    def __init__(self, *, enabled: bool = True, console: Console | None = None) -> None:
        self._console = console
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        if console is not None:
            self.enabled = enabled and (console.is_terminal or console.is_jupyter)
        else:
            self.enabled = enabled and sys.stderr is not None and sys.stderr.isatty()

    def __enter__(self) -> BatchDisplay:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]batch"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                console=self._console or Console(stderr=True),
                transient=False,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("batch", total=None, detail="reading the job")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            progress, self._progress = self._progress, None
            progress.__exit__(exc_type, exc, tb)

    def update(self, stats: BatchStats) -> None:
        """Show ``stats``."""
        if self._progress is None or self._task is None:
            return
        self._progress.update(
            self._task,
            total=max(stats.to_run, 1),
            completed=stats.done + stats.failed,
            detail=describe(stats),
        )
