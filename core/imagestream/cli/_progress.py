"""The progress display on stderr: steps when the provider says, else preview count."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from .._chunks import Chunk, ImageFinal, ImagePreview

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


class ProgressDisplay:
    """A rich progress bar on stderr; does nothing when stderr is not a terminal."""

    def __init__(self, *, enabled: bool, total_hint: int | None = None) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._progress: Progress | None = None
        self._tasks: dict[int, TaskID] = {}
        self._total_hint = total_hint

    def __enter__(self) -> ProgressDisplay:
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
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def _task(self, sample: int, total: int | None) -> TaskID:
        assert self._progress is not None
        if sample not in self._tasks:
            self._tasks[sample] = self._progress.add_task(
                f"image {sample + 1}", total=total, detail=""
            )
        return self._tasks[sample]

    def update(self, chunk: Chunk) -> None:
        """Advance the bar for one chunk."""
        if self._progress is None:
            return
        if isinstance(chunk, ImagePreview):
            total = chunk.total_steps
            task = self._task(chunk.sample, total)
            if chunk.step is not None and total:
                sigma = f"sigma {chunk.sigma:.3f}" if chunk.sigma is not None else ""
                self._progress.update(task, total=total, completed=chunk.step + 1, detail=sigma)
            else:
                self._progress.update(task, completed=chunk.index + 1, detail="previews")
        elif isinstance(chunk, ImageFinal):
            task = self._task(chunk.sample, None)
            current = self._progress.tasks[task]
            done = current.total if current.total is not None else current.completed
            self._progress.update(task, total=done or 1, completed=done or 1, detail="done")
