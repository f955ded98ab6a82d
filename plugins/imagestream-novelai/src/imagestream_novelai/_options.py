"""Turn an :class:`~imagestream.ImageRequest` into checked NovelAI settings.

Everything the API would refuse (and a few things it would accept but
silently misuse) is refused here, with a message that says what to change,
before any network call: a refused request costs no Anlas and no time.

Errors follow the kit's one policy (see :mod:`imagestream.provider`):
:class:`~imagestream.ConfigurationError` for settings that cannot be read (an
unknown option, model or sampler, a value of the wrong type);
:class:`~imagestream.ValidationError` for readable values the request cannot
use (out of range, or a combination that does not go together).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any, Final, Literal, cast

import attrs

from imagestream import ConfigurationError, ImageRequest, parse_size
from imagestream.provider import InputImage, Options, read_choice, read_integer

from ._errors import PROVIDER
from ._models import (
    MODELS,
    NAMED_SIZES,
    NOISE_SCHEDULES,
    SAMPLERS,
    UC_PRESET_NUMBERS,
    ModelSpec,
)
from ._parts import (
    Character,
    CharacterReference,
    VibeReference,
    load_image,
    read_character_references,
    read_characters,
    read_controlnet,
    verbatim,
)

__all__ = [
    "KNOWN_OPTIONS",
    "Character",
    "CharacterReference",
    "Settings",
    "StreamMode",
    "VibeReference",
    "parse_settings",
    "random_seed",
]

StreamMode = Literal["msgpack", "sse", "none"]
"""How the result comes back: msgpack frames, SSE events, or a ZIP (``none``)."""

KNOWN_OPTIONS: Final[frozenset[str]] = frozenset(
    {
        "stream",
        "scale",
        "sampler",
        "noise_schedule",
        "cfg_rescale",
        "quality_toggle",
        "uc_preset",
        "negative_prompt",
        "characters",
        "action",
        "image",
        "strength",
        "noise",
        "mask",
        "add_original_image",
        "character_references",
        "controlnet",
        "extra_parameters",
    }
)
"""Every option the provider accepts in ``request.options``."""

DEFAULT_STEPS: Final = 28
DEFAULT_SCALE: Final = 5.0
DEFAULT_SAMPLER: Final = "k_euler_ancestral"
DEFAULT_NOISE_SCHEDULE: Final = "karras"
DEFAULT_UC_PRESET: Final = "heavy"
DEFAULT_STRENGTH: Final = 0.7
MAX_STEPS: Final = 50
MAX_SAMPLES: Final = 8
MAX_SCALE: Final = 10.0
MAX_SEED: Final = 2**32 - 1
SIDE_STEP: Final = 64

_ACTIONS: Final = ("generate", "img2img", "infill")


@attrs.frozen
class Settings:
    """Everything one NovelAI request needs, checked and with defaults filled in."""

    model: ModelSpec
    prompt: str
    negative_prompt: str
    width: int
    height: int
    steps: int
    seed: int
    n_samples: int
    scale: float
    sampler: str
    noise_schedule: str
    cfg_rescale: float
    quality_toggle: bool
    uc_preset: str
    stream: StreamMode
    action: str = "generate"
    characters: tuple[Character, ...] = ()
    image: InputImage | None = None
    mask: InputImage | None = None
    strength: float = DEFAULT_STRENGTH
    noise: float = 0.0
    add_original_image: bool = True
    character_references: tuple[CharacterReference, ...] = ()
    vibes: tuple[VibeReference, ...] = ()
    controlnet_strength: float = 1.0
    image_format: str | None = None
    extra_parameters: Mapping[str, Any] = attrs.field(factory=dict)
    preview_steps: frozenset[int] | None = None

    @property
    def api_model(self) -> str:
        """The model id to send: inpainting uses the model's inpainting twin."""
        return self.model.inpainting_id if self.action == "infill" else self.model.id


def random_seed() -> int:
    """A fresh seed. The top few values are avoided: a batch may count up from its seed."""
    return secrets.randbelow(MAX_SEED - MAX_SAMPLES)


# -- the parts of a request ------------------------------------------------------


def _size(request: ImageRequest, image: InputImage | None, model: ModelSpec, options: Options) -> tuple[int, int]:
    raw = (request.size or "").strip().lower()
    named = ", ".join(NAMED_SIZES)
    if raw in NAMED_SIZES:
        width, height = NAMED_SIZES[raw]
    else:
        try:
            parsed = parse_size(request.size)
        except ConfigurationError:
            raise options.unreadable(
                f"size {request.size!r} is not WIDTHxHEIGHT", hint=f"e.g. 832x1216, or one of: {named}"
            ) from None
        if parsed is not None:
            width, height = parsed
        elif image is not None and image.size is not None:
            # img2img and inpainting keep the source image's size unless told otherwise.
            width, height = image.size
        else:
            width, height = NAMED_SIZES["portrait"]
    if width % SIDE_STEP or height % SIDE_STEP:
        raise options.refuse(
            f"size {width}x{height}: width and height must be multiples of {SIDE_STEP}",
            hint=f"e.g. 832x1216, or a named size: {named}",
        )
    if width < SIDE_STEP or height < SIDE_STEP:
        raise options.refuse(f"size {width}x{height} is too small; each side must be at least {SIDE_STEP}")
    if width * height > model.max_pixels:
        raise options.refuse(
            f"size {width}x{height} is {width * height} pixels; {model.id} takes at most {model.max_pixels}",
            hint=f"use a smaller size, e.g. one of: {named}",
        )
    return width, height


def _negative(request: ImageRequest, options: Options) -> str:
    field, value = request.negative_prompt, options.raw("negative_prompt")
    if value is None:
        return field or ""
    option = verbatim(value, "negative_prompt")
    if field is not None and field != option:
        raise options.unreadable("negative_prompt given both as a field and as an option, with different text")
    return option


def _uc_preset(options: Options, model: ModelSpec) -> str:
    value = options.raw("uc_preset")
    if value is None:
        value = DEFAULT_UC_PRESET
    if isinstance(value, int) and not isinstance(value, bool):
        by_number = {number: name for name, number in UC_PRESET_NUMBERS.items()}
        if value not in by_number:
            raise options.unreadable(f"unknown uc_preset number {value}", hint="use 0 (heavy) to 4 (none), or a name")
        value = by_number[value]
    name = read_choice(value, "uc_preset", UC_PRESET_NUMBERS, provider=PROVIDER)
    if name not in model.uc_presets:
        raise options.refuse(
            f"uc_preset {name!r} does not exist for {model.id}",
            hint=f"its presets: {', '.join(model.uc_presets)}",
        )
    return name


def _stream_mode(options: Options, model: ModelSpec) -> StreamMode:
    if options.raw("stream") is False:
        return "none"
    default = "msgpack" if model.streams_by_default else "none"
    return cast(StreamMode, options.choice("stream", ("msgpack", "sse", "none"), default))


def _preview_steps(partial_images: int | None, steps: int, options: Options) -> frozenset[int] | None:
    """The steps whose previews are kept when ``partial_images`` asks for fewer."""
    if partial_images is None or partial_images >= steps:
        return None
    if partial_images < 0:
        raise options.refuse("partial_images must be 0 or more")
    # Evenly spread, always ending on the last step.
    return frozenset(round((i + 1) * steps / partial_images) - 1 for i in range(partial_images))


def _extra(options: Options) -> Mapping[str, Any]:
    value = options.mapping("extra_parameters") or {}
    if "stream" in value:
        # The response format decides how the body is decoded: use the stream option.
        raise options.unreadable("extra_parameters cannot set stream", hint="use the stream option")
    return dict(value)


def _action(options: Options, image: InputImage | None, mask: InputImage | None) -> str:
    """The action, checked against the input images and the options only img2img takes."""
    action = options.choice("action", _ACTIONS, "img2img" if image is not None else "generate")
    if action == "generate" and image is not None:
        raise options.refuse("an input image was given but action is generate", hint="use action img2img or infill")
    if action != "generate" and image is None:
        raise options.refuse(f"action {action} needs an input image (the image option)")
    if mask is not None and action != "infill":
        raise options.refuse("a mask only makes sense for inpainting", hint="set the action option to infill")
    if action == "infill" and mask is None:
        raise options.refuse("action infill needs a mask (white where to paint, black where to keep)")
    for name in ("strength", "noise"):
        if name in options and action == "generate":
            raise options.refuse(f"{name} only applies to img2img and infill")
    return action


# -- all together -----------------------------------------------------------------


def parse_settings(request: ImageRequest, *, default_model: str) -> Settings:
    """Check ``request`` and return its settings with defaults filled in.

    Input image files are read here; the provider does this once per run
    (``validate`` hands the settings on in a :class:`~imagestream.provider.Prepared`).

    Raises:
        ConfigurationError: An unknown option or value, or a value of the wrong type.
        ValidationError: A value out of range, or options that do not go together.
    """
    options = Options(request.options, provider=PROVIDER, known=KNOWN_OPTIONS)
    if not request.prompt.strip():
        raise options.refuse("the prompt is empty")
    if request.quality is not None:
        raise options.unreadable("NovelAI has no quality levels", hint="use the quality_toggle and uc_preset options")
    model = MODELS[read_choice(request.model or default_model, "model", MODELS, provider=PROVIDER)]
    image_format = None
    if request.output_format is not None:
        image_format = read_choice(request.output_format, "output format", ("png", "webp"), provider=PROVIDER)

    image = None if options.raw("image") is None else load_image(options.raw("image"), "image")
    mask = None if options.raw("mask") is None else load_image(options.raw("mask"), "mask")
    action = _action(options, image, mask)
    width, height = _size(request, image, model, options)
    for name, picture in (("image", image), ("mask", mask)):
        if picture is not None and picture.size is not None and picture.size != (width, height):
            raise options.refuse(
                f"the {name} is {picture.width}x{picture.height} but the size is {width}x{height}",
                hint="resize the input to the generation size, or pass a matching size",
            )

    steps = read_integer(
        request.steps if request.steps is not None else DEFAULT_STEPS, "steps", provider=PROVIDER, low=1, high=MAX_STEPS
    )
    read_integer(request.n, "n (n_samples)", provider=PROVIDER, low=1, high=MAX_SAMPLES)
    seed = read_integer(
        request.seed if request.seed is not None else random_seed(), "seed", provider=PROVIDER, low=0, high=MAX_SEED
    )
    noise_schedule = options.choice("noise_schedule", NOISE_SCHEDULES, DEFAULT_NOISE_SCHEDULE)
    if noise_schedule == "native" and model.is_v4:
        raise options.refuse("the native noise schedule only exists for V3 models", hint="use karras")
    vibes, controlnet_strength = read_controlnet(options, model)

    return Settings(
        model=model,
        prompt=request.prompt,
        negative_prompt=_negative(request, options),
        width=width,
        height=height,
        steps=steps,
        seed=seed,
        n_samples=request.n,
        scale=options.number("scale", DEFAULT_SCALE, low=0.0, high=MAX_SCALE),
        sampler=options.choice("sampler", SAMPLERS, DEFAULT_SAMPLER),
        noise_schedule=noise_schedule,
        cfg_rescale=options.number("cfg_rescale", 0.0, low=0.0, high=1.0),
        quality_toggle=options.flag("quality_toggle", True),
        uc_preset=_uc_preset(options, model),
        stream=_stream_mode(options, model),
        action=action,
        characters=read_characters(options, model),
        image=image,
        mask=mask,
        strength=options.number("strength", DEFAULT_STRENGTH, low=0.01, high=1.0 if action == "infill" else 0.99),
        noise=options.number("noise", 0.0, low=0.0, high=0.99),
        add_original_image=options.flag("add_original_image", True),
        character_references=read_character_references(options, model),
        vibes=vibes,
        controlnet_strength=controlnet_strength,
        image_format=image_format,
        extra_parameters=_extra(options),
        preview_steps=_preview_steps(request.partial_images, steps, options),
    )
