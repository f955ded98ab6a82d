"""The response reader alone: parts to chunks, usage by modality, how a reply ends."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from imagestream import (
    AuthenticationError,
    ContentPolicyError,
    ImageFinal,
    ImagePreview,
    InvalidRequestError,
    NoImageError,
    QuotaExceededError,
    RateLimitError,
    Secret,
    ServerError,
    StreamInterruptedError,
    TextDelta,
    Usage,
)
from imagestream.testing import make_png
from imagestream_google._errors import error_parser
from imagestream_google._events import NO_IMAGE_REASONS, POLICY_REASONS, ResponseReader, usage_of

PNG = base64.b64encode(make_png(3, 2)).decode()
KEY = "AIzaSy-SECRET-key-for-tests-000000000"


def event(*parts: dict[str, Any], finish: str | None = None, **top: Any) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": list(parts), "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], **top}


def image(data: str = PNG, *, thought: bool = False) -> dict[str, Any]:
    part: dict[str, Any] = {"inlineData": {"mimeType": "image/png", "data": data}}
    if thought:
        part["thought"] = True
    return part


def test_text_thoughts_and_images_keep_their_order() -> None:
    reader = ResponseReader("gemini", wants_image=True)
    chunks = []
    for response in (
        event({"text": "Thinking about foxes", "thought": True}),
        event(image(thought=True)),
        event({"text": "Here is "}, {"text": "a fox:"}),
        event(image(), {"text": " and another:"}, modelVersion="m-1", responseId="r-1"),
        event(image(), {"text": ""}, finish="STOP", usageMetadata={"candidatesTokenCount": 5}),
    ):
        chunks += reader.read(response)
    chunks += reader.finish()
    kinds = [
        (type(c).__name__, getattr(c, "text", None), getattr(c, "thought", None)) for c in chunks
    ]
    assert kinds == [
        ("TextDelta", "Thinking about foxes", True),
        ("ImagePreview", None, None),
        ("TextDelta", "Here is ", False),
        ("TextDelta", "a fox:", False),
        ("ImageFinal", None, None),
        ("TextDelta", " and another:", False),
        ("ImageFinal", None, None),
        ("Usage", None, None),
    ]
    finals = [c for c in chunks if isinstance(c, ImageFinal)]
    assert [f.sample for f in finals] == [0, 1]
    assert finals[0].image.data == base64.b64decode(PNG)
    assert finals[0].extra == {"modelVersion": "m-1", "responseId": "r-1"}
    preview = next(c for c in chunks if isinstance(c, ImagePreview))
    assert preview.extra == {"thought": True} and preview.index == 0


def test_usage_is_split_by_modality_and_keeps_thoughts() -> None:
    usage = usage_of(
        {
            "promptTokenCount": 14,
            "candidatesTokenCount": 1283,
            "totalTokenCount": 1471,
            "thoughtsTokenCount": 174,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 14}],
            "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1120}],
        }
    )
    assert usage == Usage(
        input_tokens=14,
        output_tokens=1283,
        total_tokens=1471,
        input_text_tokens=14,
        input_image_tokens=None,
        output_text_tokens=163,
        output_image_tokens=1120,
        thought_tokens=174,
        raw=usage.raw,
    )
    assert usage_of({}).output_text_tokens is None


def test_only_the_last_usage_is_reported() -> None:
    reader = ResponseReader("gemini", wants_image=True)
    reader.read(event({"text": "a"}, usageMetadata={"candidatesTokenCount": 2}))
    reader.read(event(image(), finish="STOP", usageMetadata={"candidatesTokenCount": 1292}))
    (usage,) = reader.finish()
    assert isinstance(usage, Usage) and usage.output_tokens == 1292


@pytest.mark.parametrize("reason", sorted(POLICY_REASONS))
def test_policy_reasons_are_content_policy_errors(reason: str) -> None:
    reader = ResponseReader("gemini", wants_image=True)
    reader.read(event({"text": "Sorry"}, finish=reason))
    with pytest.raises(ContentPolicyError, match=reason) as info:
        reader.finish()
    assert info.value.code == reason


@pytest.mark.parametrize("reason", [*sorted(NO_IMAGE_REASONS), "STOP", "MAX_TOKENS"])
def test_a_reply_without_the_image_is_no_image_error_with_its_text(reason: str) -> None:
    reader = ResponseReader("gemini", wants_image=True)
    reader.read(event({"text": "I can only describe "}, {"text": "foxes."}, finish=reason))
    with pytest.raises(NoImageError) as info:
        reader.finish()
    assert info.value.text == "I can only describe foxes."
    assert info.value.finish_reason == reason
    assert "I can only describe foxes." in str(info.value)


def test_a_blocked_prompt() -> None:
    reader = ResponseReader("vertex", wants_image=True)
    with pytest.raises(ContentPolicyError, match=r"prompt was blocked \(PROHIBITED_CONTENT\)"):
        reader.read({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}})


def test_no_finish_reason_means_interrupted() -> None:
    reader = ResponseReader("gemini", wants_image=True)
    reader.read(event({"text": "Here"}))
    with pytest.raises(StreamInterruptedError, match="no finishReason"):
        reader.finish()


def test_an_error_object_in_the_stream_is_typed_and_masked() -> None:
    reader = ResponseReader("gemini", wants_image=True, secrets=[Secret(KEY)])
    with pytest.raises(ServerError) as info:
        reader.read({"error": {"code": 500, "message": f"boom for {KEY}", "status": "INTERNAL"}})
    assert KEY not in str(info.value) and "[redacted]" in str(info.value)


def test_synthetic_marks_every_chunk() -> None:
    reader = ResponseReader("gemini", wants_image=True, synthetic=True)
    chunks = reader.read(event({"text": "a"}, image(), finish="STOP", usageMetadata={}))
    chunks += reader.finish()
    assert all(chunk.synthetic for chunk in chunks)
    assert isinstance(chunks[0], TextDelta)


def _google_error(status: int, canonical: str, details: list[Any] | None = None) -> bytes:
    import json

    error: dict[str, Any] = {"code": status, "message": f"nope {KEY}", "status": canonical}
    if details is not None:
        error["details"] = details
    return json.dumps({"error": error}).encode()


@pytest.mark.parametrize(
    ("status", "canonical", "cls"),
    [
        (429, "RESOURCE_EXHAUSTED", RateLimitError),
        (401, "UNAUTHENTICATED", AuthenticationError),
        (403, "PERMISSION_DENIED", AuthenticationError),
        (400, "INVALID_ARGUMENT", InvalidRequestError),
        (500, "INTERNAL", ServerError),
        (503, "UNAVAILABLE", ServerError),
    ],
)
def test_http_errors(status: int, canonical: str, cls: type[Exception]) -> None:
    error = error_parser("gemini", [Secret(KEY)])(status, _google_error(status, canonical), {})
    assert type(error) is cls
    assert error.status == status and error.code == canonical
    assert KEY not in str(error)


def test_retry_info_and_daily_quotas() -> None:
    details = [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3.5s"},
    ]
    error = error_parser("gemini", [])(429, _google_error(429, "RESOURCE_EXHAUSTED", details), {})
    assert isinstance(error, RateLimitError) and error.retry_after == 3.5
    daily = [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}],
        }
    ]
    error = error_parser("gemini", [])(429, _google_error(429, "RESOURCE_EXHAUSTED", daily), {})
    assert isinstance(error, QuotaExceededError)


def test_a_page_that_is_not_google_json() -> None:
    error = error_parser("vertex", [])(502, b"<html>Bad gateway</html>", {})
    assert isinstance(error, ServerError) and "Bad gateway" in error.message
