"""The web UI's progress answers, turned into chunks.

``GET /sdapi/v1/progress?skip_current_image=false`` answers ``{"progress":
0..1, "eta_relative": seconds, "state": {...}, "current_image": base64 or
null, "textinfo": ...}``, where ``state`` has ``job``, ``job_count``,
``job_no``, ``job_timestamp``, ``sampling_step`` and ``sampling_steps``. The
server reports the one job it is running, whoever sent it: an idle server
has ``job_count`` 0, and a job is told apart by its ``job_timestamp`` (set
when it starts).

:class:`ProgressTracker` knows nothing of the network: it is fed answers
and says what they mean for the run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from imagestream import Chunk, ImageData, ImagePreview, Progress

__all__ = ["ProgressTracker", "job_of"]


def _number(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def job_of(answer: object) -> tuple[bool, str | None]:
    """``(busy, job_timestamp)`` of a progress answer."""
    state = answer.get("state") if isinstance(answer, Mapping) else None
    if not isinstance(state, Mapping):
        return False, None
    count = _number(state.get("job_count"))
    stamp = state.get("job_timestamp")
    return bool(count), stamp if isinstance(stamp, str) else None


class ProgressTracker:
    """One run's progress answers in, chunks out.

    Args:
        foreign_job: The ``job_timestamp`` of a job the server was running
            before this run's request was sent (someone else's), else
            ``None``: answers about that job are not this run's.
        batch_size: Images per job, to number the previews' samples.
        previews: Whether to turn pictures into previews (else only progress).
        steps: The step count asked for: the total shown before sampling
            starts, so that a progress bar knows its length from the start.
    """

    def __init__(
        self,
        *,
        foreign_job: str | None,
        batch_size: int = 1,
        previews: bool = True,
        steps: int | None = None,
    ) -> None:
        self.foreign_job = foreign_job
        self.steps = steps
        self.batch_size = batch_size
        self.previews_wanted = previews
        self.ours_seen = False  # a job of this run has been seen running
        self.previews = 0
        self._image: str | None = None
        self._last: tuple[Any, ...] | None = None
        self._waiting_said = False

    def feed(self, answer: object) -> list[Chunk]:
        """What one progress answer means for this run."""
        if not isinstance(answer, Mapping):
            return []
        busy, stamp = job_of(answer)
        if not busy:
            return []
        if self.foreign_job is not None and stamp == self.foreign_job:
            # The job that ran before this run's request: wait for it.
            if self._waiting_said:
                return []
            self._waiting_said = True
            return [Progress(message="waiting for another job on the server")]
        self.ours_seen = True
        state = answer["state"]
        step = _number(state.get("sampling_step")) or 0
        total = _number(state.get("sampling_steps")) or 0
        job_no = max(0, _number(state.get("job_no")) or 0)
        sample = job_no * self.batch_size
        shown_step = step - 1 if total and step >= 1 else None
        image = answer.get("current_image")
        if self.previews_wanted and isinstance(image, str) and image and image != self._image:
            self._image = image
            preview = ImagePreview(
                ImageData.from_base64(image),
                index=self.previews,
                sample=sample,
                step=shown_step,
                total_steps=total or self.steps,
                extra={"job_no": job_no},
            )
            self.previews += 1
            self._last = None
            return [preview]
        fraction = answer.get("progress")
        if (
            not isinstance(fraction, int | float)
            or isinstance(fraction, bool)
            or math.isnan(fraction)
        ):
            fraction = None
        else:
            fraction = min(1.0, max(0.0, float(fraction)))
        text = answer.get("textinfo")
        message = text.strip() if isinstance(text, str) and text.strip() else None
        if total or self.steps:
            # Steps known: the bar counts them. (A fraction would switch it to percent.)
            fraction = None
        key = (shown_step, total, job_no, message, None if fraction is None else round(fraction, 3))
        if key == self._last:
            return []
        self._last = key
        return [
            Progress(
                fraction=fraction,
                step=shown_step,
                total_steps=total or self.steps,
                message=message,
                sample=sample,
                extra={"job_no": job_no},
            )
        ]
