"""A checked request: everything Google would refuse is refused here, before any network call.

Errors follow the kit's policy: :class:`~imagestream.ConfigurationError` for
what cannot be read (an unknown option, the wrong type, a word that is not a
choice), :class:`~imagestream.ValidationError` for what is read but refused
(an aspect ratio Google does not make, an option the chosen API or model does
not take). The Gemini API refuses Vertex AI's image options (output MIME
type, compression, person generation): they are refused here with a hint.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from fractions import Fraction
from typing import Any, Literal

import attrs

from imagestream import ImageRequest, Secret
from imagestream.provider import (
    InputImage,
    Options,
    find_key,
    load_input_images,
    read_choice,
    read_integer,
    read_list,
    read_mapping,
)

from ._endpoint import GEMINI_BASE_URL, check_base_url, vertex_host
from ._models import ASPECT_RATIOS, DEFAULT_MODEL, IMAGEN_ASPECT_RATIOS, ModelSpec, spec_for

__all__ = ["GEMINI_OPTIONS", "VERTEX_OPTIONS", "Api", "Settings", "parse"]

Api = Literal["gemini", "vertex", "express"]
"""Gemini API; Vertex AI with OAuth; Vertex AI express mode with an API key."""

_COMMON: dict[str, str] = {
    "image_only": "true: ask for images only (responseModalities IMAGE); default text and images",
    "aspect_ratio": f"one of {', '.join(ASPECT_RATIOS)} (or give --size WxH of that ratio)",
    "image_size": "1K, 2K or 4K (imageConfig.imageSize; also --size 2K)",
    "system_instruction": "system instruction text",
    "temperature": "sampling temperature, 0 to 2",
    "safety_settings": '{category: threshold}, e.g. {"dangerous_content": "block_only_high"}',
    "include_thoughts": "true: stream the model's thought summaries (kept apart from its answer)",
    "image": "input image(s) to edit: a path, bytes, base64 or a data: URL, or a list",
    "stream": "false: one whole response (generateContent) instead of a stream",
    "api_version": "API version path segment (Gemini: v1 default, v1beta; Vertex: v1beta1 default, v1)",
    "max_response_bytes": "cap of a whole (non-streamed) response body",
}
GEMINI_OPTIONS: dict[str, str] = dict(_COMMON)
"""Every option the ``gemini`` provider accepts."""

VERTEX_OPTIONS: dict[str, str] = {
    **_COMMON,
    "project": "Google Cloud project (default: GOOGLE_CLOUD_PROJECT)",
    "location": "Vertex AI location: global (default), us, eu or a region (default: GOOGLE_CLOUD_LOCATION)",
    "access_token": "an OAuth access token to use instead of Application Default Credentials",
    "output_compression": "0-100, JPEG quality of the output (with --format jpeg)",
    "person_generation": "allow_all, allow_adult or dont_allow",
    "enhance_prompt": "Imagen: let the model rewrite the prompt (true/false)",
    "add_watermark": "Imagen: SynthID watermark (true/false; false is needed for a seed)",
}
"""Every option the ``vertex`` provider accepts."""

_OUTPUT_TYPES = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "webp": "image/webp",
}
_THRESHOLDS = (
    "BLOCK_NONE",
    "BLOCK_ONLY_HIGH",
    "BLOCK_MEDIUM_AND_ABOVE",
    "BLOCK_LOW_AND_ABOVE",
    "OFF",
    "HARM_BLOCK_THRESHOLD_UNSPECIFIED",
)
_PERSON = {"allow_all": "ALLOW_ALL", "allow_adult": "ALLOW_ADULT", "dont_allow": "ALLOW_NONE"}
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_MAX_SEED = 2**31 - 1
MAX_INPUT_BYTES = 20 * 2**20
"""Largest input image sent inline (Google's inline request limit is 20 MB)."""
DEFAULT_MAX_RESPONSE_BYTES = 256 * 2**20


@attrs.frozen(repr=False)
class Settings:
    """A checked request, in Google's terms.

    Attributes:
        api: Which API and authentication.
        spec: The model's rules.
        prompt: The prompt.
        base_url: Scheme and host to send to.
        version: API version path segment.
        model_path: The path of the model below the version.
        api_key: The key (Gemini API, express mode).
        access_token: A token given directly (Vertex).
        project: Vertex project (OAuth mode).
        location: Vertex location.
        stream: Ask for a stream (``streamGenerateContent``).
        wants_image: Images were asked for (a reply without one is an error).
        generation_config: ``generationConfig`` of the body.
        system_instruction: The system instruction, if any.
        safety_settings: ``safetySettings`` of the body.
        images: Input images, sent inline after the prompt.
        imagen_parameters: ``parameters`` of an Imagen ``:predict`` body.
        timeout: Stall timeout in seconds, or ``None`` for the default.
        max_response_bytes: Cap of a whole response body.
    """

    api: Api
    spec: ModelSpec
    prompt: str
    base_url: str
    version: str
    model_path: str
    api_key: Secret | None = None
    access_token: Secret | None = None
    project: str | None = None
    location: str | None = None
    stream: bool = True
    wants_image: bool = True
    generation_config: Mapping[str, Any] = attrs.field(factory=dict)
    system_instruction: str | None = None
    safety_settings: tuple[Mapping[str, str], ...] = ()
    images: tuple[InputImage, ...] = ()
    imagen_parameters: Mapping[str, Any] = attrs.field(factory=dict)
    timeout: float | None = None
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    @property
    def model(self) -> str:
        """The model id sent."""
        return self.spec.id

    def __repr__(self) -> str:
        return f"Settings({self.api!r}, {self.model!r}, stream={self.stream})"


# -- the parts -----------------------------------------------------------------------


def _ratio(size: str, options: Options) -> tuple[str | None, str | None]:
    """``--size``: ``WxH`` or ``W:H`` → an aspect ratio; ``1K``/``2K``/``4K`` → an image size."""
    text = size.strip()
    if text.upper() in ("1K", "2K", "4K"):
        return None, text.upper()
    if text.lower() == "auto":
        return None, None
    match = re.fullmatch(r"(\d+)\s*[xX×:*]\s*(\d+)", text)
    if not match:
        raise options.unreadable(
            f"size {size!r} is not WIDTHxHEIGHT, W:H or 1K/2K/4K",
            hint=f"aspect ratios: {', '.join(ASPECT_RATIOS)}",
        )
    width, height = int(match[1]), int(match[2])
    if not width or not height:
        raise options.refuse(f"size {size!r} must be positive")
    # Exact ratios only (21:9 is 7:3): Google makes these shapes and no others.
    by_value = {Fraction(*map(int, name.split(":"))): name for name in ASPECT_RATIOS}
    ratio = by_value.get(Fraction(width, height))
    if ratio is None:
        reduced = Fraction(width, height)
        raise options.refuse(
            f"size {size!r} is the ratio {reduced.numerator}:{reduced.denominator}, "
            "which Google does not make",
            hint=f"use one of {', '.join(ASPECT_RATIOS)} (e.g. --size 1024x1024 or --size 16:9)",
        )
    return ratio, None


def _safety(value: object, options: Options) -> tuple[Mapping[str, str], ...]:
    """``{category: threshold}`` or ``[{category, threshold}]`` as ``safetySettings``."""
    pairs: list[tuple[object, object]]
    if isinstance(value, Mapping):
        pairs = list(read_mapping(value, "safety_settings", provider=options.provider).items())
    else:
        pairs = []
        for number, item in enumerate(
            read_list(value, "safety_settings", provider=options.provider)
        ):
            entry = read_mapping(
                item,
                f"safety_settings[{number}]",
                provider=options.provider,
                keys={"category", "threshold"},
            )
            pairs.append((entry.get("category"), entry.get("threshold")))
    settings = []
    for category, threshold in pairs:
        if not isinstance(category, str) or not isinstance(threshold, str):
            raise options.unreadable("safety_settings: categories and thresholds are text")
        name = category.strip().upper()
        name = name if name.startswith("HARM_CATEGORY_") else f"HARM_CATEGORY_{name}"
        level = threshold.strip().upper()
        level = level if level in _THRESHOLDS else f"BLOCK_{level}"
        settings.append(
            {
                "category": name,
                "threshold": read_choice(
                    level, "safety threshold", _THRESHOLDS, provider=options.provider
                ),
            }
        )
    return tuple(settings)


def _refuse_fields(request: ImageRequest, spec: ModelSpec, options: Options) -> None:
    if request.steps is not None:
        raise options.refuse(
            "Google's image models take no sampler steps", hint="leave --steps unset"
        )
    if request.quality is not None:
        raise options.refuse(
            "Google's image models take no quality level", hint="try -o image_size 2K"
        )
    if request.partial_images:
        raise options.refuse(
            "Gemini sends whole images, not partial ones", hint="leave --partial-images unset"
        )
    if request.negative_prompt is not None and not spec.imagen:
        raise options.refuse(
            "Gemini models take no negative prompt", hint="say what to avoid in the prompt itself"
        )
    if not request.prompt.strip():
        raise options.refuse("the prompt is empty", hint="say what to draw")


def _gemini_config(
    request: ImageRequest, spec: ModelSpec, options: Options, api: Api
) -> dict[str, Any]:
    """``generationConfig`` of a ``generateContent`` body, keys in the official SDK's order."""
    config: dict[str, Any] = {}
    temperature = options.number("temperature", low=0.0, high=2.0)
    if temperature is not None:
        config["temperature"] = temperature
    if request.seed is not None:
        config["seed"] = read_integer(
            request.seed, "seed", provider=options.provider, low=0, high=_MAX_SEED
        )
    image_only = options.flag("image_only", False)
    config["responseModalities"] = ["IMAGE"] if image_only else ["TEXT", "IMAGE"]
    if options.flag("include_thoughts", False):
        config["thinkingConfig"] = {"includeThoughts": True}
    image_config = _image_config(request, spec, options, api)
    if image_config:
        config["imageConfig"] = image_config
    return config


def _image_config(
    request: ImageRequest, spec: ModelSpec, options: Options, api: Api
) -> dict[str, Any]:
    ratio, size = _ratio(request.size, options) if request.size else (None, None)
    chosen = options.choice("aspect_ratio", ASPECT_RATIOS)
    if chosen is not None and ratio is not None and chosen != ratio:
        raise options.refuse(f"--size is {ratio} but aspect_ratio is {chosen}")
    ratio = chosen or ratio
    image_size = options.raw("image_size")
    if image_size is not None:
        image_size = read_choice(
            str(image_size).upper(), "image_size", ("1K", "2K", "4K"), provider=options.provider
        )
        if size is not None and size != image_size:
            raise options.refuse(f"--size is {size} but image_size is {image_size}")
    image_size = image_size or size
    if image_size is not None and spec.known and image_size not in spec.image_sizes:
        sizes = ", ".join(spec.image_sizes) or "none"
        raise options.refuse(
            f"{spec.id} makes {sizes} images, not {image_size}",
            hint="gemini-3-pro-image-preview makes 1K, 2K and 4K",
        )
    config: dict[str, Any] = {}
    if ratio is not None:
        config["aspectRatio"] = ratio
    if image_size is not None:
        config["imageSize"] = image_size
    if api == "gemini":
        _refuse_vertex_only(request, options)
        return config
    person = options.choice("person_generation", tuple(_PERSON))
    if person is not None:
        config["personGeneration"] = _PERSON[person]
    output = _output_options(request, options)
    if output:
        config["imageOutputOptions"] = output
    return config


def _refuse_vertex_only(request: ImageRequest, options: Options) -> None:
    given = [name for name in VERTEX_OPTIONS if name not in GEMINI_OPTIONS and name in options]
    if request.output_format is not None:
        given.insert(0, "--format")
    if given:
        raise options.refuse(
            f"the Gemini API does not take {', '.join(given)}: Vertex AI options",
            hint="drop them (Gemini answers PNG), or use -p vertex",
        )


def _output_options(request: ImageRequest, options: Options) -> dict[str, Any]:
    output: dict[str, Any] = {}
    if request.output_format is not None:
        fmt = read_choice(
            request.output_format.lower(), "format", tuple(_OUTPUT_TYPES), provider=options.provider
        )
        output["mimeType"] = _OUTPUT_TYPES[fmt]
    compression = options.integer("output_compression", low=0, high=100)
    if compression is not None:
        if output.get("mimeType") != "image/jpeg":
            raise options.refuse(
                "output_compression applies to JPEG output", hint="add --format jpeg"
            )
        output["compressionQuality"] = compression
    return output


def _imagen_parameters(request: ImageRequest, spec: ModelSpec, options: Options) -> dict[str, Any]:
    """``parameters`` of an Imagen ``:predict`` body."""
    n = read_integer(request.n, "n", provider=options.provider, low=1, high=4)
    parameters: dict[str, Any] = {"sampleCount": n}
    ratio, size = _ratio(request.size, options) if request.size else (None, None)
    ratio = options.choice("aspect_ratio", ASPECT_RATIOS) or ratio
    if ratio is not None:
        if ratio not in IMAGEN_ASPECT_RATIOS:
            raise options.refuse(
                f"Imagen makes {', '.join(IMAGEN_ASPECT_RATIOS)} images, not {ratio}"
            )
        parameters["aspectRatio"] = ratio
    image_size = options.choice("image_size", ("1K", "2K")) or size
    if image_size is not None:
        if image_size not in spec.image_sizes:
            raise options.refuse(
                f"{spec.id} makes {', '.join(spec.image_sizes) or 'one size'} images"
            )
        parameters["sampleImageSize"] = image_size
    if request.negative_prompt:
        parameters["negativePrompt"] = request.negative_prompt
    if request.seed is not None:
        parameters["seed"] = read_integer(
            request.seed, "seed", provider=options.provider, low=0, high=_MAX_SEED
        )
    person = options.choice("person_generation", tuple(_PERSON))
    if person is not None:
        parameters["personGeneration"] = person
    for name, key in (("enhance_prompt", "enhancePrompt"), ("add_watermark", "addWatermark")):
        flag = options.flag(name)
        if flag is not None:
            parameters[key] = flag
    if request.seed is not None and parameters.get("addWatermark", True):
        raise options.refuse(
            "Imagen takes a seed only without a watermark", hint="add -o add_watermark false"
        )
    output = _output_options(request, options)
    if output:
        parameters["outputOptions"] = output
    for name in (
        "image",
        "include_thoughts",
        "image_only",
        "system_instruction",
        "temperature",
        "safety_settings",
    ):
        if name in options:
            raise options.refuse(f"Imagen does not take {name}", hint="use a Gemini image model")
    return parameters


def _location(options: Options, spec: ModelSpec) -> str:
    given = options.text("location") or os.environ.get("GOOGLE_CLOUD_LOCATION", "").strip() or None
    if given is None:
        return "global"
    if not _NAME.match(given):
        raise options.unreadable(f"location {given!r} is not a Vertex AI location name")
    if spec.global_only and given != "global":
        raise options.refuse(
            f"{spec.id} is served only from the 'global' location, not {given!r}",
            hint="use -o location global (or unset GOOGLE_CLOUD_LOCATION)",
        )
    return given


def _vertex_auth(
    request: ImageRequest, options: Options
) -> tuple[Api, Secret | None, Secret | None, str | None]:
    """(api, key, token, project): express mode with a key, or OAuth with a project."""
    if request.api_key:
        # An explicit key means express mode, whatever the environment says.
        return "express", find_key(request.api_key, (), provider="vertex"), None, None
    token = options.text("access_token")
    project = options.text("project") or os.environ.get("GOOGLE_CLOUD_PROJECT", "").strip() or None
    if project is not None and not re.fullmatch(r"[a-z][a-z0-9-]{4,61}[a-z0-9]|[0-9]{6,}", project):
        raise options.unreadable(f"project {project!r} is not a Google Cloud project id")
    if token is not None or project is not None:
        if project is None:
            raise options.unreadable(
                "an access token needs a project", hint="set GOOGLE_CLOUD_PROJECT or -o project ID"
            )
        return "vertex", None, Secret(token) if token else None, project
    key = find_key(None, ("GOOGLE_API_KEY",), provider="vertex")
    if key is not None:
        return "express", key, None, None
    raise options.unreadable(
        "Vertex AI needs a project (with Application Default Credentials) or an API key",
        hint="set GOOGLE_CLOUD_PROJECT and run 'gcloud auth application-default login', "
        "or pass --key for express mode",
    )


def _images(options: Options) -> tuple[InputImage, ...]:
    value = options.raw("image")
    if value is None:
        return ()
    return load_input_images(value, "image", provider=options.provider, max_bytes=MAX_INPUT_BYTES)


# -- all together --------------------------------------------------------------------


def parse(
    request: ImageRequest, *, api: Literal["gemini", "vertex"], key: Secret | None = None
) -> Settings:
    """Check ``request`` for the Gemini API (``key`` required) or Vertex AI.

    Raises:
        ConfigurationError: An unknown option, a value of the wrong type, no credentials.
        ValidationError: A value Google or the model refuses.
    """
    # Vertex's names are read for Gemini too, so that they get a precise refusal.
    options = Options(request.options, provider=api, known=VERTEX_OPTIONS)
    spec = spec_for(request.model or DEFAULT_MODEL)
    _refuse_fields(request, spec, options)
    version = options.choice(
        "api_version", ("v1", "v1beta", "v1alpha") if api == "gemini" else ("v1", "v1beta1")
    ) or ("v1" if api == "gemini" else "v1beta1")
    common: dict[str, Any] = {
        "spec": spec,
        "prompt": request.prompt,
        "version": version,
        "stream": options.flag("stream", True),
        "timeout": _timeout(request, options),
        "max_response_bytes": options.integer(
            "max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES, low=1
        ),
    }
    if api == "gemini":
        if spec.imagen:
            raise options.refuse(
                f"{spec.id} is an Imagen model: Google serves Imagen on Vertex AI only",
                hint="use -p vertex (Imagen is deprecated; gemini-2.5-flash-image replaces it)",
            )
        assert key is not None
        base = check_base_url(request.base_url or GEMINI_BASE_URL, "gemini")
        return Settings(
            api="gemini",
            base_url=base,
            model_path=f"models/{spec.id}",
            api_key=key,
            **common,
            **_gemini_parts(request, spec, options, "gemini"),
        )
    mode, api_key, token, project = _vertex_auth(request, options)
    location = _location(options, spec)
    if mode == "express":
        model_path = f"publishers/google/models/{spec.id}"
        base = check_base_url(request.base_url or vertex_host("global"), "vertex")
    else:
        model_path = f"projects/{project}/locations/{location}/publishers/google/models/{spec.id}"
        base = check_base_url(request.base_url or vertex_host(location), "vertex")
    parts = (
        {"imagen_parameters": _imagen_parameters(request, spec, options), "stream": False}
        if spec.imagen
        else _gemini_parts(request, spec, options, mode)
    )
    common.update(parts)
    return Settings(
        api=mode,
        base_url=base,
        model_path=model_path,
        api_key=api_key,
        access_token=token,
        project=project,
        location=location,
        **common,
    )


def _gemini_parts(
    request: ImageRequest, spec: ModelSpec, options: Options, api: Api
) -> dict[str, Any]:
    if request.n != 1:
        read_integer(request.n, "n", provider=options.provider, low=1)
        raise options.refuse(
            f"{spec.id} draws one answer per request, not n={request.n}",
            hint="make several requests (the answer itself may hold several images)",
        )
    config = _gemini_config(request, spec, options, api)
    safety = options.raw("safety_settings")
    return {
        "generation_config": config,
        "wants_image": True,
        "system_instruction": options.text("system_instruction"),
        "safety_settings": _safety(safety, options) if safety is not None else (),
        "images": _images(options),
    }


def _timeout(request: ImageRequest, options: Options) -> float | None:
    if request.timeout is None:
        return None
    if (
        isinstance(request.timeout, bool)
        or not isinstance(request.timeout, int | float)
        or request.timeout <= 0
    ):
        raise options.refuse(
            f"timeout must be a positive number of seconds, not {request.timeout!r}"
        )
    return float(request.timeout)


def body(settings: Settings) -> dict[str, Any]:
    """The JSON body: ``generateContent`` for Gemini models, ``:predict`` for Imagen."""
    if settings.spec.imagen:
        return {
            "instances": [{"prompt": settings.prompt}],
            "parameters": dict(settings.imagen_parameters),
        }
    parts: list[dict[str, Any]] = [{"text": settings.prompt}]
    parts += [
        {"inlineData": {"mimeType": image.mime_type, "data": image.b64}}
        for image in settings.images
    ]
    # Keys in the order the official SDK writes them.
    out: dict[str, Any] = {"contents": [{"parts": parts, "role": "user"}]}
    if settings.system_instruction:
        out["systemInstruction"] = {
            "parts": [{"text": settings.system_instruction}],
            "role": "user",
        }
    if settings.safety_settings:
        out["safetySettings"] = [dict(item) for item in settings.safety_settings]
    out["generationConfig"] = dict(settings.generation_config)
    return out


def describe(payload: Mapping[str, Any]) -> str:
    """A short, key-free summary of a body for debug logs (no image data)."""
    config = payload.get("generationConfig") or payload.get("parameters") or {}
    return ", ".join(
        f"{name}={value!r}" for name, value in config.items() if name != "imageOutputOptions"
    )
