"""The request body: compared with what real clients send, and each feature's fields."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from imagestream import ImageRequest
from imagestream.testing import make_png
from imagestream_novelai import NovelAIProvider

TOKEN = "pst-body-tests"


def body_for(prompt: str = "1girl", **fields: Any) -> dict[str, Any]:
    options = fields.pop("options", {})
    provider = NovelAIProvider()
    request = provider.validate(ImageRequest(prompt, api_key=TOKEN, options=options, **fields))
    return provider.build_body(request)


def _compare(ours: dict[str, Any], recorded: dict[str, Any], differences: set[str]) -> None:
    """Every recorded parameter must be sent with the same value, except the listed ones."""
    mismatched = {
        key: (ours.get(key, "<missing>"), value)
        for key, value in recorded.items()
        if key not in differences and ours.get(key, "<missing>") != value
    }
    assert mismatched == {}


def test_same_body_as_the_third_party_v45_stream_payload(shared_fixtures: Path) -> None:
    recorded = json.loads((shared_fixtures / "nekoai-api_generate-image-stream_request_nai4.5_msgpack.json").read_text())
    ours = body_for(
        "1girl, cute",
        model="nai-diffusion-4-5-full",
        size="832x1216",
        steps=30,
        seed=3417044607,
        negative_prompt="1234",
        options={
            "scale": 5,
            "sampler": "k_euler_ancestral",
            "noise_schedule": "karras",
            "cfg_rescale": 0,
            "quality_toggle": True,
            "uc_preset": "human_focus",
            "stream": "msgpack",
        },
    )
    # Quality tags and the UC preset are expanded client-side, as recorded.
    assert ours["input"] == recorded["input"]
    assert ours["model"] == recorded["model"] and ours["action"] == recorded["action"]
    _compare(ours["parameters"], recorded["parameters"], differences=set())
    # Sent on top of the recording: the web app's current fields, harmless defaults.
    assert set(ours["parameters"]) - set(recorded["parameters"]) == set()


def test_same_body_as_the_browser_captured_v45_curated_request(shared_fixtures: Path) -> None:
    capture = json.loads((shared_fixtures / "novelai-python_browser-captured_generate-image_request_v4.5.json").read_text())
    recorded = json.loads(capture["body"])
    characters = [
        {"prompt": char["prompt"], "uc": char["uc"]} for char in recorded["parameters"]["characterPrompts"]
    ]
    ours = body_for(
        "1boy, 1girl, silver background, cowboy shot, love letter",
        model="nai-diffusion-4-5-curated",
        size="portrait",
        steps=23,
        seed=1688743194,
        options={
            "scale": 4.5,
            "uc_preset": "heavy",
            "characters": characters,
            # The capture is of the non-streaming endpoint: no "stream" field.
            "stream": "none",
        },
    )
    # Intentional difference: in the capture, "input" lacks three tags that its
    # own v4_prompt base caption has (the web app edits one and not the other).
    # V4 models read the caption; this plugin sends the same text in both.
    assert ours["input"] == recorded["parameters"]["v4_prompt"]["caption"]["base_caption"]
    assert ours["model"] == recorded["model"] and ours["action"] == recorded["action"]
    _compare(ours["parameters"], recorded["parameters"], differences=set())
    # The one field sent beyond the capture; the other recorded body has it.
    assert set(ours["parameters"]) - set(recorded["parameters"]) == {"inpaintImg2ImgStrength"}


def test_characters_with_positions_turn_coordinates_on() -> None:
    body = body_for(
        "2girls",
        options={"characters": [{"prompt": "girl, red hair", "center": "A1"}, {"prompt": "girl, blue hair", "uc": "hat"}]},
    )
    parameters = body["parameters"]
    assert parameters["use_coords"] is True and parameters["v4_prompt"]["use_coords"] is True
    first, second = parameters["characterPrompts"]
    assert first["center"] == pytest.approx({"x": 0.1, "y": 0.1}) and second["center"] == {"x": 0.5, "y": 0.5}
    assert second["uc"] == "hat" and first["enabled"] is True
    captions = parameters["v4_prompt"]["caption"]["char_captions"]
    assert [c["char_caption"] for c in captions] == ["girl, red hair", "girl, blue hair"]
    negatives = parameters["v4_negative_prompt"]["caption"]["char_captions"]
    assert [c["char_caption"] for c in negatives] == ["", "hat"]
    assert negatives[0]["centers"] == captions[0]["centers"]


def test_quality_and_presets_can_be_switched_off() -> None:
    body = body_for("1girl", negative_prompt="hat", options={"quality_toggle": False, "uc_preset": "none"})
    assert body["input"] == "1girl"
    assert body["parameters"]["negative_prompt"] == "hat"
    assert body["parameters"]["ucPreset"] == 4 and body["parameters"]["qualityToggle"] is False


def test_preset_drops_nsfw_when_the_prompt_asks_for_it() -> None:
    body = body_for("1girl, nsfw", options={"uc_preset": "light"})
    assert not body["parameters"]["negative_prompt"].startswith("nsfw")
    assert body_for("1girl", options={"uc_preset": "light"})["parameters"]["negative_prompt"].startswith("nsfw, ")


def test_v3_body_has_no_v4_captions() -> None:
    body = body_for("1girl", model="nai-diffusion-3", options={"noise_schedule": "native"})
    parameters = body["parameters"]
    assert "v4_prompt" not in parameters and "characterPrompts" not in parameters
    assert parameters["sm"] is False and parameters["noise_schedule"] == "native"
    assert "stream" not in parameters  # V3 goes to the ZIP endpoint
    assert body["input"].endswith(", best quality, amazing quality, very aesthetic, absurdres")


def test_img2img_body() -> None:
    body = body_for("1girl", seed=11, options={"image": make_png(832, 1216), "strength": 0.4, "noise": 0.2})
    parameters = body["parameters"]
    assert body["action"] == "img2img"
    assert parameters["image"].startswith("iVBORw0KGgo")  # base64 of a PNG
    assert (parameters["strength"], parameters["noise"], parameters["extra_noise_seed"]) == (0.4, 0.2, 11)
    assert "mask" not in parameters


def test_infill_body_uses_the_inpainting_model() -> None:
    image, mask = make_png(1024, 1024), make_png(1024, 1024, (255, 255, 255))
    body = body_for("1girl", options={"action": "infill", "image": image, "mask": mask})
    assert body["model"] == "nai-diffusion-4-5-full-inpainting"
    assert body["parameters"]["mask"] and body["parameters"]["width"] == 1024  # size taken from the image


def test_character_references_and_vibes() -> None:
    reference = make_png(64, 64)
    body = body_for(
        "1girl",
        options={
            "character_references": [{"image": reference, "type": "character", "fidelity": 0.75}],
            "controlnet": {"strength": 0.8, "references": [{"vibe": b"encoded-vibe", "strength": 0.5}]},
        },
    )
    parameters = body["parameters"]
    assert len(parameters["director_reference_images"]) == 1
    assert parameters["director_reference_descriptions"][0]["caption"]["base_caption"] == "character"
    assert parameters["director_reference_secondary_strength_values"] == [0.25]
    assert parameters["reference_strength_multiple"] == [0.5]
    assert parameters["controlnet_strength"] == 0.8
    assert "reference_information_extracted_multiple" not in parameters  # V4+ vibes carry it


def test_output_format_and_extra_parameters() -> None:
    body = body_for("1girl", output_format="webp", options={"extra_parameters": {"skip_cfg_above_sigma": 58}})
    assert body["parameters"]["image_format"] == "webp"
    assert body["parameters"]["skip_cfg_above_sigma"] == 58


def test_named_sizes() -> None:
    assert (body_for(size="landscape")["parameters"]["width"], body_for(size="landscape")["parameters"]["height"]) == (
        1216,
        832,
    )
    square = body_for(size="square")["parameters"]
    assert (square["width"], square["height"]) == (1024, 1024)
    default = body_for()["parameters"]
    assert (default["width"], default["height"]) == (832, 1216)
