"""The official ``google-genai`` SDK judges imagestream: same answer, same reading; same settings, same request.

Every scenario is played twice by the local server, once to the SDK and once to
imagestream, and what imagestream yields must be what the SDK parsed: the answer's
text and the thoughts (each in order), the images (bytes and MIME type), the way the
reply ended, and the usage numbers. Where the SDK returns a finish reason that is not
an image, imagestream raises, and the error must carry that reason (and the text the
SDK read). For the same settings, the request imagestream sends must be the one the
SDK sends: body, path, query and credentials.

Differences judged acceptable (each asserted where it shows):

- The SDK yields the empty ``{"text": ""}`` part that carries the finish reason;
  imagestream has nothing to show for it and yields no chunk.
- The SDK writes ``thinkingConfig`` in snake_case and inline image data as URL-safe
  base64 (pydantic's bytes encoding); Google reads both spellings of each, so bodies
  are compared after :func:`camel_keys` and with base64 decoded.
- The SDK's Gemini API converter drops ``finishMessage``; imagestream keeps it in
  the error's message on both APIs.
- ``NoImageError.text`` is the model's text with surrounding whitespace stripped.
- Imagen's ``personGeneration``: the SDK sends its enum value (``ALLOW_ADULT``),
  imagestream the spelling of Vertex AI's REST reference (``allow_adult``).
- The SDK also sends ``x-server-timeout`` and its own ``user-agent``; imagestream an
  ``Accept`` header for the body it wants.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

import pytest
from _google_server import (
    CRLF,
    IMAGEN_MODEL,
    KEY,
    LF,
    PROJECT,
    TOKEN,
    GoogleServer,
    Recorded,
    Scenario,
    blocked,
    camel_keys,
    error_lines,
    error_scenario,
    filtered,
    google_error,
    image_part,
    make_image,
    predict_body,
    prediction,
    response,
    stream_events,
    text_part,
    usage,
    vertex_shape,
)
from _sdk import PROMPT, SdkResult, sdk_generate, sdk_images, sdk_request, sdk_stream

import imagestream

genai = pytest.importorskip("google.genai")
from google.genai import errors, types  # noqa: E402

# name: (api, SDK client settings, imagestream settings, path prefix)
APIS: dict[str, tuple[str, dict[str, Any], dict[str, Any], str]] = {
    "gemini-v1": ("gemini", {}, {}, "/v1/models/"),
    "gemini-v1beta": (
        "gemini",
        {"api_version": "v1beta"},
        {"options": {"api_version": "v1beta"}},
        "/v1beta/models/",
    ),
    "vertex-global": (
        "vertex",
        {"location": "global"},
        {"location": "global"},
        f"/v1beta1/projects/{PROJECT}/locations/global/publishers/google/models/",
    ),
    "vertex-region": (
        "vertex",
        {"location": "europe-west4", "project": "my-project-42"},
        {"location": "europe-west4", "project": "my-project-42"},
        "/v1beta1/projects/my-project-42/locations/europe-west4/publishers/google/models/",
    ),
    "express": ("express", {}, {}, "/v1beta1/publishers/google/models/"),
}

A = make_image("image/png", 21)
B = make_image("image/png", 22)
C = make_image("image/png", 23)
JPEG = make_image("image/jpeg", 24)
THOUGHT_IMAGE = make_image("image/png", 25)
TOKEN_BYTES = b"\xfb\xff\xbe-hop-1"  # base64 "+/++LWhvcC0x", URL-safe "-_--LWhvcC0x"


def _merged(base: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """``base`` (an :data:`APIS` entry's imagestream settings) with ``params``, options merged."""
    options = {**base.get("options", {}), **params.get("options", {})}
    fields = {name: value for name, value in base.items() if name != "options"}
    fields.update((name, value) for name, value in params.items() if name != "options")
    return {**fields, "options": options}


async def _both(
    server: GoogleServer,
    run_google: Any,
    scenario: Scenario | list[Scenario],
    name: str = "gemini-v1beta",
    *,
    whole: bool = False,
    sdk_config: Any = None,
    **params: Any,
) -> tuple[SdkResult, Any]:
    """The SDK's parse and imagestream's run of the same scripted answer(s)."""
    api, sdk_settings, own, _ = APIS[name]
    scenarios = scenario if isinstance(scenario, list) else [scenario]
    server.enqueue(*scenarios)
    call = sdk_generate if whole else sdk_stream
    sdk = await call(server.url, api=api, config=sdk_config, **sdk_settings)  # type: ignore[arg-type]
    server.enqueue(*scenarios)
    settings = _merged(own, params)
    if whole:
        settings["options"]["stream"] = False
    run = await run_google(api=api, **settings)
    return sdk, run


def _shown(sdk: SdkResult) -> list[tuple[Any, ...]]:
    """The SDK's parts that carry something to show (the empty finish part dropped)."""
    return [part for part in sdk.parts if part[0] not in ("text", "thought") or part[1]]


def _expected_usage(sdk_usage: dict[str, Any] | None) -> dict[str, Any]:
    """imagestream's :class:`~imagestream.Usage` numbers for the SDK's ``usageMetadata``."""
    assert sdk_usage is not None
    inputs = {d["modality"]: d["tokenCount"] for d in sdk_usage.get("promptTokensDetails", [])}
    outputs = {d["modality"]: d["tokenCount"] for d in sdk_usage.get("candidatesTokensDetails", [])}
    output = sdk_usage.get("candidatesTokenCount")
    text_out = outputs.get("TEXT")
    if text_out is None and output is not None and outputs:
        text_out = output - sum(outputs.values())  # details often list the image tokens only
    return {
        "input_tokens": sdk_usage.get("promptTokenCount"),
        "output_tokens": output,
        "total_tokens": sdk_usage.get("totalTokenCount"),
        "thought_tokens": sdk_usage.get("thoughtsTokenCount"),
        "output_image_tokens": outputs.get("IMAGE"),
        "output_text_tokens": text_out,
        "input_text_tokens": inputs.get("TEXT"),
    }


def _usage_numbers(chunk: imagestream.Usage) -> dict[str, Any]:
    return {name: getattr(chunk, name) for name in _expected_usage({})}


def _assert_same_success(sdk: SdkResult, run: Any, *, synthetic: bool = False) -> None:
    """imagestream succeeded with exactly what the SDK parsed, and the SDK saw STOP."""
    assert sdk.finish_reason == "STOP" and sdk.block_reason is None
    run.ok()
    assert run.parts == _shown(sdk)
    # Answer and thoughts separately, each in order.
    assert [p[1] for p in run.parts if p[0] == "text"] == [
        p[1] for p in _shown(sdk) if p[0] == "text"
    ]
    assert [p[1] for p in run.parts if p[0] == "thought"] == [
        p[1] for p in _shown(sdk) if p[0] == "thought"
    ]
    assert run.text == sdk.text
    assert run.images == sdk.images
    finals = [chunk for chunk in run.chunks if isinstance(chunk, imagestream.ImageFinal)]
    assert [chunk.sample for chunk in finals] == list(range(len(finals)))
    previews = [chunk for chunk in run.chunks if isinstance(chunk, imagestream.ImagePreview)]
    assert all(chunk.extra == {"thought": True} for chunk in previews)
    assert [chunk.index for chunk in previews] == list(range(len(previews)))
    # One usage, last, with the SDK's numbers.
    assert len(run.usages) == 1 and run.chunks[-1] is run.usages[0]
    assert _usage_numbers(run.usages[0]) == _expected_usage(sdk.usage)
    assert dict(run.usages[0].raw) == sdk.usage
    assert {chunk.synthetic for chunk in run.chunks} == {synthetic}
    assert run.result.text == sdk.text


def _b64(value: str) -> bytes:
    """Standard or URL-safe base64 (Google reads both; the SDK writes the URL-safe kind)."""
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        return base64.urlsafe_b64decode(value)


BASE64 = {"data", "continuationToken"}


def _normal(body: Any) -> Any:
    """A request body as Google reads it: lowerCamelCase names, base64 values decoded."""

    def walk(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {
                name: _b64(value) if name in BASE64 and isinstance(value, str) else walk(value)
                for name, value in obj.items()
            }
        if isinstance(obj, list):
            return [walk(item) for item in obj]
        return obj

    return walk(camel_keys(body))


def _auth(record: Recorded) -> tuple[str | None, str | None]:
    return record.headers.get("x-goog-api-key"), record.headers.get("authorization")


def _assert_same_request(ours: Recorded, sdks: Recorded, api: str, *, order: bool = True) -> None:
    assert ours.method == sdks.method == "POST"
    assert ours.path == sdks.path
    assert ours.query == sdks.query
    assert ours.query_string == sdks.query_string
    assert _normal(ours.json) == _normal(sdks.json)
    # The same order of names, too (what a byte-level comparison or a cache key would see).
    assert list(ours.json) == list(sdks.json) or not order
    if "generationConfig" in sdks.json:
        assert list(ours.json["generationConfig"]) == list(sdks.json["generationConfig"])
    assert ours.headers["content-type"] == sdks.headers["content-type"] == "application/json"
    assert _auth(ours) == _auth(sdks)
    if api == "vertex":
        assert _auth(ours) == (None, f"Bearer {TOKEN}")
    else:
        assert _auth(ours) == (KEY, None)
    for record in (ours, sdks):
        assert "key" not in record.query and KEY not in record.path + record.query_string


# -- answers: the same reading ---------------------------------------------------------

Events = Callable[[], list[dict[str, Any]]]
SCENARIOS: dict[str, tuple[Events, dict[str, Any], dict[str, Any] | None]] = {
    # name: (events, imagestream options, SDK config)
    "text-and-images-interleaved": (
        lambda: stream_events(
            text_part("Here is"),
            text_part(" an axolotl — ünïcödé 🦎"),
            image_part(A),
            text_part("\n\nAnd its teacup:"),
            image_part(B),
            text_part(" Enjoy."),
        ),
        {},
        None,
    ),
    "several-images-in-one-event": (
        lambda: stream_events(
            [text_part("Two at once:"), image_part(A), image_part(B)],
            [image_part(C), text_part("and a third.")],
        ),
        {},
        None,
    ),
    "thought-text-and-thought-image": (
        lambda: stream_events(
            text_part("**Planning**\n\nA pond first.", thought=True),
            image_part(THOUGHT_IMAGE, thought=True),
            text_part("**Refining**\n\nBrighter.", thought=True),
            [text_part("Done.", signature=b"sig-text"), image_part(A, signature=b"sig-image")],
        ),
        {"include_thoughts": True},
        {"thinking_config": {"include_thoughts": True}},
    ),
    "image-only": (
        lambda: stream_events(image_part(A)),
        {"image_only": True},
        {"response_modalities": ["IMAGE"]},
    ),
    "finish-on-the-last-part": (
        lambda: stream_events(text_part("Here:"), image_part(A), empty_final=False),
        {},
        None,
    ),
}


@pytest.mark.parametrize("name", ["gemini-v1beta", "vertex-global"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_streamed_answers_read_as_the_sdk_reads_them(
    google_server: GoogleServer, run_google: Any, scenario: str, name: str
) -> None:
    events, options, config = SCENARIOS[scenario]
    sdk, run = await _both(
        google_server,
        run_google,
        Scenario(events=events()),
        name,
        sdk_config=config,
        options=options,
    )
    _assert_same_success(sdk, run)
    assert sdk.images, "every scenario has an image"
    assert sdk.chunks == len(google_server.last.sent)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_whole_answers_read_as_the_sdk_reads_them(
    google_server: GoogleServer, run_google: Any, scenario: str
) -> None:
    # -o stream false: one generateContent call; the server merges the stream.
    events, options, config = SCENARIOS[scenario]
    sdk, run = await _both(
        google_server,
        run_google,
        Scenario(events=events()),
        "gemini-v1",
        whole=True,
        sdk_config=config,
        options=options,
    )
    _assert_same_success(sdk, run, synthetic=True)
    assert google_server.last.action == "generateContent" and google_server.last.query == {}


@pytest.mark.parametrize("whole", [False, True], ids=["stream", "whole"])
@pytest.mark.parametrize("name", list(APIS))
async def test_every_api_and_version(
    google_server: GoogleServer, run_google: Any, name: str, whole: bool
) -> None:
    events, _, _ = SCENARIOS["text-and-images-interleaved"]
    sdk, run = await _both(google_server, run_google, Scenario(events=events()), name, whole=whole)
    _assert_same_success(sdk, run, synthetic=whole)
    sdk_record, own = google_server.requests
    prefix = APIS[name][3]
    method = "generateContent" if whole else "streamGenerateContent"
    assert own.path == sdk_record.path == f"{prefix}gemini-2.5-flash-image:{method}"
    if APIS[name][0] != "gemini":
        # Vertex-shaped events: trafficType in the usage imagestream keeps as sent.
        assert run.usages[0].raw["trafficType"] == "ON_DEMAND"


async def test_jpeg_output_on_vertex(google_server: GoogleServer, run_google: Any) -> None:
    scenario = Scenario(events=stream_events(text_part("In JPEG:"), image_part(JPEG, "image/jpeg")))
    sdk, run = await _both(
        google_server,
        run_google,
        scenario,
        "vertex-region",
        sdk_config={
            "response_modalities": ["TEXT", "IMAGE"],
            "image_config": {"output_mime_type": "image/jpeg", "output_compression_quality": 70},
        },
        output_format="jpeg",
        options={"output_compression": 70},
    )
    _assert_same_success(sdk, run)
    assert run.images == [("image/jpeg", JPEG)]
    sdk_record, own = google_server.requests
    _assert_same_request(own, sdk_record, "vertex")


@pytest.mark.parametrize("separator", [CRLF, LF], ids=["crlf", "lf"])
@pytest.mark.parametrize("name", ["gemini-v1", "express"])
async def test_event_separators(
    google_server: GoogleServer, run_google: Any, separator: str, name: str
) -> None:
    events, _, _ = SCENARIOS["text-and-images-interleaved"]
    google_server.max_piece = 97  # events and separators split across reads
    sdk, run = await _both(
        google_server, run_google, Scenario(events=events(), separator=separator), name
    )
    _assert_same_success(sdk, run)


@pytest.mark.parametrize(
    ("name", "shape"),
    [("gemini-v1beta", "vertex"), ("vertex-global", "gemini")],
    ids=["vertex-shaped-on-gemini", "gemini-shaped-on-vertex"],
)
async def test_either_event_shape_on_either_api(
    google_server: GoogleServer, run_google: Any, name: str, shape: str
) -> None:
    # A gateway may put one API's bytes behind the other's URL: both read either shape.
    events, _, _ = SCENARIOS["thought-text-and-thought-image"]
    if shape == "vertex":
        shaped = [vertex_shape(event, "2026-03-21T18:11:55.919086Z") for event in events()]
        scenario = Scenario(events=shaped)
    else:
        scenario = Scenario(events=events(), adapt=False)
    sdk, run = await _both(
        google_server,
        run_google,
        scenario,
        name,
        sdk_config={"thinking_config": {"include_thoughts": True}},
        options={"include_thoughts": True},
    )
    _assert_same_success(sdk, run)


async def test_usage_without_details(google_server: GoogleServer, run_google: Any) -> None:
    # Only totals: imagestream reports no split it was not given.
    bare = {"promptTokenCount": 4, "candidatesTokenCount": 1300, "totalTokenCount": 1304}
    events = [
        response(text_part("Hi."), usage_metadata=bare),
        response(image_part(A), finish="STOP", usage_metadata=bare),
    ]
    sdk, run = await _both(google_server, run_google, Scenario(events=events), "vertex-global")
    _assert_same_success(sdk, run)
    assert run.usages[0].output_image_tokens is None and run.usages[0].input_text_tokens is None


# -- how a reply ends -------------------------------------------------------------------

POLICY = [
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_RECITATION",
    "MODEL_ARMOR",
]
NOT_DRAWN = ["NO_IMAGE", "IMAGE_OTHER", "STOP", "MAX_TOKENS", "OTHER", "LANGUAGE"]
MESSAGE = "Unable to show the generated image."


def _refusal(reason: str) -> Scenario:
    return Scenario(
        events=stream_events(
            text_part("I can't"),
            text_part(" draw that.\n"),
            finish=reason,
            finish_message=MESSAGE,
            empty_final=False,
        )
    )


@pytest.mark.parametrize("name", ["gemini-v1beta", "vertex-global"])
@pytest.mark.parametrize("reason", POLICY)
async def test_policy_finish_reasons(
    google_server: GoogleServer, run_google: Any, reason: str, name: str
) -> None:
    sdk, run = await _both(google_server, run_google, _refusal(reason), name)
    assert sdk.finish_reason == reason
    error = run.error
    assert type(error) is imagestream.ContentPolicyError
    assert error.code == sdk.finish_reason
    assert MESSAGE in error.message  # imagestream reads finishMessage on both APIs
    if APIS[name][0] == "vertex":
        assert sdk.finish_message == MESSAGE
    else:
        assert sdk.finish_message is None  # the SDK's Gemini converter drops it
    # What arrived before the refusal is what the SDK read, kept in the error.
    assert run.parts == _shown(sdk)
    assert error.partial is not None and error.partial.text == sdk.text
    assert run.usages == []


@pytest.mark.parametrize("whole", [False, True], ids=["stream", "whole"])
@pytest.mark.parametrize("name", ["gemini-v1", "vertex-global"])
@pytest.mark.parametrize("reason", NOT_DRAWN)
async def test_finished_without_an_image(
    google_server: GoogleServer, run_google: Any, reason: str, name: str, whole: bool
) -> None:
    sdk, run = await _both(google_server, run_google, _refusal(reason), name, whole=whole)
    assert sdk.finish_reason == reason and sdk.images == []
    error = run.error
    assert type(error) is imagestream.NoImageError
    assert error.finish_reason == error.code == sdk.finish_reason
    assert error.text == sdk.text.strip() == "I can't draw that."
    assert run.parts == _shown(sdk)


@pytest.mark.parametrize("reason", ["MAX_TOKENS", "OTHER"])
async def test_an_image_makes_any_other_finish_a_success(
    google_server: GoogleServer, run_google: Any, reason: str
) -> None:
    scenario = Scenario(events=stream_events(text_part("Cut short"), image_part(A), finish=reason))
    sdk, run = await _both(google_server, run_google, scenario, "vertex-global")
    assert sdk.finish_reason == reason
    run.ok()
    assert run.parts == _shown(sdk) and run.images == sdk.images
    assert _usage_numbers(run.usages[0]) == _expected_usage(sdk.usage)


@pytest.mark.parametrize("name", ["gemini-v1beta", "express"])
async def test_finish_without_content(
    google_server: GoogleServer, run_google: Any, name: str
) -> None:
    scenario = Scenario(events=[response(finish="IMAGE_SAFETY", usage_metadata=usage())])
    sdk, run = await _both(google_server, run_google, scenario, name)
    assert (sdk.parts, sdk.finish_reason) == ([], "IMAGE_SAFETY")
    assert isinstance(run.error, imagestream.ContentPolicyError)
    assert run.error.code == "IMAGE_SAFETY" and run.chunks == []


@pytest.mark.parametrize("whole", [False, True], ids=["stream", "whole"])
@pytest.mark.parametrize("name", ["gemini-v1", "vertex-region"])
@pytest.mark.parametrize("reason", ["PROHIBITED_CONTENT", "SAFETY", "BLOCKLIST", "OTHER"])
async def test_blocked_prompt(
    google_server: GoogleServer, run_google: Any, reason: str, name: str, whole: bool
) -> None:
    sdk, run = await _both(
        google_server, run_google, Scenario(events=[blocked(reason)]), name, whole=whole
    )
    assert sdk.block_reason == reason and sdk.parts == [] and sdk.finish_reason is None
    assert type(run.error) is imagestream.ContentPolicyError
    assert run.error.code == sdk.block_reason
    assert run.chunks == []


# -- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (400, imagestream.InvalidRequestError),
        (403, imagestream.AuthenticationError),
        (404, imagestream.InvalidRequestError),
        (429, imagestream.RateLimitError),
        (500, imagestream.ServerError),
        (503, imagestream.ServerError),
    ],
)
@pytest.mark.parametrize("name", ["gemini-v1", "vertex-global"])
async def test_http_errors(
    google_server: GoogleServer,
    run_google: Any,
    no_retry: Any,
    code: int,
    kind: type[imagestream.ProviderError],
    name: str,
) -> None:
    api, sdk_settings, own, _ = APIS[name]
    failure = error_scenario(code, "scripted failure", retry_delay="7.5s")
    google_server.enqueue(failure, failure)
    with pytest.raises(errors.APIError) as caught:
        await sdk_stream(google_server.url, api=api, **sdk_settings)  # type: ignore[arg-type]
    sdk_error = caught.value
    run = await run_google(api=api, pipeline=no_retry, **own)
    error = run.error
    assert type(error) is kind
    assert error.status == sdk_error.code == code
    assert error.code == sdk_error.status
    assert sdk_error.message is not None and sdk_error.message in error.message
    assert error.retry_after == 7.5  # RetryInfo.retryDelay, which the SDK leaves in details
    assert run.chunks == [] and len(google_server.requests) == 2


@pytest.mark.parametrize("after", [True, False], ids=["more-after", "at-the-end"])
@pytest.mark.parametrize("framing", ["event", "lines"])
@pytest.mark.parametrize(
    ("code", "kind"), [(500, imagestream.ServerError), (429, imagestream.RateLimitError)]
)
async def test_error_object_mid_stream(
    google_server: GoogleServer,
    run_google: Any,
    framing: str,
    code: int,
    kind: type[imagestream.ProviderError],
    after: bool,
) -> None:
    # Google may abort a started stream with its error envelope, as an event or as
    # indented JSON lines outside SSE framing (which the SDK gathers by brace
    # counting). Either way the SDK raises at the error and reads nothing after it.
    error_object = google_error(code, "broke mid-way", retry_delay="2s")
    events: list[Any] = stream_events(text_part("one"), text_part("two"), finish=None)
    events.append(error_object if framing == "event" else error_lines(error_object))
    if after:
        events.append(response(text_part("never seen"), finish="STOP"))
    scenario = Scenario(events=events)
    google_server.enqueue(scenario)
    sdk = await sdk_stream(google_server.url, partial=True)
    assert isinstance(sdk.error, errors.APIError)
    google_server.enqueue(scenario)
    run = await run_google()
    assert type(run.error) is kind
    assert (run.error.status, run.error.code) == (sdk.error.code, sdk.error.status)
    assert sdk.error.message == "broke mid-way" and "broke mid-way" in run.error.message
    assert run.error.retry_after == 2.0
    assert run.parts == _shown(sdk) == [("text", "one"), ("text", "two")]
    assert run.error.partial is not None and run.error.partial.text == "onetwo"


@pytest.mark.parametrize("piece", [1, 7])
@pytest.mark.parametrize("separator", [CRLF, LF], ids=["crlf", "lf"])
async def test_error_lines_split_anywhere(
    google_server: GoogleServer, run_google: Any, separator: str, piece: int
) -> None:
    # The body arrives in writes of at most 1 or 7 bytes; an image line before the
    # error lines is never mistaken for them.
    error_object = google_error(503, 'overloaded: {"braces": "in a string"}')
    events: list[Any] = stream_events(image_part(A), finish=None)
    events.append(
        error_lines(error_object).replace(b"\n", separator[: len(separator) // 2].encode())
    )
    scenario = Scenario(events=events, separator=separator)
    google_server.max_piece = piece
    google_server.enqueue(scenario)
    sdk = await sdk_stream(google_server.url, partial=True)
    google_server.enqueue(scenario)
    run = await run_google()
    assert isinstance(sdk.error, errors.ServerError) and sdk.error.code == 503
    assert type(run.error) is imagestream.ServerError and run.error.status == 503
    assert sdk.error.message is not None and sdk.error.message in run.error.message
    assert run.parts == _shown(sdk) == [("image", "image/png", A)]


async def test_stray_json_lines_are_no_error(google_server: GoogleServer, run_google: Any) -> None:
    # Lines outside events that hold no error object are skipped, as SSE skips them.
    events: list[Any] = [b'{\n  "note": "not an error"\n}\n', *stream_events(image_part(A))]
    google_server.stream(*events)
    run = (await run_google()).ok()
    assert run.images == [("image/png", A)]


# -- continuation -----------------------------------------------------------------------


@pytest.mark.parametrize("whole", [False, True], ids=["stream", "whole"])
@pytest.mark.parametrize("name", ["gemini-v1beta", "vertex-global"])
async def test_continuation_is_followed_like_the_sdk(
    google_server: GoogleServer, run_google: Any, name: str, whole: bool
) -> None:
    first = Scenario(
        events=[
            response(text_part("First half."), usage_metadata=usage(9, 3)),
            response(
                finish="CONTINUATION", continuation_token=TOKEN_BYTES, usage_metadata=usage(9, 3)
            ),
        ]
    )
    second = Scenario(events=stream_events(text_part("Second half."), image_part(A), prompt=9))
    sdk, run = await _both(
        google_server,
        run_google,
        [first, second],
        name,
        whole=whole,
        sdk_config={"response_modalities": ["TEXT", "IMAGE"]},
    )
    _assert_same_success(sdk, run, synthetic=whole)
    assert run.parts == [
        ("text", "First half."),
        ("text", "Second half."),
        ("image", "image/png", A),
    ]
    sdk_first, sdk_second, own_first, own_second = google_server.requests
    token = base64.b64encode(TOKEN_BYTES).decode()
    assert "continuationToken" not in own_first.json
    # imagestream sends the token as it came; the SDK decodes it and re-encodes it
    # URL-safe (Google reads both), and puts it before generationConfig.
    assert own_second.json == {**own_first.json, "continuationToken": token}
    assert sdk_second.json["continuationToken"] == base64.urlsafe_b64encode(TOKEN_BYTES).decode()
    _assert_same_request(own_first, sdk_first, APIS[name][0])
    _assert_same_request(own_second, sdk_second, APIS[name][0], order=False)
    # Usage is summed over the hops, as the SDK sums it.
    assert run.usages[0].input_tokens == 18


# -- requests: the same settings, the same request ----------------------------------------

REQUESTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # name: (SDK GenerateContentConfig fields, imagestream fields and options)
    "plain": ({}, {}),
    "size-as-ratio": ({"image_config": {"aspect_ratio": "16:9"}}, {"size": "1920x1080"}),
    "aspect-ratio": ({"image_config": {"aspect_ratio": "21:9"}}, {"aspect_ratio": "21:9"}),
    "image-size": ({"image_config": {"image_size": "1K"}}, {"image_size": "1K"}),
    "ratio-and-image-size": (
        {"image_config": {"aspect_ratio": "3:4", "image_size": "1K"}},
        {"size": "3:4", "image_size": "1k"},
    ),
    "temperature-and-seed": ({"temperature": 0.4, "seed": 7}, {"temperature": 0.4, "seed": 7}),
    "system-instruction": (
        {"system_instruction": "Draw in watercolour."},
        {"system_instruction": "Draw in watercolour."},
    ),
    "safety-settings": (
        {
            "safety_settings": [
                {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"},
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "threshold": "BLOCK_NONE"},
            ]
        },
        {"safety_settings": {"harassment": "block_only_high", "dangerous_content": "none"}},
    ),
    "safety-settings-as-list": (
        {
            "safety_settings": [
                {"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_LOW_AND_ABOVE"}
            ]
        },
        {
            "safety_settings": [
                {"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_LOW_AND_ABOVE"}
            ]
        },
    ),
    "include-thoughts": (
        {"thinking_config": {"include_thoughts": True}},
        {"include_thoughts": True},
    ),
    "image-only": ({"response_modalities": ["IMAGE"]}, {"image_only": True}),
    "everything": (
        {
            "system_instruction": "Draw in watercolour.",
            "temperature": 1.5,
            "seed": 2_147_483_647,
            "response_modalities": ["IMAGE"],
            "thinking_config": {"include_thoughts": True},
            "image_config": {"aspect_ratio": "9:16"},
            "safety_settings": [
                {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "threshold": "OFF"}
            ],
        },
        {
            "system_instruction": "Draw in watercolour.",
            "temperature": 1.5,
            "seed": 2_147_483_647,
            "image_only": True,
            "include_thoughts": True,
            "size": "576x1024",
            "safety_settings": {"sexually_explicit": "off"},
        },
    ),
}
FIELDS = {"size", "seed", "output_format", "model"}


def _imagestream_params(settings: dict[str, Any]) -> dict[str, Any]:
    """Request fields stay fields; everything else goes into ``options``."""
    params = {name: value for name, value in settings.items() if name in FIELDS}
    params["options"] = {name: value for name, value in settings.items() if name not in FIELDS}
    return params


async def _requests(
    server: GoogleServer,
    run_google: Any,
    name: str,
    sdk_config: dict[str, Any],
    settings: dict[str, Any],
    *,
    whole: bool = False,
    prompt: Any = PROMPT,
    model: str | None = None,
) -> tuple[Recorded, Recorded]:
    """(imagestream's request, the SDK's request) for the same settings; both succeed."""
    api, sdk_settings, own, _ = APIS[name]
    config = {"response_modalities": ["TEXT", "IMAGE"], **sdk_config}
    extra = {"model": model} if model else {}
    sdk_record = await sdk_request(
        server,
        kind="generate" if whole else "stream",
        api=api,
        prompt=prompt,
        config=types.GenerateContentConfig.model_validate(config),
        **extra,
        **sdk_settings,
    )
    params = _merged(own, _imagestream_params(settings))
    if whole:
        params["options"]["stream"] = False
    if model:
        params["model"] = model
    run = await run_google(api=api, **params)
    run.ok()
    assert run.images, "the server's default answer has an image"
    return server.last, sdk_record


@pytest.mark.parametrize("name", ["gemini-v1", "vertex-global"])
@pytest.mark.parametrize("case", list(REQUESTS))
async def test_requests_equal_the_sdks(
    google_server: GoogleServer, run_google: Any, case: str, name: str
) -> None:
    sdk_config, settings = REQUESTS[case]
    ours, sdks = await _requests(google_server, run_google, name, sdk_config, settings)
    _assert_same_request(ours, sdks, APIS[name][0])
    assert ours.query == {"alt": "sse"} and ours.headers["accept"] == "text/event-stream"


@pytest.mark.parametrize("whole", [False, True], ids=["stream", "whole"])
@pytest.mark.parametrize("name", list(APIS))
async def test_every_api_sends_what_the_sdk_sends(
    google_server: GoogleServer, run_google: Any, name: str, whole: bool
) -> None:
    sdk_config, settings = REQUESTS["everything"]
    ours, sdks = await _requests(google_server, run_google, name, sdk_config, settings, whole=whole)
    _assert_same_request(ours, sdks, APIS[name][0])
    assert ours.action == ("generateContent" if whole else "streamGenerateContent")
    assert ours.query == ({} if whole else {"alt": "sse"})


@pytest.mark.parametrize("name", ["gemini-v1beta", "vertex-global", "express"])
async def test_image_size_on_gemini_3_pro(
    google_server: GoogleServer, run_google: Any, name: str
) -> None:
    ours, sdks = await _requests(
        google_server,
        run_google,
        name,
        {"image_config": {"aspect_ratio": "4:3", "image_size": "4K"}},
        {"size": "4K", "aspect_ratio": "4:3"},
        model="gemini-3-pro-image-preview",
    )
    _assert_same_request(ours, sdks, APIS[name][0])
    assert ours.model == "gemini-3-pro-image-preview"


@pytest.mark.parametrize("name", ["gemini-v1", "vertex-region", "express"])
async def test_input_images(
    google_server: GoogleServer, run_google: Any, png: bytes, jpeg: bytes, name: str
) -> None:
    prompt = [
        PROMPT,
        types.Part.from_bytes(data=png, mime_type="image/png"),
        types.Part.from_bytes(data=jpeg, mime_type="image/jpeg"),
    ]
    ours, sdks = await _requests(
        google_server, run_google, name, {}, {"image": [png, jpeg]}, prompt=prompt
    )
    _assert_same_request(ours, sdks, APIS[name][0])
    parts = ours.json["contents"][0]["parts"]
    assert [_b64(part["inlineData"]["data"]) for part in parts[1:]] == [png, jpeg]
    # imagestream writes standard base64; the SDK the URL-safe kind.
    assert parts[1]["inlineData"]["data"] == base64.b64encode(png).decode()


@pytest.mark.parametrize(
    ("sdk_image_config", "settings"),
    [
        (
            {"output_mime_type": "image/jpeg", "output_compression_quality": 85},
            {"output_format": "jpeg", "output_compression": 85},
        ),
        ({"output_mime_type": "image/webp"}, {"output_format": "webp"}),
        ({"output_mime_type": "image/png"}, {"output_format": "png"}),
        ({"person_generation": "ALLOW_NONE"}, {"person_generation": "dont_allow"}),
        (
            {
                "aspect_ratio": "16:9",
                "person_generation": "ALLOW_ADULT",
                "output_mime_type": "image/jpeg",
                "output_compression_quality": 0,
            },
            {
                "size": "16:9",
                "person_generation": "allow_adult",
                "output_format": "jpg",
                "output_compression": 0,
            },
        ),
    ],
    ids=["jpeg-85", "webp", "png", "no-people", "all-together"],
)
@pytest.mark.parametrize("name", ["vertex-global", "vertex-region", "express"])
async def test_vertex_image_output_options(
    google_server: GoogleServer,
    run_google: Any,
    sdk_image_config: dict[str, Any],
    settings: dict[str, Any],
    name: str,
) -> None:
    ours, sdks = await _requests(
        google_server, run_google, name, {"image_config": sdk_image_config}, settings
    )
    _assert_same_request(ours, sdks, APIS[name][0])


# -- Imagen :predict ----------------------------------------------------------------------


def _imagen_normal(body: Any) -> Any:
    """An Imagen body with ``personGeneration`` compared without case (see the module doc)."""
    body = camel_keys(body)
    parameters = dict(body["parameters"])
    if "personGeneration" in parameters:
        parameters["personGeneration"] = parameters["personGeneration"].lower()
    return {**body, "parameters": parameters}


@pytest.mark.parametrize("name", ["vertex-global", "vertex-region", "express"])
async def test_imagen_predict(google_server: GoogleServer, run_google: Any, name: str) -> None:
    api, sdk_settings, own, prefix = APIS[name]
    answer = Scenario(
        body=predict_body(
            prediction(A),
            filtered("39322892"),
            prediction(JPEG, "image/jpeg", prompt="An axolotl, watercolour, in a teacup"),
        )
    )
    google_server.enqueue(answer, answer)
    sdk = await sdk_images(
        google_server.url,
        api=api,  # type: ignore[arg-type]
        config=types.GenerateImagesConfig(
            number_of_images=3,
            aspect_ratio="16:9",
            negative_prompt="blurry",
            seed=42,
            add_watermark=False,
            enhance_prompt=True,
            image_size="2K",
            person_generation=types.PersonGeneration.ALLOW_ADULT,
            output_mime_type="image/jpeg",
            output_compression_quality=80,
        ),
        **sdk_settings,
    )
    params = _merged(
        own,
        {
            "model": IMAGEN_MODEL,
            "n": 3,
            "size": "1600x900",
            "negative_prompt": "blurry",
            "seed": 42,
            "output_format": "jpeg",
            "options": {
                "add_watermark": False,
                "enhance_prompt": True,
                "image_size": "2K",
                "person_generation": "allow_adult",
                "output_compression": 80,
            },
        },
    )
    run = (await run_google(api=api, **params)).ok()
    assert run.images == sdk.images == [("image/png", A), ("image/jpeg", JPEG)]
    finals = [chunk for chunk in run.chunks if isinstance(chunk, imagestream.ImageFinal)]
    assert [chunk.revised_prompt for chunk in finals if chunk.revised_prompt] == (
        sdk.enhanced_prompts
    )
    assert [chunk.sample for chunk in finals] == [0, 1]
    sdks, ours = google_server.requests
    assert ours.path == sdks.path == f"{prefix}{IMAGEN_MODEL}:predict"
    assert ours.query == sdks.query == {}
    assert _imagen_normal(ours.json) == _imagen_normal(sdks.json)
    assert ours.json["parameters"]["personGeneration"] == "allow_adult"
    assert sdks.json["parameters"]["personGeneration"] == "ALLOW_ADULT"
    assert _auth(ours) == _auth(sdks)


async def test_imagen_every_image_filtered(google_server: GoogleServer, run_google: Any) -> None:
    answer = Scenario(body=predict_body(filtered("39322892"), filtered("56562880")))
    google_server.enqueue(answer, answer)
    sdk = await sdk_images(
        google_server.url, config=types.GenerateImagesConfig(include_rai_reason=True)
    )
    assert sdk.images == [] and sdk.filtered == ["39322892", "56562880"]
    run = await run_google(api="vertex", model=IMAGEN_MODEL)
    assert type(run.error) is imagestream.ContentPolicyError
    assert all(reason in run.error.message for reason in sdk.filtered)
