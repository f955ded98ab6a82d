"""Local validation: everything OpenAI would refuse is refused before any request is sent."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from _openai_server import OpenAIServer, make_image

import imagestream
from imagestream import ImageRequest
from imagestream.errors import ConfigurationError, MissingAPIKeyError, ValidationError
from imagestream.provider import Prepared
from imagestream_openai import OPTIONS, OpenAIProvider
from imagestream_openai._options import Settings

KEY = "sk-test-options"


def request(**fields: Any) -> ImageRequest:
    fields.setdefault("api_key", KEY)
    options = fields.pop("options", {})
    return ImageRequest(prompt=fields.pop("prompt", "a red circle"), options=options, **fields)


def prepare(**fields: Any) -> Prepared:
    prepared = OpenAIProvider().validate(request(**fields))
    assert isinstance(prepared, Prepared) and isinstance(prepared.settings, Settings)
    return prepared


def check(**fields: Any) -> ImageRequest:
    return prepare(**fields).request


def settings_of(**fields: Any) -> Settings:
    settings: Settings = prepare(**fields).settings
    return settings


def test_defaults_are_filled_in() -> None:
    prepared = prepare()
    checked, settings = prepared.request, prepared.settings
    assert checked.model == "gpt-image-1.5"
    assert checked.base_url == "https://api.openai.com/v1"
    assert checked.api_key is not None and checked.api_key.get() == KEY
    assert settings.stream is True
    assert settings.api == "images"
    assert settings.params == {}


def test_unknown_option_lists_the_known_ones() -> None:
    with pytest.raises(ConfigurationError) as caught:
        check(options={"colour": "red", "stream": True})
    text = str(caught.value)
    assert "'colour'" in text
    for name in ("background", "moderation", "output_compression", "responses_model", "api"):
        assert name in text
    assert set(OPTIONS) >= {"api", "stream", "background", "moderation", "image", "mask"}


def test_a_misspelt_option_gets_a_suggestion() -> None:
    with pytest.raises(ConfigurationError, match="did you mean 'background'"):
        check(options={"backgroud": "opaque"})
    with pytest.raises(ConfigurationError, match="did you mean 'opaque'"):
        check(options={"background": "opaqe"})


@pytest.mark.parametrize("field", ["steps", "seed", "negative_prompt"])
def test_fields_openai_has_no_use_for_are_refused(field: str) -> None:
    value: Any = "blurry" if field == "negative_prompt" else 3
    with pytest.raises(ConfigurationError, match=field):
        check(**{field: value})


def test_missing_key_is_a_clear_error() -> None:
    with pytest.raises(MissingAPIKeyError) as caught:
        OpenAIProvider().validate(ImageRequest(prompt="x"))
    assert caught.value.env_var == "OPENAI_API_KEY"
    assert caught.value.provider == "openai"


def test_environment_supplies_key_base_url_org_and_project(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("OPENAI_BASE_URL", "https://gateway.example/openai/v1/")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-123")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj_456")
    settings = OpenAIProvider().validate(ImageRequest(prompt="x")).settings
    assert settings.endpoint.api_key.get() == "sk-from-env"
    assert settings.endpoint.base_url == "https://gateway.example/openai/v1"
    headers = settings.endpoint.headers(accept="text/event-stream")
    assert headers["Authorization"] == "Bearer sk-from-env"
    assert headers["OpenAI-Organization"] == "org-123"
    assert headers["OpenAI-Project"] == "proj_456"
    # Options and request fields win over the environment.
    settings = settings_of(base_url="http://127.0.0.1:9/v1", options={"organization": "org-x"})
    assert settings.endpoint.base_url == "http://127.0.0.1:9/v1"
    assert settings.endpoint.organization == "org-x"
    assert settings.endpoint.api_key.get() == KEY


def test_azure_style_auth_and_api_version() -> None:
    settings = settings_of(
        options={
            "auth_header": "api-key",
            "api_version": "2025-04-01-preview",
            "headers": {"x-gateway": "1"},
        }
    )
    headers = settings.endpoint.headers(accept="application/json")
    assert headers["api-key"] == KEY and "Authorization" not in headers
    assert headers["x-gateway"] == "1"
    assert settings.endpoint.url("images/generations").endswith(
        "/images/generations?api-version=2025-04-01-preview"
    )


def test_bad_base_url() -> None:
    with pytest.raises(ConfigurationError, match="base_url"):
        check(base_url="ftp://example.com")


@pytest.mark.parametrize(
    ("fields", "error", "match"),
    [
        ({"model": "gpt-image-1", "size": "512x512"}, ValidationError, "sizes"),
        ({"model": "gpt-image-1", "quality": "hd"}, ValidationError, "quality"),
        (
            {"model": "gpt-image-1", "options": {"response_format": "url"}},
            ValidationError,
            "base64",
        ),
        ({"model": "gpt-image-1", "options": {"style": "vivid"}}, ValidationError, "dall-e-3"),
        ({"model": "gpt-image-1", "n": 11}, ValidationError, "at most 10"),
        # Read but out of range: refused (ValidationError), by the kit's one policy.
        ({"model": "gpt-image-1", "n": 0}, ValidationError, "at least 1"),
        ({"model": "gpt-image-1", "n": "2"}, ConfigurationError, "whole number"),
        ({"model": "gpt-image-1", "partial_images": 4}, ValidationError, "between 0 and 3"),
        (
            {"model": "gpt-image-1", "partial_images": 2, "options": {"stream": False}},
            ValidationError,
            "stream",
        ),
        (
            {"model": "gpt-image-1", "options": {"output_compression": 50}},
            ValidationError,
            "jpeg and webp",
        ),
        (
            {
                "model": "gpt-image-1",
                "output_format": "jpeg",
                "options": {"output_compression": 101},
            },
            ValidationError,
            "between 0 and 100",
        ),
        ({"model": "gpt-image-1", "output_format": "bmp"}, ConfigurationError, "output_format"),
        (
            {
                "model": "gpt-image-1",
                "output_format": "jpeg",
                "options": {"background": "transparent"},
            },
            ValidationError,
            "transparent",
        ),
        (
            {"model": "gpt-image-1", "options": {"background": "see-through"}},
            ConfigurationError,
            "background",
        ),
        (
            {"model": "gpt-image-1", "options": {"moderation": "strict"}},
            ConfigurationError,
            "moderation",
        ),
        (
            {"model": "gpt-image-1", "options": {"input_fidelity": "high"}},
            ValidationError,
            "edits only",
        ),
        (
            {"model": "gpt-image-1", "options": {"stream": "sometimes"}},
            ConfigurationError,
            "true or false",
        ),
        (
            {"model": "gpt-image-1", "options": {"api": "chat"}},
            ConfigurationError,
            "images, responses",
        ),
        (
            {"model": "gpt-image-1", "options": {"responses_model": "gpt-5"}},
            ValidationError,
            "Responses API",
        ),
        (
            {"model": "gpt-image-1", "n": 2, "options": {"api": "responses"}},
            ValidationError,
            "one image",
        ),
        ({"model": "gpt-image-2", "size": "1000x1000"}, ValidationError, "multiples of 16"),
        ({"model": "gpt-image-2", "size": "4096x1024"}, ValidationError, "aspect ratio"),
        ({"model": "gpt-image-2", "size": "3840x3840"}, ValidationError, "3840x2160"),
        ({"model": "dall-e-3", "n": 2}, ValidationError, "at most 1"),
        ({"model": "dall-e-3", "partial_images": 1}, ValidationError, "partial images"),
        ({"model": "dall-e-3", "options": {"stream": True}}, ValidationError, "cannot stream"),
        ({"model": "dall-e-3", "size": "1536x1024"}, ValidationError, "sizes"),
        ({"model": "dall-e-3", "quality": "high"}, ValidationError, "standard, hd"),
        ({"model": "dall-e-3", "output_format": "png"}, ValidationError, "output_format"),
        ({"model": "dall-e-3", "options": {"background": "opaque"}}, ValidationError, "background"),
        ({"model": "dall-e-3", "options": {"api": "responses"}}, ValidationError, "GPT image"),
        ({"model": "dall-e-2", "options": {"style": "vivid"}}, ValidationError, "dall-e-3"),
        ({"model": "dall-e-2", "size": "auto"}, ValidationError, "sizes"),
        ({"timeout": -1}, ValidationError, "timeout"),
        ({"timeout": "soon"}, ConfigurationError, "timeout"),
        ({"prompt": "   "}, ValidationError, "empty"),
        ({"options": {"max_response_bytes": 0}}, ValidationError, "max_response_bytes"),
        ({"options": {"headers": {"x": 1}}}, ConfigurationError, "headers"),
        ({"size": "big"}, ConfigurationError, "WIDTHxHEIGHT"),
        ({"model": "gpt-image-2", "size": "0x512"}, ConfigurationError, "positive"),
    ],
)
def test_refused_locally(fields: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        check(**fields)


@pytest.mark.parametrize(
    ("fields", "params"),
    [
        (
            {
                "model": "gpt-image-1",
                "size": "1536x1024",
                "quality": "HIGH",
                "output_format": "jpg",
                "options": {
                    "output_compression": 80,
                    "background": "opaque",
                    "moderation": "low",
                    "user": "u1",
                },
            },
            {
                "size": "1536x1024",
                "quality": "high",
                "output_format": "jpeg",
                "output_compression": 80,
                "background": "opaque",
                "moderation": "low",
                "user": "u1",
            },
        ),
        ({"model": "gpt-image-2", "size": "1536x864"}, {"size": "1536x864"}),
        ({"model": "gpt-image-2-2026-04-21", "size": "2048x1152"}, {"size": "2048x1152"}),
        (
            {
                "model": "dall-e-3",
                "size": "1792x1024",
                "quality": "hd",
                "options": {"style": "natural", "response_format": "url"},
            },
            {"size": "1792x1024", "quality": "hd", "style": "natural", "response_format": "url"},
        ),
        ({"model": "dall-e-2", "size": "256x256", "n": 4}, {"size": "256x256"}),
        (
            {
                "model": "gpt-image-1",
                "partial_images": 3,
                "options": {"api": "responses", "action": "generate"},
            },
            {"partial_images": 3, "action": "generate"},
        ),
    ],
)
def test_accepted_and_normalised(fields: dict[str, Any], params: dict[str, Any]) -> None:
    assert dict(settings_of(**fields).params) == params


def test_unknown_models_pass_through() -> None:
    # A newer GPT image model gets the family's rules with open sizes and qualities.
    settings = settings_of(model="gpt-image-3", size="2000x1000", quality="xhigh", partial_images=2)
    assert settings.model == "gpt-image-3" and settings.stream
    assert settings.params["quality"] == "xhigh"
    # Anything else is sent as given.
    settings = settings_of(
        model="my-gateway-model", options={"style": "vivid", "response_format": "url"}
    )
    assert settings.params == {"style": "vivid", "response_format": "url"}


def test_dalle_does_not_stream_by_default() -> None:
    assert settings_of(model="dall-e-3").stream is False
    assert settings_of(model="gpt-image-1-mini").stream is True
    assert settings_of(model="gpt-image-1", options={"stream": False}).stream is False


def test_edit_inputs(tmp_path: Path) -> None:
    png = tmp_path / "photo.png"
    png.write_bytes(make_image("png"))
    jpg = tmp_path / "ref.jpg"
    jpg.write_bytes(make_image("jpeg"))
    mask = tmp_path / "mask.png"
    mask.write_bytes(make_image("png", 3))
    settings = settings_of(
        model="gpt-image-1",
        options={"image": [str(png), jpg], "mask": str(mask), "input_fidelity": "high"},
    )
    assert [image.mime_type for image in settings.images] == ["image/png", "image/jpeg"]
    assert settings.images_as_list and settings.mask is not None
    assert settings.params == {"input_fidelity": "high"}
    single = settings_of(model="gpt-image-1", options={"image": make_image("webp")})
    assert not single.images_as_list and single.images[0].filename == "image.webp"

    with pytest.raises(ConfigurationError, match="no such file"):
        check(options={"image": str(tmp_path / "missing.png")})
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(ValidationError, match="is not a"):
        check(options={"image": str(tmp_path / "notes.txt")})
    with pytest.raises(ValidationError, match="mask must be a PNG"):
        check(options={"image": str(png), "mask": str(jpg)})
    with pytest.raises(ValidationError, match="needs an image"):
        check(options={"mask": str(mask)})
    with pytest.raises(ValidationError, match="cannot edit"):
        check(model="dall-e-3", options={"image": str(png)})
    with pytest.raises(ValidationError, match="square PNG"):
        check(model="dall-e-2", options={"image": str(png)})  # 64x48 is not square
    with pytest.raises(ValidationError, match="at most 1"):
        check(model="dall-e-2", options={"image": [str(png), str(png)]})
    with pytest.raises(ValidationError, match="input_fidelity accepts low"):
        check(model="gpt-image-1-mini", options={"image": str(png), "input_fidelity": "high"})
    with pytest.raises(ValidationError, match="omit it"):
        check(model="gpt-image-2", options={"image": str(png), "input_fidelity": "low"})
    with pytest.raises(ValidationError, match="moderation"):
        check(options={"image": str(png), "moderation": "low"})
    with pytest.raises(ConfigurationError, match="empty list"):
        check(options={"image": []})
    with pytest.raises(ConfigurationError, match="neither an existing file nor valid base64"):
        check(options={"image": "Zm9v!" * 1000})


def test_edit_inputs_as_base64_and_data_urls() -> None:
    png = make_image("png", 2)
    b64 = base64.b64encode(png).decode()
    settings = settings_of(
        model="gpt-image-1", options={"image": b64, "mask": f"data:image/png;base64,{b64}"}
    )
    (image,) = settings.images
    assert settings.mask is not None
    assert image.data == settings.mask.data == png
    assert image.size == (64, 48) and image.mime_type == "image/png"
    # DALL·E 2's square rule reads the dimensions whatever the input was.
    square = base64.b64encode(make_image("png", 2, 32, 32)).decode()
    assert settings_of(model="dall-e-2", options={"image": f"data:image/png;base64,{square}"})
    with pytest.raises(ValidationError, match="square PNG"):
        check(model="dall-e-2", options={"image": f"data:image/png;base64,{b64}"})
    with pytest.raises(ValidationError, match="mask must be a PNG"):
        check(options={"image": png, "mask": base64.b64encode(make_image("jpeg")).decode()})


async def drain(chunks: Any) -> None:
    async with chunks:
        async for _ in chunks:
            pass


async def test_refusals_happen_before_any_request(server: OpenAIServer) -> None:
    for params in (
        {"model": "dall-e-3", "partial_images": 2},
        {"colour": "red"},
        {"api_key": None},
    ):
        chunks = imagestream.stream(
            "x", provider="openai", base_url=server.base_url, **{"api_key": server.key, **params}
        )
        with pytest.raises((ConfigurationError, ValidationError)):
            await drain(chunks)
    assert server.requests == []


def test_pricing_per_model() -> None:
    provider = OpenAIProvider()
    mini = provider.pricing("gpt-image-1-mini")
    assert mini is not None
    assert (mini.input_text, mini.input_image, mini.output_image) == (2.00, 2.50, 8.00)
    one = provider.pricing("gpt-image-1")
    assert one is not None and (one.input_text, one.input_image, one.output_image) == (
        5.00,
        10.00,
        40.00,
    )
    assert provider.pricing("gpt-image-2-2026-04-21") == provider.pricing("gpt-image-2")
    assert provider.pricing("unknown-model") is None
    dalle = provider.pricing("dall-e-3")
    assert dalle is not None and dalle.per_image == 0.04
    usage = imagestream.Usage(
        input_text_tokens=1_000_000, input_image_tokens=1_000_000, output_image_tokens=1_000_000
    )
    # Image tokens are priced at the image rates, not at the text rate.
    assert one.cost(usage) == pytest.approx(5 + 10 + 40)
