"""Recorded Gemini API and Vertex AI traffic, replayed byte for byte, read by imagestream and by the SDK.

The recordings (``../shared/fixtures/gemini`` beside the repository) are real
answers: streamed ``streamGenerateContent?alt=sse`` bodies, served verbatim;
whole ``generateContent`` answers, served as JSON; and a 429 error body. Each is
played to imagestream through the provider and path it was recorded from, and
every chunk must be what the recording holds: the text parts in order, the image
bytes exactly as their base64 decodes, the MIME types, the recorded usage, and
STOP as a success. ``thoughtSignature`` is opaque and shows in no chunk. The
official SDK reads the same bytes, and must agree.
"""

from __future__ import annotations

import base64
import functools
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from _google_server import CRLF, GoogleServer, Scenario, merge_events
from _sdk import SdkResult, sdk_generate, sdk_stream

import imagestream

genai = pytest.importorskip("google.genai")
yaml = pytest.importorskip("yaml")

STREAMED = "pydantic-ai_gemini-2.5-flash-image_streamGenerateContent-sse.cassette.yaml"
VERTEX_TEXT = "pydantic-ai_vertex-global-streamGenerateContent-sse-text.cassette.yaml"
PRO_WHOLE = "pydantic-ai_gemini-3-pro-image-preview_generateContent-text-and-image.cassette.yaml"
VERTEX_JPEG = "pydantic-ai_vertex-global-gemini-2.5-flash-image_generateContent-jpeg.cassette.yaml"
ERROR_429 = "vercel-ai_gemini-error-429.json"


@functools.cache
def _interactions(path: Path) -> list[dict[str, Any]]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open("rb") as stream:
        return list(yaml.load(stream, Loader=loader)["interactions"])


def _recording(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        pytest.skip(f"the recording {name} is not in {folder}")
    return path


def _events(body: str) -> list[dict[str, Any]]:
    """The JSON of each ``data:`` event of a recorded SSE body."""
    return [json.loads(chunk.removeprefix("data: ")) for chunk in body.split(CRLF) if chunk]


def _recorded_parts(answers: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What a reader must show, in order: text (empty parts dropped) and decoded images."""
    out: list[tuple[Any, ...]] = []
    for answer in answers:
        for candidate in answer.get("candidates", [])[:1]:
            for part in candidate.get("content", {}).get("parts", []):
                if "inlineData" in part:
                    inline = part["inlineData"]
                    out.append(("image", inline["mimeType"], base64.b64decode(inline["data"])))
                elif part.get("text"):
                    out.append(("thought" if part.get("thought") else "text", part["text"]))
    return out


def _where(uri: str) -> tuple[str, dict[str, Any], dict[str, Any], str]:
    """(api, SDK client settings, imagestream settings, model) that address ``uri``."""
    path = urlsplit(uri).path
    model = path.rsplit("/", 1)[1].split(":")[0]
    if "/projects/" in path:
        parts = path.split("/")
        where = {"project": parts[3], "location": parts[5]}
        return "vertex", dict(where), dict(where), model
    version = path.split("/")[1]
    return "gemini", {"api_version": version}, {"options": {"api_version": version}}, model


def _prompt(interaction: dict[str, Any]) -> str:
    return str(interaction["request"]["parsed_body"]["contents"][0]["parts"][0]["text"])


def _usage_numbers(metadata: dict[str, Any]) -> dict[str, Any]:
    """The recorded ``usageMetadata`` in imagestream's :class:`~imagestream.Usage` terms."""

    def by_modality(name: str) -> dict[str, int]:
        return {item["modality"]: item["tokenCount"] for item in metadata.get(name, [])}

    outputs = by_modality("candidatesTokensDetails")
    output = metadata.get("candidatesTokenCount")
    text_out = outputs.get("TEXT")
    if text_out is None and output is not None and outputs:
        text_out = output - sum(outputs.values())
    return {
        "input_tokens": metadata.get("promptTokenCount"),
        "output_tokens": output,
        "total_tokens": metadata.get("totalTokenCount"),
        "input_text_tokens": by_modality("promptTokensDetails").get("TEXT"),
        "output_image_tokens": outputs.get("IMAGE"),
        "output_text_tokens": text_out,
        "thought_tokens": metadata.get("thoughtsTokenCount"),
    }


def _numbers(chunk: imagestream.Usage) -> dict[str, Any]:
    return {name: getattr(chunk, name) for name in _usage_numbers({})}


def _sdk_shown(sdk: SdkResult) -> list[tuple[Any, ...]]:
    return [part for part in sdk.parts if part[0] not in ("text", "thought") or part[1]]


def _assert_chunks(run: Any, answers: list[dict[str, Any]], *, synthetic: bool) -> None:
    """The run succeeded with the recording's parts, in order, then its usage."""
    run.ok()
    expected = _recorded_parts(answers)
    assert run.parts == expected
    kinds = [type(chunk).__name__ for chunk in run.chunks]
    assert kinds == ["ImageFinal" if part[0] == "image" else "TextDelta" for part in expected] + [
        "Usage"
    ]
    finals = [chunk for chunk in run.chunks if isinstance(chunk, imagestream.ImageFinal)]
    assert [chunk.sample for chunk in finals] == list(range(len(finals)))
    last = answers[-1]
    for chunk in finals:
        # The image as it came: bytes, type and the facts of the answer, no signature.
        assert chunk.image.mime_type == chunk.mime_type
        assert chunk.extra == {
            "modelVersion": last["modelVersion"],
            "responseId": last["responseId"],
        }
    assert all("thoughtSignature" not in repr(chunk) for chunk in run.chunks)
    usage = run.chunks[-1]
    assert _numbers(usage) == _usage_numbers(last["usageMetadata"])
    assert dict(usage.raw) == last["usageMetadata"]
    assert {chunk.synthetic for chunk in run.chunks} == {synthetic}


# -- streamed: the bytes as they came -------------------------------------------------------


@pytest.mark.parametrize("separator", ["crlf", "lf"])
@pytest.mark.parametrize("number", [0, 1])
async def test_streamed_flash_image(
    google_server: GoogleServer,
    google_recordings: Path,
    run_google: Any,
    number: int,
    separator: str,
) -> None:
    interactions = _interactions(_recording(google_recordings, STREAMED))
    if number >= len(interactions):
        pytest.skip(f"{STREAMED} has {len(interactions)} interactions")
    interaction = interactions[number]
    body = interaction["response"]["body"]["string"]
    raw = body.encode("utf-8")
    if separator == "lf":
        raw = raw.replace(b"\r\n\r\n", b"\n\n")
    api, sdk_settings, settings, model = _where(interaction["request"]["uri"])
    assert api == "gemini"
    google_server.enqueue(Scenario(raw=raw))
    run = await run_google(_prompt(interaction), api="gemini", model=model, **settings)
    answers = _events(body)
    _assert_chunks(run, answers, synthetic=False)
    assert run.images and all(mime == "image/png" for mime, _ in run.images)
    assert run.text == "".join(part[1] for part in _recorded_parts(answers) if part[0] == "text")
    # What imagestream asked is what was recorded: the same path, query and body.
    record = google_server.last
    assert (
        f"{record.path}?{record.query_string}"
        == interaction["request"]["uri"].split("googleapis.com", 1)[1]
    )
    assert record.json == interaction["request"]["parsed_body"]
    assert sum(record.pieces) == len(raw)
    # The SDK reads the same bytes the same way.
    google_server.enqueue(Scenario(raw=raw))
    sdk = await sdk_stream(
        google_server.url,
        model=model,
        prompt=_prompt(interaction),
        config={"response_modalities": ["TEXT", "IMAGE"]},
        **sdk_settings,
    )
    assert sdk.finish_reason == "STOP"
    assert run.parts == _sdk_shown(sdk)
    assert dict(run.chunks[-1].raw) == sdk.usage
    assert google_server.requests[-1].json == record.json


async def test_streamed_vertex_text_is_no_image(
    google_server: GoogleServer, google_recordings: Path, run_google: Any
) -> None:
    # A text-only reply (this recording asked for TEXT alone): imagestream always asks
    # for an image, so an answer without one is a NoImageError carrying the text.
    (interaction,) = _interactions(_recording(google_recordings, VERTEX_TEXT))
    body = interaction["response"]["body"]["string"]
    api, sdk_settings, settings, model = _where(interaction["request"]["uri"])
    assert (api, settings, model) == (
        "vertex",
        {"project": "pydantic-ai", "location": "global"},
        "gemini-3-flash-preview",
    )
    google_server.enqueue(Scenario(raw=body.encode("utf-8")))
    run = await run_google(_prompt(interaction), api="vertex", model=model, **settings)
    (event,) = _events(body)
    assert run.parts == _recorded_parts([event]) == [("text", "OK")]
    error = run.error
    assert type(error) is imagestream.NoImageError
    assert (error.text, error.finish_reason) == ("OK", "STOP")
    assert error.partial is not None and error.partial.text == "OK"
    assert run.usages == []
    record = google_server.last
    recorded = urlsplit(interaction["request"]["uri"])
    assert (record.path, record.query_string) == (recorded.path, recorded.query)
    sent = dict(interaction["request"]["parsed_body"])
    assert sent.pop("generationConfig") == {"responseModalities": ["TEXT"]}
    assert record.json == {**sent, "generationConfig": {"responseModalities": ["TEXT", "IMAGE"]}}
    # The SDK reads the same: the text, STOP and the usage (thoughts, ON_DEMAND_FLEX).
    google_server.enqueue(Scenario(raw=body.encode("utf-8")))
    sdk = await sdk_stream(
        google_server.url, api="vertex", model=model, prompt=_prompt(interaction), **sdk_settings
    )
    assert _sdk_shown(sdk) == run.parts and sdk.finish_reason == error.finish_reason
    assert sdk.text == error.text
    assert sdk.usage is not None and sdk.usage == event["usageMetadata"]
    assert sdk.usage["thoughtsTokenCount"] == 100


# -- whole answers: generateContent ---------------------------------------------------------


@pytest.mark.parametrize("name", [PRO_WHOLE, VERTEX_JPEG], ids=["gemini-3-pro", "vertex-jpeg"])
async def test_whole_answers(
    google_server: GoogleServer, google_recordings: Path, run_google: Any, name: str
) -> None:
    (interaction,) = _interactions(_recording(google_recordings, name))
    answer = interaction["response"]["parsed_body"]
    api, sdk_settings, settings, model = _where(interaction["request"]["uri"])
    sent = interaction["request"]["parsed_body"]
    image_config = sent["generationConfig"].get("imageConfig", {})
    output = image_config.get("imageOutputOptions", {})
    params: dict[str, Any] = {"model": model, **settings}
    params.setdefault("options", {})["stream"] = False
    if output:
        params["output_format"] = output["mimeType"].split("/")[1]
        params["options"]["output_compression"] = output["compressionQuality"]
    google_server.enqueue(Scenario(body=answer))
    run = await run_google(_prompt(interaction), api=api, **params)
    _assert_chunks(run, [answer], synthetic=True)
    assert all(mime == "image/jpeg" for mime, _ in run.images) and run.images
    # The request: the recorded path (no query) and body, Vertex output options included.
    record = google_server.last
    assert record.path == urlsplit(interaction["request"]["uri"]).path and record.query == {}
    assert record.json == sent
    # The SDK's whole answer is the same.
    google_server.enqueue(Scenario(body=answer))
    sdk = await sdk_generate(
        google_server.url,
        api=api,  # type: ignore[arg-type]
        model=model,
        prompt=_prompt(interaction),
        config=genai.types.GenerateContentConfig.model_validate(sent["generationConfig"]),
        **sdk_settings,
    )
    assert sdk.finish_reason == "STOP"
    assert run.parts == _sdk_shown(sdk)
    assert dict(run.chunks[-1].raw) == sdk.usage
    if name == PRO_WHOLE:
        # Text and image, each with a thoughtSignature the SDK decodes and imagestream skips.
        assert [part[0] for part in run.parts] == ["text", "image"]
        assert len(sdk.signatures) == 2
        assert run.chunks[-1].thought_tokens == 174


async def test_streamed_recording_as_a_whole_answer(
    google_server: GoogleServer, google_recordings: Path, run_google: Any
) -> None:
    # The same recorded reply, merged as generateContent would send it (-o stream false).
    interaction = _interactions(_recording(google_recordings, STREAMED))[0]
    answer = merge_events(_events(interaction["response"]["body"]["string"]))
    _, sdk_settings, settings, model = _where(interaction["request"]["uri"])
    google_server.enqueue(Scenario(body=answer))
    options = {**settings["options"], "stream": False}
    run = await run_google(_prompt(interaction), model=model, options=options)
    _assert_chunks(run, [answer], synthetic=True)
    google_server.enqueue(Scenario(body=answer))
    sdk = await sdk_generate(google_server.url, model=model, **sdk_settings)
    assert run.parts == _sdk_shown(sdk)


# -- the 429 ------------------------------------------------------------------------------


@pytest.fixture
def error_429(google_recordings: Path) -> bytes:
    """The recorded 429 body, as it came."""
    return _recording(google_recordings, ERROR_429).read_bytes()


@pytest.mark.parametrize("api", ["gemini", "vertex"])
async def test_429_is_a_rate_limit_error_with_its_retry_delay(
    google_server: GoogleServer, run_google: Any, no_retry: Any, error_429: bytes, api: str
) -> None:
    recorded = json.loads(error_429)["error"]
    google_server.enqueue(Scenario(status=429, body=error_429))
    started = time.monotonic()
    version: dict[str, Any] = {"api_version": "v1beta"} if api == "gemini" else {}
    run = await run_google(api=api, pipeline=no_retry, options=version)
    assert time.monotonic() - started < 5
    error = run.error
    # A per-minute quota: a rate limit to wait out, not a quota used up for the day.
    assert type(error) is imagestream.RateLimitError
    assert error.retry_after == 34.4
    assert (error.status, error.code) == (429, "RESOURCE_EXHAUSTED")
    assert recorded["message"] in error.message
    assert run.chunks == [] and len(google_server.requests) == 1
    # The SDK reads the same error.
    google_server.enqueue(Scenario(status=429, body=error_429))
    with pytest.raises(genai.errors.ClientError) as caught:
        await sdk_stream(google_server.url, api=api, **version)  # type: ignore[arg-type]
    assert (caught.value.code, caught.value.status) == (error.status, error.code)
    assert caught.value.message == recorded["message"]
    delays = [
        d["retryDelay"] for d in caught.value.details["error"]["details"] if "retryDelay" in d
    ]
    assert delays == ["34.4s"] and float(delays[0].removesuffix("s")) == error.retry_after


async def test_429_longer_than_the_policy_waits_is_raised_at_once(
    plugins: Any, google_server: GoogleServer, run_google: Any, error_429: bytes
) -> None:
    # With retries on, a retryDelay above the policy's retry_after_max is not slept through.
    http = imagestream.HttpClient(retry=imagestream.RetryPolicy(max_retries=3, retry_after_max=30))
    pipeline = imagestream.Pipeline(manager=imagestream.get_plugin_manager(), http=http)
    google_server.enqueue(*(Scenario(status=429, body=error_429) for _ in range(4)))
    started = time.monotonic()
    try:
        run = await run_google(pipeline=pipeline)
    finally:
        await http.close()
    assert time.monotonic() - started < 5
    assert type(run.error) is imagestream.RateLimitError and run.error.retry_after == 34.4
    assert len(google_server.requests) == 1
