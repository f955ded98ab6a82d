"""A progress display for a stream of chunks: one bar per image, in a terminal or a notebook.

::

    from imagestream.progress import show_progress

    async for chunk in show_progress(imagestream.stream("a lighthouse at dusk")):
        ...

Each image of a run gets a bar. When the provider reports sampler steps
(``ImagePreview.step`` and ``total_steps``), the bar counts steps and shows
the sampler's noise level (sigma) when it is reported; otherwise it counts
previews. A :class:`~imagestream.Progress` chunk (a provider that reports
a percentage or steps without pictures) moves the bar too, and shows the
provider's message. A final image completes its bar.

Where it draws: on standard error in a terminal, and in the cell's output in
a Jupyter notebook (rich draws there itself). Anywhere else (output piped to
a file, a CI log, a server) it draws nothing and prints nothing, so a log
never fills with bar frames; the chunks still pass through unchanged. Pass a
``rich.console.Console`` of your own to decide differently (for example
``Console(force_terminal=True)``).

The same display is what ``imagestream generate`` shows.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterable, AsyncIterator
from typing import TYPE_CHECKING, Any, overload

from ._chunks import Chunk, ImageFinal, ImagePreview
from ._chunks import Progress as ProgressChunk

if TYPE_CHECKING:
    from types import TracebackType

    from rich.console import Console
    from rich.progress import Progress, TaskID

    from ._pipeline import ChunkStream

__all__ = ["ProgressDisplay", "show_progress"]


class ProgressDisplay:
    """Progress bars for the chunks of one run, fed chunk by chunk.

    A context manager: the bars appear on entry and are cleared on exit.
    Call :meth:`update` with every chunk::

        with ProgressDisplay() as progress:
            async for chunk in imagestream.stream("a red circle"):
                progress.update(chunk)

    Args:
        enabled: ``False`` to draw nothing at all (a ``--quiet`` switch).
        console: The ``rich`` console to draw on. Default: standard error,
            when it is a terminal or a Jupyter notebook.
        transient: Clear the bars when the run ends (``False`` leaves them).

    Attributes:
        enabled: Whether it draws: ``enabled`` was true and there is a
            terminal or notebook to draw on (decided when it is made).
    """

    def __init__(
        self, *, enabled: bool = True, console: Console | None = None, transient: bool = True
    ) -> None:
        self._console = console
        self._transient = transient
        self._progress: Progress | None = None
        self._tasks: dict[int, TaskID] = {}
        self.enabled = enabled and _can_draw(console)

    def __enter__(self) -> ProgressDisplay:
        if self.enabled and self._progress is None:
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
                console=self._console or Console(stderr=True),
                transient=self._transient,
            )
            self._progress.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            progress, self._progress = self._progress, None
            self._tasks.clear()
            progress.__exit__(exc_type, exc, tb)

    def _task(self, sample: int, total: int | None) -> TaskID:
        assert self._progress is not None
        if sample not in self._tasks:
            self._tasks[sample] = self._progress.add_task(
                f"image {sample + 1}", total=total, detail=""
            )
        return self._tasks[sample]

    def update(self, chunk: Chunk) -> None:
        """Advance the bar of the image ``chunk`` belongs to (other chunks are ignored)."""
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
        elif isinstance(chunk, ProgressChunk):
            task = self._task(chunk.sample, chunk.total_steps)
            detail = chunk.message or ""
            if chunk.step is not None and chunk.total_steps:
                self._progress.update(
                    task, total=chunk.total_steps, completed=chunk.step + 1, detail=detail
                )
            elif chunk.fraction is not None:
                # A percentage: the bar counts to 100.
                self._progress.update(
                    task, total=100, completed=round(chunk.fraction * 100), detail=detail
                )
            else:
                self._progress.update(task, detail=detail)
        elif isinstance(chunk, ImageFinal):
            task = self._task(chunk.sample, None)
            current = self._progress.tasks[task]
            done = current.total if current.total is not None else current.completed
            self._progress.update(task, total=done or 1, completed=done or 1, detail="done")


def _can_draw(console: Console | None) -> bool:
    if console is not None:
        return console.is_terminal or console.is_jupyter
    if sys.stderr is not None and sys.stderr.isatty():
        return True
    # Not a terminal: draw only in a notebook, where rich renders to the cell.
    if "IPython" not in sys.modules:
        return False  # no notebook without IPython: skip making a console
    from rich.console import Console

    return Console(stderr=True).is_jupyter


@overload
def show_progress(
    chunks: ChunkStream, *, enabled: bool = ..., console: Console | None = ...
) -> ChunkStream: ...
@overload
def show_progress(
    chunks: AsyncIterable[Chunk], *, enabled: bool = ..., console: Console | None = ...
) -> AsyncIterator[Chunk]: ...
def show_progress(
    chunks: AsyncIterable[Chunk], *, enabled: bool = True, console: Console | None = None
) -> AsyncIterator[Chunk]:
    """Show a :class:`ProgressDisplay` while passing ``chunks`` through unchanged.

    ::

        stream = show_progress(imagestream.stream("a red circle"))
        async for chunk in stream:
            ...
        print(stream.result.images)

    Given a :class:`~imagestream.ChunkStream` it returns one (with the same
    ``result``, and ``async with`` / ``aclose()`` closing the run); given any
    other async iterable of chunks, an async iterator. The bars are removed
    when the iteration ends, fails or is closed, and closing the returned
    iterator closes ``chunks`` too. Outside a terminal and a notebook it
    draws nothing (see :mod:`imagestream.progress`).

    Args:
        chunks: The chunks of a run, e.g. :func:`imagestream.stream`'s.
        enabled: ``False`` to pass the chunks through without drawing.
        console: The ``rich`` console to draw on (see :class:`ProgressDisplay`).
    """
    shown = _shown(chunks, ProgressDisplay(enabled=enabled, console=console))
    # Only a loaded pipeline makes ChunkStreams: never import it just to check.
    pipeline = sys.modules.get(f"{__package__}._pipeline")
    stream_type: type[ChunkStream] | None = getattr(pipeline, "ChunkStream", None)
    if stream_type is not None and isinstance(chunks, stream_type):
        return stream_type(shown, chunks.result)
    return shown


async def _shown(chunks: AsyncIterable[Chunk], display: ProgressDisplay) -> AsyncIterator[Chunk]:
    try:
        with display:
            async for chunk in chunks:
                display.update(chunk)
                yield chunk
    finally:
        aclose: Any = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
