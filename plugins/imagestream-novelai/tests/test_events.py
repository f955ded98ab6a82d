"""Events to chunks, for every event shape the independent clients describe."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest

from imagestream import (
    ImageFinal,
    ImagePreview,
    ImageRequest,
    QuotaExceededError,
    ServerError,
    StreamDecodeError,
)
from imagestream.provider import MASK
from imagestream.testing import make_png
from imagestream_novelai import NovelAIProvider
from imagestream_novelai._events import EventTranslator, sse_payload

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 16
PNG = make_png()


def translator(**fields: Any) -> EventTranslator:
    prepared = NovelAIProvider().validate(ImageRequest("1girl", api_key="pst-events", steps=10, seed=5, **fields))
    return EventTranslator(prepared.settings, "pst-events")


def test_intermediate_with_text_fields_and_int_gen_id() -> None:
    chunk = translator().translate(
        {"event_type": "intermediate", "samp_ix": "1", "step_ix": "3", "gen_id": 99, "sigma": "2.5", "image": JPEG}
    )
    assert isinstance(chunk, ImagePreview)
    assert (chunk.sample, chunk.step, chunk.sigma, chunk.total_steps, chunk.index) == (1, 3, 2.5, 10, 0)
    assert chunk.extra == {"gen_id": "99"} and chunk.mime_type == "image/jpeg"


def test_final_with_minus_one_step_and_no_sigma() -> None:
    events = translator()
    chunk = events.translate({"event_type": "final", "samp_ix": 0, "step_ix": -1, "gen_id": "abc", "image": PNG})
    assert isinstance(chunk, ImageFinal)
    assert chunk.seed == 5 and chunk.extra == {"gen_id": "abc"} and chunk.mime_type == "image/png"
    assert events.complete


def test_base64_payloads_are_not_decoded() -> None:
    b64 = base64.b64encode(JPEG).decode()
    chunk = translator().translate({"event_type": "intermediate", "step_ix": 0, "image": b64})
    assert isinstance(chunk, ImagePreview)
    assert chunk.image.arrived_as_base64 and chunk.mime_type == "image/jpeg"
    assert chunk.sample == 0  # samp_ix absent


def test_unknown_event_types_are_skipped() -> None:
    assert translator().translate({"event_type": "queued", "position": 3}) is None


def test_error_without_event_type() -> None:
    with pytest.raises(QuotaExceededError):
        translator().translate({"error": {"message": "insufficient Anlas"}})
    with pytest.raises(ServerError, match=re.escape(MASK)):
        translator().translate({"event_type": "error", "message": "token pst-events bad"})


def test_not_a_map_and_no_image() -> None:
    with pytest.raises(StreamDecodeError):
        translator().translate([1, 2, 3])
    with pytest.raises(StreamDecodeError, match="without an image"):
        translator().translate({"event_type": "final", "samp_ix": 0})


def test_sse_payload_shapes() -> None:
    assert sse_payload("final", '{"samp_ix": 0}') == {"samp_ix": 0, "event_type": "final"}
    assert sse_payload("message", '{"event_type": "intermediate"}') == {"event_type": "intermediate"}
    assert sse_payload("error", "Concurrent generation is locked") == {
        "event_type": "error",
        "message": "Concurrent generation is locked",
    }
    with pytest.raises(StreamDecodeError):
        sse_payload("intermediate", "not json")
    with pytest.raises(StreamDecodeError):
        sse_payload("intermediate", "[1]")
