"""Invalid requests are refused locally, with a clear message, before any network call."""

from __future__ import annotations

from typing import Any

import pytest

from imagestream import ConfigurationError, ImageRequest, ValidationError
from imagestream.testing import make_png
from imagestream_novelai import KNOWN_OPTIONS, NovelAIProvider

PNG_832 = make_png(832, 1216)


def validate(prompt: str = "1girl", **fields: Any) -> ImageRequest:
    options = fields.pop("options", {})
    return NovelAIProvider().validate(ImageRequest(prompt, api_key="pst-x", options=options, **fields)).request


REFUSED: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("unknown option", {"options": {"cfg": 1}}, ConfigurationError, "unknown option 'cfg'"),
    ("misspelt option", {"options": {"samplr": "k_euler"}}, ConfigurationError, "did you mean 'sampler'"),
    ("unknown model", {"model": "dall-e-3"}, ConfigurationError, "unknown model"),
    ("size not multiple of 64", {"size": "800x1200"}, ValidationError, "multiples of 64"),
    ("size not WxH", {"size": "huge"}, ConfigurationError, "not WIDTHxHEIGHT"),
    ("too many pixels", {"size": "2048x2048"}, ValidationError, "pixels"),
    ("steps too high", {"steps": 51}, ValidationError, "steps must be between 1 and 50"),
    ("steps zero", {"steps": 0}, ValidationError, "steps"),
    ("too many samples", {"n": 9}, ValidationError, "n (n_samples)"),
    ("seed negative", {"seed": -1}, ValidationError, "seed"),
    ("unknown sampler", {"options": {"sampler": "euler_a"}}, ConfigurationError, "unknown sampler"),
    ("unknown schedule", {"options": {"noise_schedule": "cosine"}}, ConfigurationError, "noise_schedule"),
    ("native on v4", {"options": {"noise_schedule": "native"}}, ValidationError, "V3"),
    ("scale too high", {"options": {"scale": 11}}, ValidationError, "scale"),
    ("scale not a number", {"options": {"scale": "high"}}, ConfigurationError, "scale must be a number"),
    ("cfg rescale", {"options": {"cfg_rescale": 1.5}}, ValidationError, "cfg_rescale"),
    ("quality toggle text", {"options": {"quality_toggle": "maybe"}}, ConfigurationError, "true or false"),
    ("unknown uc preset", {"options": {"uc_preset": "medium"}}, ConfigurationError, "uc_preset"),
    (
        "furry preset on curated",
        {"model": "nai-diffusion-4-5-curated", "options": {"uc_preset": "furry_focus"}},
        ValidationError,
        "does not exist for",
    ),
    ("mask without infill", {"options": {"image": PNG_832, "mask": PNG_832}}, ValidationError, "infill"),
    ("infill without mask", {"options": {"image": PNG_832, "action": "infill"}}, ValidationError, "mask"),
    ("img2img without image", {"options": {"action": "img2img"}}, ValidationError, "input image"),
    ("image with generate", {"options": {"image": PNG_832, "action": "generate"}}, ValidationError, "img2img"),
    ("strength without image", {"options": {"strength": 0.5}}, ValidationError, "only applies"),
    ("strength too high", {"options": {"image": PNG_832, "strength": 1.0}}, ValidationError, "strength"),
    ("image size mismatch", {"size": "square", "options": {"image": PNG_832}}, ValidationError, "832x1216"),
    ("image not an image", {"options": {"image": b"hello there"}}, ValidationError, "is not a JPG, PNG, WEBP image"),
    ("image bad base64", {"options": {"image": "no such file, not base64!"}}, ConfigurationError, "base64"),
    (
        "characters on v3",
        {"model": "nai-diffusion-3", "options": {"characters": ["girl"]}},
        ValidationError,
        "V4 or V4.5",
    ),
    ("too many characters", {"options": {"characters": ["girl"] * 7}}, ValidationError, "at most 6"),
    (
        "character position out of range",
        {"options": {"characters": [{"prompt": "girl", "center": {"x": 2, "y": 0}}]}},
        ValidationError,
        "center.x",
    ),
    (
        "character unknown key",
        {"options": {"characters": [{"prompt": "girl", "pose": "sitting"}]}},
        ConfigurationError,
        "pose",
    ),
    (
        "character references on v4",
        {"model": "nai-diffusion-4-full", "options": {"character_references": [{"image": PNG_832}]}},
        ValidationError,
        "V4.5",
    ),
    (
        "raw image as a v4 vibe",
        {"options": {"controlnet": {"references": [{"image": PNG_832}]}}},
        ValidationError,
        "encoded vibe",
    ),
    ("unknown stream", {"options": {"stream": "websocket"}}, ConfigurationError, "msgpack, none, sse"),
    ("jpeg output", {"output_format": "jpeg"}, ConfigurationError, "output format"),
    ("quality field", {"quality": "high"}, ConfigurationError, "quality_toggle"),
    ("empty prompt", {"prompt": "  "}, ValidationError, "empty"),
    ("stream in extra parameters", {"options": {"extra_parameters": {"stream": "sse"}}}, ConfigurationError, "stream"),
    (
        "two different negative prompts",
        {"negative_prompt": "a", "options": {"negative_prompt": "b"}},
        ConfigurationError,
        "negative_prompt",
    ),
]


@pytest.mark.parametrize(("case", "fields", "error", "words"), REFUSED, ids=[case[0] for case in REFUSED])
def test_refused_locally(case: str, fields: dict[str, Any], error: type[Exception], words: str) -> None:
    prompt = fields.pop("prompt", "1girl")
    with pytest.raises(error) as info:
        validate(prompt, **fields)
    assert words in str(info.value)
    assert str(info.value).startswith("novelai")


def test_unknown_option_lists_the_known_ones() -> None:
    with pytest.raises(ConfigurationError) as info:
        validate(options={"cfg": 1})
    assert info.value.hint is not None
    assert all(name in info.value.hint for name in KNOWN_OPTIONS)


async def test_nothing_is_sent_when_a_request_is_refused(nai: Any) -> None:
    with pytest.raises(ValidationError):
        await nai.run(size="800x1200")
    with pytest.raises(ConfigurationError):
        await nai.run(sampler="euler_a")
    assert nai.server.requests == []


def test_defaults_are_filled_in() -> None:
    request = validate()
    assert request.model == "nai-diffusion-4-5-full"
    assert request.size == "832x1216" and request.steps == 28
    assert isinstance(request.seed, int) and 0 <= request.seed < 2**32
    assert validate(seed=0).seed == 0


def test_image_size_becomes_the_request_size(tmp_path: Any) -> None:
    path = tmp_path / "in.png"
    path.write_bytes(make_png(1024, 640))
    assert validate(options={"image": str(path)}).size == "1024x640"
    assert validate(options={"image": path}).size == "1024x640"


def test_flags_take_words_and_names_ignore_case() -> None:
    # The kit's readers, shared by every provider: a change from 0.1, which
    # refused "no" and "K_Euler".
    provider = NovelAIProvider()
    prepared = provider.validate(
        ImageRequest("1girl", api_key="pst-x", options={"quality_toggle": "no", "sampler": "K_Euler", "uc_preset": "Light"})
    )
    parameters = provider.build_body(prepared)["parameters"]
    assert parameters["qualityToggle"] is False and parameters["sampler"] == "k_euler" and parameters["ucPreset"] == 1
