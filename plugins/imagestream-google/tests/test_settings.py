"""Request checks: everything Google would refuse is refused before any request, in the kit's terms."""

from __future__ import annotations

from typing import Any

import pytest

from imagestream import (
    ConfigurationError,
    ImageRequest,
    MissingAPIKeyError,
    ValidationError,
)
from imagestream.provider import KeyConflictWarning, Prepared
from imagestream.testing import make_png
from imagestream_google import GeminiProvider, VertexProvider
from imagestream_google._endpoint import vertex_host
from imagestream_google._settings import Settings, body

KEY = "AIzaSyTEST-key-0123456789abcdefghij"
ENV = (
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
    "GOOGLE_GENAI_USE_VERTEXAI",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def gemini(prompt: str = "a watercolor fox", **fields: Any) -> Settings:
    fields.setdefault("api_key", KEY)
    prepared = GeminiProvider().validate(ImageRequest(prompt, **fields))
    assert isinstance(prepared, Prepared) and isinstance(prepared.settings, Settings)
    return prepared.settings


def vertex(prompt: str = "a watercolor fox", **fields: Any) -> Settings:
    options = fields.setdefault("options", {})
    if "api_key" not in fields and "access_token" not in options:
        options.setdefault("project", "test-project")
    prepared = VertexProvider().validate(ImageRequest(prompt, **fields))
    assert isinstance(prepared, Prepared) and isinstance(prepared.settings, Settings)
    return prepared.settings


def test_the_default_gemini_body() -> None:
    settings = gemini()
    assert settings.model == "gemini-2.5-flash-image"
    assert settings.version == "v1"
    assert settings.model_path == "models/gemini-2.5-flash-image"
    assert body(settings) == {
        "contents": [{"parts": [{"text": "a watercolor fox"}], "role": "user"}],
        "generationConfig": {"responseModalities": ["TEXT", "IMAGE"]},
    }


def test_everything_a_body_can_carry() -> None:
    png = make_png(4, 4)
    settings = gemini(
        size="1920x1080",
        seed=7,
        model="gemini-3-pro-image-preview",
        options={
            "image_only": True,
            "image_size": "2k",
            "temperature": 0.4,
            "system_instruction": "Draw in ink.",
            "safety_settings": {"dangerous_content": "block_only_high"},
            "include_thoughts": True,
            "image": png,
        },
    )
    payload = body(settings)
    assert payload["contents"][0]["parts"][1]["inlineData"]["mimeType"] == "image/png"
    assert payload["systemInstruction"] == {"parts": [{"text": "Draw in ink."}], "role": "user"}
    assert payload["generationConfig"] == {
        "responseModalities": ["IMAGE"],
        "temperature": 0.4,
        "seed": 7,
        "imageConfig": {"aspectRatio": "16:9", "imageSize": "2K"},
        "thinkingConfig": {"includeThoughts": True},
    }
    assert payload["safetySettings"] == [
        {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "threshold": "BLOCK_ONLY_HIGH"}
    ]


@pytest.mark.parametrize(
    ("size", "ratio"),
    [("1024x1024", "1:1"), ("832x1248", "2:3"), ("21:9", "21:9"), ("768x1344", "4:7")],
)
def test_sizes_map_to_exact_ratios_or_are_refused(size: str, ratio: str) -> None:
    if ratio == "4:7":
        with pytest.raises(ValidationError, match="ratio 4:7, which Google does not make") as info:
            gemini(size=size)
        assert "1:1, 2:3, 3:2, 3:4, 4:3, 9:16, 16:9, 21:9" in str(info.value)
        return
    assert gemini(size=size).generation_config["imageConfig"] == {"aspectRatio": ratio}


@pytest.mark.parametrize(
    ("fields", "error", "text"),
    [
        ({"options": {"aspect_ratio": "5:4"}}, ConfigurationError, "unknown aspect_ratio"),
        ({"options": {"temprature": 1}}, ConfigurationError, "did you mean 'temperature'"),
        ({"options": {"temperature": 3}}, ValidationError, "between 0 and 2"),
        ({"options": {"image_size": "8K"}}, ConfigurationError, "unknown image_size"),
        ({"options": {"image_size": "4K"}}, ValidationError, "makes 1K images, not 4K"),
        ({"size": "big"}, ConfigurationError, "not WIDTHxHEIGHT"),
        ({"steps": 20}, ValidationError, "no sampler steps"),
        ({"quality": "high"}, ValidationError, "no quality level"),
        ({"partial_images": 2}, ValidationError, "whole images"),
        ({"negative_prompt": "dogs"}, ValidationError, "no negative prompt"),
        ({"n": 2}, ValidationError, "one answer per request"),
        ({"n": 0}, ValidationError, "at least 1"),
        ({"seed": -1}, ValidationError, "seed"),
        ({"model": "imagen-4.0-generate-001"}, ValidationError, "Vertex AI only"),
        (
            {"options": {"safety_settings": {"harassment": "sometimes"}}},
            ConfigurationError,
            "threshold",
        ),
        ({"options": {"image": "missing.png"}}, ConfigurationError, "no such file"),
        ({"options": {"image": b"GIF89a" + bytes(20)}}, ValidationError, "image/gif"),
        ({"base_url": "ftp://x"}, ConfigurationError, "base_url"),
        ({"timeout": -1}, ValidationError, "positive"),
        ({"prompt": "  "}, ValidationError, "prompt is empty"),
    ],
)
def test_refusals(fields: dict[str, Any], error: type[Exception], text: str) -> None:
    prompt = fields.pop("prompt", "a fox")
    with pytest.raises(error, match="^gemini: ") as info:
        gemini(prompt, **fields)
    assert text in str(info.value)


@pytest.mark.parametrize(
    "fields",
    [
        {"output_format": "jpeg"},
        {"options": {"output_compression": 80}},
        {"options": {"person_generation": "allow_adult"}},
    ],
)
def test_the_gemini_api_refuses_vertex_only_image_options(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="Vertex AI options") as info:
        gemini(**fields)
    assert "-p vertex" in str(info.value)


def test_the_gemini_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MissingAPIKeyError, match="set GEMINI_API_KEY"):
        GeminiProvider().validate(ImageRequest("x"))
    monkeypatch.setenv("GOOGLE_API_KEY", "AIza-alias-key-000000000000")
    assert gemini(api_key=None).api_key.get() == "AIza-alias-key-000000000000"  # type: ignore[union-attr]
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-primary-key-00000000000")
    with pytest.warns(KeyConflictWarning, match="GEMINI_API_KEY and GOOGLE_API_KEY"):
        assert gemini(api_key=None).api_key.get() == "AIza-primary-key-00000000000"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("location", "host"),
    [
        ("global", "https://aiplatform.googleapis.com"),
        ("us", "https://aiplatform.us.rep.googleapis.com"),
        ("eu", "https://aiplatform.eu.rep.googleapis.com"),
        ("europe-west4", "https://europe-west4-aiplatform.googleapis.com"),
    ],
)
def test_the_vertex_host_rule(location: str, host: str) -> None:
    assert vertex_host(location) == host
    settings = vertex(options={"location": location})
    assert settings.base_url == host
    assert settings.model_path == (
        f"projects/test-project/locations/{location}/publishers/google/models/gemini-2.5-flash-image"
    )
    assert settings.version == "v1beta1"


def test_vertex_project_and_location_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "env-project")
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "us-central1")
    settings = VertexProvider().settings(ImageRequest("x"))
    assert settings.api == "vertex" and settings.project == "env-project"
    assert settings.base_url == "https://us-central1-aiplatform.googleapis.com"


def test_a_global_only_model_defaults_to_global_and_refuses_regions() -> None:
    assert vertex(model="gemini-3-pro-image-preview").location == "global"
    with pytest.raises(ValidationError, match="served only from the 'global' location") as info:
        vertex(model="gemini-3-pro-image-preview", options={"location": "us-central1"})
    assert "-o location global" in str(info.value)


def test_vertex_express_mode_and_its_path(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = vertex(api_key=KEY)
    assert settings.api == "express"
    assert settings.model_path == "publishers/google/models/gemini-2.5-flash-image"
    assert settings.base_url == "https://aiplatform.googleapis.com"
    monkeypatch.setenv("GOOGLE_API_KEY", KEY)
    assert VertexProvider().settings(ImageRequest("x")).api == "express"


def test_vertex_without_credentials_says_what_to_do() -> None:
    with pytest.raises(ConfigurationError, match="needs a project") as info:
        VertexProvider().settings(ImageRequest("x"))
    assert "GOOGLE_CLOUD_PROJECT" in str(info.value) and "--key" in str(info.value)


def test_vertex_output_options() -> None:
    settings = vertex(output_format="jpeg", options={"output_compression": 85})
    assert settings.generation_config["imageConfig"] == {
        "imageOutputOptions": {"mimeType": "image/jpeg", "compressionQuality": 85}
    }
    with pytest.raises(ValidationError, match="applies to JPEG"):
        vertex(output_format="png", options={"output_compression": 85})


def test_imagen_on_vertex() -> None:
    settings = vertex(
        model="imagen-4.0-generate-001",
        n=3,
        size="16:9",
        seed=5,
        negative_prompt="text",
        options={"add_watermark": False},
    )
    assert body(settings) == {
        "instances": [{"prompt": "a watercolor fox"}],
        "parameters": {
            "sampleCount": 3,
            "aspectRatio": "16:9",
            "negativePrompt": "text",
            "seed": 5,
            "addWatermark": False,
        },
    }
    with pytest.raises(ValidationError, match="without a watermark"):
        vertex(model="imagen-4.0-generate-001", seed=5)
    with pytest.raises(ValidationError, match="Imagen makes"):
        vertex(model="imagen-4.0-generate-001", size="21:9")


def test_unknown_models_pass_through() -> None:
    assert gemini(model="gemini-9-image-experimental").model == "gemini-9-image-experimental"
    assert gemini(model="models/gemini-2.5-flash-image").model == "gemini-2.5-flash-image"


def test_the_prepared_request_carries_what_will_run() -> None:
    prepared = GeminiProvider().validate(ImageRequest("x", api_key=KEY))
    assert isinstance(prepared, Prepared)
    assert prepared.request.model == "gemini-2.5-flash-image"
    assert prepared.request.base_url == "https://generativelanguage.googleapis.com"
    assert KEY not in repr(prepared) and KEY not in repr(prepared.settings)
