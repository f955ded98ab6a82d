"""The Progress chunk: progress without a picture, known to every part of the core."""

from __future__ import annotations

import io
import json
import math

import pytest
from rich.console import Console

from imagestream import (
    AnalyticsMiddleware,
    ImageData,
    ImageFinal,
    Pipeline,
    Progress,
    ValidationError,
    chunk_from_dict,
    chunk_to_dict,
    chunk_to_sse,
    get_decoder,
)
from imagestream.progress import ProgressDisplay
from imagestream.testing import ScriptedProvider, make_png


def test_progress_is_a_chunk_of_the_protocol() -> None:
    chunk = Progress(fraction=0.25, message="queued", extra={"position": 3})
    assert chunk.kind == "progress"
    from imagestream.provider import Progress as KitProgress

    assert KitProgress is Progress
    assert chunk_from_dict(chunk_to_dict(chunk)) == chunk
    assert chunk_from_dict(chunk_to_dict(chunk, flavor="msgpack"), flavor="msgpack") == chunk


@pytest.mark.parametrize("bad", [-0.01, 1.01, math.nan, math.inf])
def test_a_fraction_outside_zero_to_one_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        Progress(fraction=bad)
    with pytest.raises(ValidationError, match="malformed progress chunk"):
        chunk_from_dict({"type": "progress", "fraction": bad})


def test_progress_from_steps_or_fraction() -> None:
    assert Progress(fraction=0.5).progress == 0.5
    assert Progress(step=4, total_steps=20).progress == 0.25
    assert Progress(message="loading model").progress is None


def test_progress_travels_as_a_server_sent_event() -> None:
    chunk = Progress(step=2, total_steps=10, message="sampling")
    decoder = get_decoder("sse")
    (event,) = decoder.feed(chunk_to_sse(chunk, event_id="7"))
    assert (event.event, event.id) == ("progress", "7")
    assert chunk_from_dict(json.loads(event.data)) == chunk


async def test_a_run_passes_progress_through_and_analytics_times_it() -> None:
    final = ImageFinal(ImageData.from_bytes(make_png(4, 4)))
    chunks = [Progress(fraction=0.0, message="queued"), Progress(fraction=0.5), final]
    pipeline = Pipeline(ScriptedProvider("p", chunks), middleware=[AnalyticsMiddleware()])
    seen = []
    async with pipeline.stream("x") as stream:
        async for chunk in stream:
            seen.append(chunk)
    assert [type(chunk) for chunk in seen] == [Progress, Progress, ImageFinal]
    analytics = stream.result.analytics
    assert analytics is not None
    assert analytics.chunks["progress"] == 2
    assert analytics.first_progress_s is not None
    assert analytics.first_progress_s <= (analytics.first_final_s or 0)
    assert "first_progress_s" in analytics.as_dict()


def test_the_progress_display_follows_percentages_and_steps() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    display = ProgressDisplay(console=console, transient=False)
    with display:
        display.update(Progress(fraction=0.4, message="rendering"))
        assert display._progress is not None
        (task,) = display._progress.tasks
        assert (task.completed, task.total, task.fields["detail"]) == (40, 100, "rendering")
        display.update(Progress(step=9, total_steps=10))
        assert (task.completed, task.total) == (10, 10)
