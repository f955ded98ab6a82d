"""Built-in plugin ``analytics``: latency, time to first chunk/preview/final, sizes, tokens, cost.

The measurements land in ``result.analytics`` (an :class:`~imagestream.Analytics`)
when a run succeeds, and in ``error.partial.analytics`` when it fails. Cost is
computed from the provider's price table per token kind (image tokens at the
image rate), when the provider reports usage and knows its prices. Switch it
off with ``IMAGESTREAM_DISABLE_PLUGINS=analytics``.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING

from .._chunks import Chunk, ImageFinal, ImagePreview, Progress, TextDelta, Usage
from .._result import Analytics as AnalyticsRecord
from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from .._context import RunContext
    from .._request import ImageRequest
    from .._result import GenerationResult

__all__ = ["Analytics", "Tracker"]

_KEY = "imagestream.analytics"


class Tracker:
    """Running measurements of one run."""

    __slots__ = (
        "chunks",
        "finals",
        "first_chunk",
        "first_final",
        "first_preview",
        "first_progress",
        "image_bytes",
        "started",
        "text_chars",
        "usage",
    )

    def __init__(self, started: float) -> None:
        self.started = started
        self.first_chunk: float | None = None
        self.first_preview: float | None = None
        self.first_final: float | None = None
        self.first_progress: float | None = None
        self.chunks: Counter[str] = Counter()
        self.image_bytes = 0
        self.text_chars = 0
        self.finals = 0
        self.usage: Usage | None = None

    def see(self, chunk: Chunk) -> None:
        """Count one chunk (cheap: never decodes a payload)."""
        now = time.perf_counter() - self.started
        if self.first_chunk is None:
            self.first_chunk = now
        self.chunks[chunk.kind] += 1
        if isinstance(chunk, TextDelta):
            self.text_chars += len(chunk.text)
        elif isinstance(chunk, ImagePreview):
            self.image_bytes += chunk.image.nbytes
            if self.first_preview is None:
                self.first_preview = now
        elif isinstance(chunk, ImageFinal):
            self.image_bytes += chunk.image.nbytes
            self.finals += 1
            if self.first_final is None:
                self.first_final = now
        elif isinstance(chunk, Usage):
            self.usage = chunk
        elif isinstance(chunk, Progress) and self.first_progress is None:
            self.first_progress = now

    def finish(self, context: RunContext) -> AnalyticsRecord:
        """The record for the run so far."""
        usage = self.usage
        cost = None
        if usage is not None:
            cost = usage.cost_usd
            if cost is None:
                pricing = context.provider.pricing(context.request.model)
                cost = pricing.cost(usage, images=self.finals) if pricing else None
        return AnalyticsRecord(
            provider=context.provider.name,
            model=context.request.model,
            total_s=time.perf_counter() - self.started,
            first_chunk_s=self.first_chunk,
            first_preview_s=self.first_preview,
            first_final_s=self.first_final,
            chunks=dict(self.chunks),
            image_bytes=self.image_bytes,
            text_chars=self.text_chars,
            input_tokens=usage.input_tokens if usage else None,
            output_tokens=usage.output_tokens if usage else None,
            cost_usd=cost,
            first_progress_s=self.first_progress,
        )


class Analytics:
    """The analytics middleware (one instance serves every run)."""

    @hookimpl(tryfirst=True)
    def on_request(self, request: ImageRequest, context: RunContext) -> None:
        """Start the clock (the run's own start time)."""
        context.state[_KEY] = Tracker(context.started)

    @hookimpl
    def on_chunk(self, chunk: Chunk, context: RunContext) -> None:
        """Count the chunk."""
        tracker: Tracker | None = context.state.get(_KEY)
        if tracker is not None:
            tracker.see(chunk)

    @hookimpl
    def on_result(self, result: GenerationResult, context: RunContext) -> None:
        """Attach the measurements to the result."""
        tracker: Tracker | None = context.state.get(_KEY)
        if tracker is not None:
            result.analytics = tracker.finish(context)

    @hookimpl
    def on_error(self, error: BaseException, context: RunContext) -> None:
        """Attach the measurements so far to the partial result of a failed run."""
        tracker: Tracker | None = context.state.get(_KEY)
        partial = getattr(error, "partial", None)
        if tracker is not None and partial is not None:
            partial.analytics = tracker.finish(context)
