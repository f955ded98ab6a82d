"""The request: endpoint URLs, headers and the JSON body, built from :class:`Settings`.

The body mirrors what the web app sends (see the two recorded bodies in the
project's shared fixtures; the README lists where this builder differs from
them on purpose). Fields whose meaning no client documents are still sent
with the web app's values (``legacy``, ``prefer_brownian``, ...): a server
that does not see them may fall back to older behaviour.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from ._models import UC_PRESET_NUMBERS
from ._options import Character, Settings

__all__ = [
    "DEFAULT_BASE_URL",
    "STREAM_PATH",
    "ZIP_PATH",
    "build_body",
    "describe",
    "endpoint_url",
    "headers",
    "negative_text",
    "prompt_text",
]

DEFAULT_BASE_URL: Final = "https://image.novelai.net"
STREAM_PATH: Final = "/ai/generate-image-stream"
ZIP_PATH: Final = "/ai/generate-image"

_ALNUM: Final = string.ascii_letters + string.digits


def endpoint_url(base_url: str | None, *, streaming: bool) -> str:
    """The URL of the streaming or the ZIP endpoint under ``base_url``."""
    base = (base_url or DEFAULT_BASE_URL).rstrip("/")
    return base + (STREAM_PATH if streaming else ZIP_PATH)


def headers(token: str) -> dict[str, str]:
    """Request headers: the bearer token and the two ids the web app adds.

    ``x-correlation-id`` and ``x-initiated-at`` are not needed by any client
    that works today, but the web app always sends them, so a server-side
    check that starts relying on them will not break this plugin.
    """
    now = datetime.now(UTC)
    return {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Accept": "*/*",
        "x-correlation-id": "".join(secrets.choice(_ALNUM) for _ in range(6)),
        "x-initiated-at": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
    }


def _has_tag(text: str, tag: str) -> bool:
    return any(part.strip().lower() == tag for part in text.split(","))


def prompt_text(settings: Settings) -> str:
    """The prompt as sent: the user's, then the model's quality tags when the toggle is on."""
    if settings.quality_toggle:
        return settings.prompt + settings.model.quality_tags
    return settings.prompt


def negative_text(settings: Settings) -> str:
    """The negative prompt as sent: the preset's tags, then the user's."""
    preset = settings.model.uc_presets.get(settings.uc_preset, "")
    if preset.startswith("nsfw, ") and _has_tag(settings.prompt, "nsfw"):
        # The web app drops the preset's "nsfw" when the prompt asks for it,
        # rather than send a prompt that contradicts itself.
        preset = preset[len("nsfw, ") :]
    if preset and settings.negative_prompt:
        return f"{preset}, {settings.negative_prompt}"
    return preset or settings.negative_prompt


def _point(center: tuple[float, float] | None, default: tuple[float, float]) -> dict[str, float]:
    x, y = center if center is not None else default
    return {"x": x, "y": y}


def _characters(characters: tuple[Character, ...]) -> tuple[bool, list[dict[str, Any]], list[Any], list[Any]]:
    """``use_coords``, ``characterPrompts`` and the positive and negative char captions."""
    use_coords = any(c.center is not None for c in characters)
    # With positions off the web app sends (0, 0) for each character; with
    # them on, a character without a position goes in the middle.
    default = (0.5, 0.5) if use_coords else (0.0, 0.0)
    prompts: list[dict[str, Any]] = []
    positive: list[Any] = []
    negative: list[Any] = []
    for character in characters:
        center = _point(character.center, default)
        prompts.append({"prompt": character.prompt, "uc": character.uc, "center": center, "enabled": True})
        positive.append({"char_caption": character.prompt, "centers": [center]})
        negative.append({"char_caption": character.uc, "centers": [center]})
    return use_coords, prompts, positive, negative


def _source_image(settings: Settings) -> dict[str, Any]:
    """The img2img / inpainting fields."""
    assert settings.image is not None
    fields: dict[str, Any] = {
        "image": settings.image.b64,
        "strength": settings.strength,
        "noise": settings.noise,
        # The web app seeds the extra img2img noise from the generation seed.
        "extra_noise_seed": settings.seed,
    }
    if settings.action == "infill":
        assert settings.mask is not None
        fields["mask"] = settings.mask.b64
        fields["inpaintImg2ImgStrength"] = settings.strength
    return fields


def _references(settings: Settings) -> dict[str, Any]:
    """Character references (V4.5) and vibe transfer, each as parallel lists."""
    fields: dict[str, Any] = {}
    refs = settings.character_references
    if refs:
        fields["director_reference_images"] = [ref.image.b64 for ref in refs]
        fields["director_reference_descriptions"] = [
            {"caption": {"base_caption": ref.kind, "char_captions": []}, "legacy_uc": False} for ref in refs
        ]
        fields["director_reference_strength_values"] = [ref.strength for ref in refs]
        # The API's "secondary strength" is the opposite of the web app's fidelity slider.
        fields["director_reference_secondary_strength_values"] = [round(1.0 - ref.fidelity, 2) for ref in refs]
        fields["director_reference_information_extracted"] = [1.0 for _ in refs]
    if settings.vibes:
        fields["reference_image_multiple"] = [vibe.data for vibe in settings.vibes]
        fields["reference_strength_multiple"] = [vibe.strength for vibe in settings.vibes]
        if not settings.model.is_v4:
            # V4+ vibes carry their extraction level from encoding time.
            fields["reference_information_extracted_multiple"] = [
                vibe.information_extracted for vibe in settings.vibes
            ]
    return fields


def build_body(settings: Settings) -> dict[str, Any]:
    """The JSON body for ``settings``, for the streaming or the ZIP endpoint.

    ``parameters.stream`` is set only for the streaming endpoint: a
    third-party note says the ZIP endpoint must not receive it.
    """
    prompt = prompt_text(settings)
    negative = negative_text(settings)
    parameters: dict[str, Any] = {
        "params_version": 3,
        "width": settings.width,
        "height": settings.height,
        "scale": settings.scale,
        "sampler": settings.sampler,
        "steps": settings.steps,
        "n_samples": settings.n_samples,
        "ucPreset": UC_PRESET_NUMBERS[settings.uc_preset],
        "qualityToggle": settings.quality_toggle,
        "autoSmea": False,
        "dynamic_thresholding": False,
        "controlnet_strength": settings.controlnet_strength,
        "legacy": False,
        "add_original_image": settings.add_original_image,
        "cfg_rescale": settings.cfg_rescale,
        "noise_schedule": settings.noise_schedule,
        "legacy_v3_extend": False,
        "skip_cfg_above_sigma": None,
        "normalize_reference_strength_multiple": True,
        "inpaintImg2ImgStrength": 1,
        "seed": settings.seed,
        "negative_prompt": negative,
        "deliberate_euler_ancestral_bug": False,
        "prefer_brownian": True,
    }
    if settings.model.is_v4:
        use_coords, prompts, positive, negative_captions = _characters(settings.characters)
        parameters.update(
            {
                "use_coords": use_coords,
                "legacy_uc": False,
                "characterPrompts": prompts,
                "v4_prompt": {
                    "caption": {"base_caption": prompt, "char_captions": positive},
                    "use_coords": use_coords,
                    "use_order": True,
                },
                "v4_negative_prompt": {
                    "caption": {"base_caption": negative, "char_captions": negative_captions},
                    "legacy_uc": False,
                },
            }
        )
    else:
        # V3 knew SMEA; the web app sends it switched off unless asked.
        parameters.update({"sm": False, "sm_dyn": False})
    if settings.action != "generate":
        parameters.update(_source_image(settings))
    parameters.update(_references(settings))
    if settings.image_format is not None:
        parameters["image_format"] = settings.image_format
    parameters.update(settings.extra_parameters)
    if settings.stream != "none":
        parameters["stream"] = settings.stream
    return {
        "input": prompt,
        "model": settings.api_model,
        "action": settings.action,
        "parameters": parameters,
    }


def describe(body: Mapping[str, Any]) -> str:
    """A one-line summary of a body for debug logs: no prompt text, no images."""
    parameters = body.get("parameters", {})
    return (
        f"model={body.get('model')} action={body.get('action')} "
        f"{parameters.get('width')}x{parameters.get('height')} steps={parameters.get('steps')} "
        f"n={parameters.get('n_samples')} stream={parameters.get('stream', 'none')}"
    )
