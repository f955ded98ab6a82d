"""Progress in a notebook: bars for every run, and a preview that updates in place."""

from __future__ import annotations

from typing import Any

import imagestream
from imagestream import Chunk, GenerationResult, ImageFinal, ImagePreview
from imagestream.progress import ProgressDisplay, show_progress


async def generate_with_progress(prompt: str, **params: Any) -> GenerationResult:
    """Run to the end with a progress bar (in a notebook cell, or on a terminal)."""
    chunks = show_progress(imagestream.stream(prompt, **params))
    async with chunks:
        async for _ in chunks:
            pass
    return chunks.result


class LivePreview:
    """The newest preview of a run, in one notebook output that is replaced in place."""

    def __init__(self, width: int = 256) -> None:
        from IPython.display import display

        self.width = width
        self.shown = 0
        self._handle = display("waiting for the first preview…", display_id=True)

    def update(self, chunk: Chunk) -> None:
        """Show ``chunk``'s image if it is a preview or final image; ignore the rest."""
        if isinstance(chunk, ImagePreview | ImageFinal):
            from IPython.display import Image

            self._handle.update(Image(data=chunk.image.data, width=self.width))
            self.shown += 1


async def generate_in_notebook(prompt: str, **params: Any) -> GenerationResult:
    """Run to the end, with progress bars and the image growing above them."""
    preview = LivePreview()
    chunks = imagestream.stream(prompt, **params)
    with ProgressDisplay() as progress:
        async with chunks:
            async for chunk in chunks:
                progress.update(chunk)
                preview.update(chunk)
    return chunks.result
