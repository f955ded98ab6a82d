"""The model table and options against the official SDK's types, which are the judge.

Models, retired models, qualities and output formats are read from the
installed ``openai`` package (``types/image_model.py``, the image parameter
types and the stream event types): when a newer SDK adds a model or retires
one, these tests fail until the table follows. Stream events are built with
the SDK's own pydantic models and fed through the plugin's parsers.
"""

from __future__ import annotations

import base64
import datetime
import inspect
import io
import json
import re
import typing
import warnings
from pathlib import Path
from typing import Any

import pytest
from _openai_server import OpenAIServer, Script, b64_image
from _support import collect, kinds
from openai.types import (
    ImageEditPartialImageEvent,
    ImageGenCompletedEvent,
    ImageGenPartialImageEvent,
    image_generate_params,
    image_model,
)
from openai.types.responses import ResponseImageGenCallPartialImageEvent
from openai.types.responses.tool import ImageGeneration

import imagestream
from imagestream import ImageFinal, ImagePreview, ImageRequest
from imagestream.errors import ConfigurationError, ValidationError
from imagestream_openai import OPTIONS, OpenAIProvider, RetiredModelWarning
from imagestream_openai._events import ImagesEvents, ResponsesEvents
from imagestream_openai._models import (
    MODELS,
    NO_STREAM_FORMATS,
    OUTPUT_FORMATS,
    STREAM_FORMATS,
    spec_for,
)
from imagestream_openai._options import Settings

KEY = "sk-test-model-table"
README = Path(__file__).resolve().parents[1] / "README.md"


def literal_values(annotation: Any) -> set[str]:
    """The strings of a ``Literal`` (inside ``Optional``/``Union`` too)."""
    if typing.get_origin(annotation) is typing.Literal:
        return {value for value in typing.get_args(annotation) if isinstance(value, str)}
    return set().union(*(literal_values(arg) for arg in typing.get_args(annotation)))


def sdk_param(name: str) -> set[str]:
    hints = typing.get_type_hints(image_generate_params.ImageGenerateParamsBase)
    return literal_values(hints[name])


def sdk_retired() -> dict[str, str]:
    """``{model: date}`` from the "Deprecated values" of the SDK's ``ImageModel``."""
    source = inspect.getsource(image_model)
    deprecated = source.split("Deprecated values:", 1)[1]
    retired = {}
    for line in re.findall(r"^- (.+?)(?=^- |\Z)", deprecated, flags=re.M | re.S):
        names, _, text = line.partition(":")
        when = re.search(r"(?:shut down|retired) on (\w+ \d+, \d{4})", " ".join(text.split()))
        assert when is not None, line
        date = datetime.datetime.strptime(when.group(1), "%B %d, %Y").date().isoformat()
        retired.update((name, date) for name in re.findall(r'"([^"]+)"', names))
    return retired


def settings_of(**fields: Any) -> Settings:
    fields.setdefault("api_key", KEY)
    options = fields.pop("options", {})
    request = ImageRequest(prompt=fields.pop("prompt", "a red circle"), options=options, **fields)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RetiredModelWarning)
        settings: Settings = OpenAIProvider().validate(request).settings
    return settings


# -- the table against the SDK -------------------------------------------------


def test_the_models_are_the_sdks() -> None:
    ids = [model.id for model in MODELS]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(typing.get_args(image_model.ImageModel))
    # The Responses API's image tool takes the GPT image models.
    tool_models = literal_values(ImageGeneration.model_fields["model"].annotation)
    assert tool_models == {model for model in ids if spec_for(model).gpt_image}


def test_retired_models_are_the_sdks_deprecated_ones() -> None:
    retired = sdk_retired()
    assert set(retired) == {"gpt-image-1", "dall-e-2", "dall-e-3"}
    assert {
        model.id: spec_for(model.id).retired for model in MODELS if spec_for(model.id).retired
    } == (retired)
    # Listed as retired, and never the default.
    for model in MODELS:
        assert ("retired" in model.description) == (model.id in retired)
    assert OpenAIProvider.default_model not in retired


def test_qualities_sizes_and_formats_are_the_sdks() -> None:
    qualities = sdk_param("quality")
    for model in MODELS:
        spec = spec_for(model.id)
        assert spec.qualities is None or set(spec.qualities) <= qualities, model.id
    # gpt-image-2.5 (and its snapshots) also take xhigh and max; older models do not.
    for model in (
        "gpt-image-2.5-sunburst",
        "gpt-image-2.5-flare",
        "gpt-image-2.5-sunburst-2026-09-08",
        "gpt-image-2.5-flare-2026-09-08",
    ):
        assert {"xhigh", "max"} <= set(spec_for(model).qualities or ()), model
        assert spec_for(model).free_size
    for model in ("gpt-image-1.5", "gpt-image-1-mini", "gpt-image-2", "gpt-image-2-2026-04-21"):
        assert "xhigh" not in (spec_for(model).qualities or ("xhigh",)), model
    # Streamed formats are the partial image events' output_format; the others come whole.
    for event in (ImageGenPartialImageEvent, ImageEditPartialImageEvent):
        assert literal_values(event.model_fields["output_format"].annotation) == set(STREAM_FORMATS)
    assert sdk_param("output_format") == {*OUTPUT_FORMATS, "svg"}
    assert set(NO_STREAM_FORMATS) == set(OUTPUT_FORMATS) - set(STREAM_FORMATS) == {"gif"}
    assert sdk_param("background") == {"transparent", "opaque", "auto"}
    assert sdk_param("moderation") == {"low", "auto"}
    assert sdk_param("complexity") == {"low", "medium", "high"}


def test_every_option_is_described() -> None:
    assert set(OpenAIProvider.options) == set(OPTIONS)
    assert OpenAIProvider.options["frame_count"] == {
        "type": "integer",
        "min": 2,
        "max": 16,
        "description": OPTIONS["frame_count"],
    }


# -- retired models are sent, with a warning ------------------------------------


@pytest.mark.parametrize(
    ("model", "replacement"),
    [
        ("gpt-image-1", "gpt-image-2.5-sunburst or gpt-image-2.5-flare"),
        ("dall-e-3", "a GPT image model"),
        ("dall-e-2", "a GPT image model"),
    ],
)
async def test_a_retired_model_is_sent_with_a_warning(
    server: OpenAIServer, model: str, replacement: str
) -> None:
    with pytest.warns(RetiredModelWarning, match=rf"{model} was retired on 2026-.*{replacement}"):
        chunks = await collect(server, model=model)
    assert "ImageFinal" in kinds(chunks)
    (sent,) = server.requests
    assert sent.json["model"] == model


def test_the_warning_is_shown_by_default_and_can_be_silenced() -> None:
    # A DeprecationWarning would be hidden outside __main__; this one is for users.
    assert issubclass(RetiredModelWarning, FutureWarning)
    assert not issubclass(RetiredModelWarning, DeprecationWarning)
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("default")
        OpenAIProvider().validate(ImageRequest(prompt="x", model="dall-e-3", api_key=KEY))
    assert [warning.category for warning in caught] == [RetiredModelWarning]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=RetiredModelWarning)
        OpenAIProvider().validate(ImageRequest(prompt="x", model="dall-e-3", api_key=KEY))
    # A snapshot of a retired model is retired too; current models do not warn.
    assert spec_for("dall-e-3-2024-01-01").retired == "2026-05-12"
    settings_of(model="gpt-image-1.5")


# -- options per model ------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "params"),
    [
        (
            {"model": "gpt-image-2.5-sunburst", "quality": "xhigh", "size": "3840x2160"},
            {"quality": "xhigh", "size": "3840x2160"},
        ),
        ({"model": "gpt-image-2.5-flare-2026-09-08", "quality": "MAX"}, {"quality": "max"}),
        ({"model": "gpt-image-2.5-flare", "size": "1536x864"}, {"size": "1536x864"}),
        # 2.6: the SDK lists no sizes or qualities yet, so the server judges them.
        (
            {"model": "gpt-image-2.6-sunburst", "quality": "xhigh", "size": "1000x1000"},
            {"quality": "xhigh", "size": "1000x1000"},
        ),
        (
            {"model": "gpt-image-2", "options": {"complexity": "high"}},
            {"complexity": "high"},
        ),
        (
            {
                "model": "gpt-image-2.5-sunburst",
                "output_format": "gif",
                "options": {"frame_count": 12, "frame_duration_ms": 120},
            },
            {"output_format": "gif", "frame_count": 12, "frame_duration_ms": 120},
        ),
    ],
)
def test_accepted_per_model(fields: dict[str, Any], params: dict[str, Any]) -> None:
    assert dict(settings_of(**fields).params) == params


@pytest.mark.parametrize(
    ("fields", "error", "match"),
    [
        ({"model": "gpt-image-2", "quality": "xhigh"}, ValidationError, "got 'xhigh'"),
        ({"model": "gpt-image-1.5", "quality": "max"}, ValidationError, "got 'max'"),
        ({"model": "gpt-image-2.5-sunburst", "size": "1000x1000"}, ValidationError, "16"),
        ({"model": "gpt-image-2.5-flare", "size": "3840x3840"}, ValidationError, "3840x2160"),
        ({"model": "gpt-image-1.5", "size": "1536x864"}, ValidationError, "sizes"),
        ({"output_format": "svg"}, ValidationError, "svg"),
        ({"output_format": "tiff"}, ConfigurationError, "gif, jpeg, png, webp"),
        (
            {"output_format": "gif", "options": {"stream": True}},
            ValidationError,
            "gif output cannot be streamed",
        ),
        ({"output_format": "gif", "partial_images": 0}, ValidationError, "gif output has no"),
        (
            {"output_format": "gif", "partial_images": 1, "options": {"api": "responses"}},
            ValidationError,
            "gif output has no partial images",
        ),
        (
            {"output_format": "gif", "options": {"output_compression": 50}},
            ValidationError,
            "jpeg and webp",
        ),
        ({"options": {"frame_count": 4}}, ValidationError, "gif output only"),
        (
            {"output_format": "gif", "options": {"frame_count": 17}},
            ValidationError,
            "between 2 and 16",
        ),
        ({"options": {"complexity": "extreme"}}, ConfigurationError, "complexity"),
        ({"model": "dall-e-3", "options": {"complexity": "low"}}, ValidationError, "complexity"),
    ],
)
def test_refused_per_model(fields: dict[str, Any], error: type[Exception], match: str) -> None:
    fields.setdefault("api_key", KEY)
    options = fields.pop("options", {})
    request = ImageRequest(prompt="a red circle", options=options, **fields)
    with pytest.raises(error, match=match):
        OpenAIProvider().validate(request)


def test_gif_output_comes_whole() -> None:
    # Not streamed by default on the Images API; the Responses API streams its
    # other events and sends the gif whole (no partial images).
    assert settings_of(output_format="gif").stream is False
    assert settings_of(output_format="png").stream is True
    responses = settings_of(output_format="gif", partial_images=0, options={"api": "responses"})
    assert responses.stream is True and responses.params["partial_images"] == 0


def test_gif_edits_take_no_mask() -> None:
    png = base64.b64decode(b64_image("png"))
    with pytest.raises(ValidationError, match="gif output cannot use a mask"):
        settings_of(output_format="gif", options={"image": png, "mask": png})
    assert settings_of(output_format="gif", options={"image": png}).params == {
        "output_format": "gif"
    }


def test_input_fidelity_per_model() -> None:
    png = base64.b64decode(b64_image("png"))
    # The SDK documents no rule for 2.5 and 2.6: not checked locally.
    for model in ("gpt-image-2.5-sunburst", "gpt-image-2.6-flare"):
        fidelity = settings_of(model=model, options={"image": png, "input_fidelity": "high"})
        assert fidelity.params == {"input_fidelity": "high"}
    with pytest.raises(ValidationError, match="omit it"):
        settings_of(model="gpt-image-2-2026-04-21", options={"image": png, "input_fidelity": "low"})


def test_pricing_of_the_new_models() -> None:
    provider = OpenAIProvider()
    # Snapshots are priced like their base model; no price was confirmed for 2.5 and 2.6.
    assert provider.pricing("gpt-image-2-2026-04-21") == provider.pricing("gpt-image-2") is not None
    for model in (
        "gpt-image-2.5-sunburst",
        "gpt-image-2.5-flare-2026-09-08",
        "gpt-image-2.6-flare",
    ):
        assert provider.pricing(model) is None
    dalle = provider.pricing("dall-e-2")
    assert dalle is not None and dalle.per_image == 0.02


# -- events built with the SDK's models -------------------------------------------


def event(model: Any) -> Any:
    """An SDK event as the server sends it: its JSON, parsed."""
    return json.loads(model.model_dump_json())


@pytest.mark.parametrize("event_type", [ImageGenPartialImageEvent, ImageEditPartialImageEvent])
@pytest.mark.parametrize(
    ("output_format", "mime"),
    [("png", "image/png"), ("jpeg", "image/jpeg"), ("webp", "image/webp")],
)
def test_partial_image_events_carry_their_format(
    event_type: Any, output_format: str, mime: str
) -> None:
    kind = "image_generation" if event_type is ImageGenPartialImageEvent else "image_edit"
    b64 = b64_image(output_format, 1)
    partial = event_type(
        type=f"{kind}.partial_image",
        b64_json=b64,
        background="transparent",
        created_at=1_790_000_000,
        output_format=output_format,
        partial_image_index=1,
        quality="xhigh",
        size="1536x864",
    )
    (preview,) = ImagesEvents(1).handle(event(partial))
    assert isinstance(preview, ImagePreview)
    assert preview.mime_type == mime and preview.image.mime_type == mime
    assert preview.image.data == base64.b64decode(b64)
    assert (preview.index, preview.sample, preview.width, preview.height) == (1, 0, 1536, 864)
    assert preview.extra == {
        "size": "1536x864",
        "quality": "xhigh",
        "background": "transparent",
        "output_format": output_format,
        "created_at": 1_790_000_000,
        "partial_image_index": 1,
    }


def test_completed_event_with_the_new_fields() -> None:
    completed = ImageGenCompletedEvent.model_validate(
        {
            "type": "image_generation.completed",
            "b64_json": b64_image("webp", 2),
            "background": "opaque",
            "created_at": 1_790_000_001,
            "output_format": "webp",
            "quality": "max",
            "size": "2048x1152",
            "usage": {
                "input_tokens": 10,
                "input_tokens_details": {"image_tokens": 0, "text_tokens": 10},
                "output_tokens": 4000,
                "total_tokens": 4010,
            },
            "safety_identifier": "user-hash",
        }
    )
    final, usage = ImagesEvents(1).handle(event(completed))
    assert isinstance(final, ImageFinal) and isinstance(usage, imagestream.Usage)
    assert final.mime_type == "image/webp" and (final.width, final.height) == (2048, 1152)
    assert final.extra["quality"] == "max"
    assert usage.output_image_tokens == 4000


def test_responses_partial_image_event_carries_its_format() -> None:
    partial = ResponseImageGenCallPartialImageEvent(
        type="response.image_generation_call.partial_image",
        item_id="ig_1",
        output_index=0,
        partial_image_b64=b64_image("jpeg", 3),
        partial_image_index=0,
        sequence_number=4,
        background="opaque",
        output_format="jpeg",
        quality="xhigh",
        size="1024x1536",
    )
    (preview,) = ResponsesEvents("gpt-image-2.5-flare", "gpt-5").handle(event(partial))
    assert isinstance(preview, ImagePreview)
    assert preview.mime_type == "image/jpeg" and (preview.width, preview.height) == (1024, 1536)
    assert preview.extra["quality"] == "xhigh" and preview.extra["output_format"] == "jpeg"
    # Without the optional fields (older servers): no type declared, none made up.
    bare = ResponseImageGenCallPartialImageEvent(
        type="response.image_generation_call.partial_image",
        item_id="ig_2",
        output_index=1,
        partial_image_b64=b64_image("png"),
        partial_image_index=0,
        sequence_number=5,
    )
    (preview,) = ResponsesEvents("gpt-image-2", "gpt-5").handle(event(bare))
    assert preview.mime_type is None and preview.width is None


async def test_sdk_events_streamed_end_to_end(server: OpenAIServer) -> None:
    events = [
        (
            "image_generation.partial_image",
            ImageGenPartialImageEvent(
                type="image_generation.partial_image",
                b64_json=b64_image("webp", 4),
                background="auto",
                created_at=1_790_000_000,
                output_format="webp",
                partial_image_index=0,
                quality="xhigh",
                size="64x48",
            ).model_dump(),
        ),
        (
            "image_generation.completed",
            ImageGenCompletedEvent.model_validate(
                {
                    "type": "image_generation.completed",
                    "b64_json": b64_image("webp", 5),
                    "background": "opaque",
                    "created_at": 1_790_000_001,
                    "output_format": "webp",
                    "quality": "xhigh",
                    "size": "64x48",
                    "usage": {
                        "input_tokens": 9,
                        "input_tokens_details": {"image_tokens": 0, "text_tokens": 9},
                        "output_tokens": 300,
                        "total_tokens": 309,
                    },
                }
            ).model_dump(),
        ),
    ]
    server.script(Script(events=events))
    chunks = await collect(
        server,
        model="gpt-image-2.5-sunburst",
        quality="xhigh",
        output_format="webp",
        partial_images=1,
    )
    assert kinds(chunks)[:3] == ["ImagePreview", "ImageFinal", "Usage"]
    assert chunks[0].mime_type == chunks[1].mime_type == "image/webp"
    (sent,) = server.requests
    assert sent.json["quality"] == "xhigh" and sent.json["stream"] is True


async def test_a_gif_comes_whole(server: OpenAIServer) -> None:
    from PIL import Image

    frames = [Image.new("RGB", (32, 24), (40 * i, 90, 200)) for i in range(3)]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    gif = base64.b64encode(out.getvalue()).decode()
    server.script(
        Script(
            body={
                "created": 1_790_000_000,
                "data": [{"b64_json": gif}],
                "output_format": "gif",
                "quality": "high",
                "size": "1024x1024",
            }
        )
    )
    chunks = await collect(server, model="gpt-image-2.5-flare", output_format="gif", frame_count=3)
    final = next(chunk for chunk in chunks if isinstance(chunk, ImageFinal))
    assert final.mime_type == "image/gif" and final.image.data == out.getvalue()
    (sent,) = server.requests
    assert "stream" not in sent.json and sent.json["frame_count"] == 3


# -- the README ------------------------------------------------------------------


def readme_table(heading: str) -> list[str]:
    """The first column's backticked names of the table under ``heading``."""
    section = README.read_text(encoding="utf-8").split(f"\n## {heading}\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [name for row in rows for name in re.findall(r"`([^`]+)`", row.split("|")[1])]


def test_the_readme_lists_exactly_the_models() -> None:
    assert readme_table("Models") == [model.id for model in MODELS]


def test_the_readme_lists_every_option() -> None:
    assert sorted(readme_table("Options")) == sorted(OPTIONS)
