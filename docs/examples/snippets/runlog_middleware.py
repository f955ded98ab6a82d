"""A middleware plugin: tags each final image with the run id and logs one line per run."""

from __future__ import annotations

import attrs

from imagestream import Chunk, GenerationResult, ImageFinal, RunContext, hookimpl


class RunLog:
    """Middleware: one instance serves every run; per-run data lives in the context."""

    @hookimpl
    def on_chunk(self, chunk: Chunk, context: RunContext) -> Chunk | None:
        # Runs for every chunk: look at the type, never decode a payload here.
        if isinstance(chunk, ImageFinal):
            return attrs.evolve(chunk, extra={**chunk.extra, "run_id": context.run_id})
        return None

    @hookimpl
    def on_result(self, result: GenerationResult, context: RunContext) -> None:
        context.logger.info(
            "run %d: %s made %d image(s) and %d preview(s)",
            context.run_id,
            result.provider,
            len(result.images),
            result.preview_count,
        )

    @hookimpl
    def on_error(self, error: BaseException, context: RunContext) -> None:
        context.logger.info("run %d failed: %s", context.run_id, type(error).__name__)


plugin = RunLog()
"""The object an entry point names: ``runlog = "imagestream_runlog:plugin"``."""
