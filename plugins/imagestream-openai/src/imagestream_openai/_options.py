"""Check a request against the chosen API and model; build the settings the requests use.

Everything a model or an API would refuse is refused here, before any network
call: unknown option names (the message lists the known ones), values of the
wrong type or outside their range, and options the model does not support
(``response_format`` on GPT image models, streaming on DALL·E, ...).

Errors: :class:`~imagestream.ConfigurationError` for a name, type or value that
is wrong whatever the model; :class:`~imagestream.ValidationError` for a
combination the chosen model or API refuses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from imagestream import ImageRequest, parse_size
from imagestream.errors import ConfigurationError, ValidationError

from ._config import Endpoint, env_organization, env_project, resolve_base_url, resolve_key
from ._inputs import InputImage, input_images
from ._models import ModelSpec, spec_for

__all__ = ["DEFAULT_MODEL", "DEFAULT_RESPONSES_MODEL", "OPTIONS", "Settings", "resolve"]

DEFAULT_MODEL = "gpt-image-1.5"
DEFAULT_RESPONSES_MODEL = "gpt-4.1-mini"

DEFAULT_MAX_RESPONSE_BYTES = 256 * 2**20
"""Largest non-streamed body or downloaded image read into memory."""

_GPT_EDIT_IMAGE_BYTES = 50 * 2**20
_DALLE_EDIT_IMAGE_BYTES = 4 * 2**20
_MASK_BYTES = 4 * 2**20

OPTIONS: dict[str, str] = {
    "api": "'images' (default: /v1/images/*) or 'responses' (/v1/responses with the image_generation tool)",
    "stream": "true/false; default true for GPT image models, false for DALL-E",
    "background": "transparent, opaque or auto (GPT image models)",
    "moderation": "low or auto (GPT image models, generations)",
    "output_compression": "0-100, for jpeg and webp output (GPT image models)",
    "input_fidelity": "high or low, for edits (GPT image models that support it)",
    "style": "vivid or natural (dall-e-3)",
    "response_format": "url or b64_json (DALL-E only; GPT image models always send base64)",
    "image": "edit input: a file path or bytes, or a list of them",
    "mask": "edit mask: a PNG path or bytes (transparent where to edit)",
    "user": "end-user id sent as 'user' (abuse monitoring)",
    "organization": "OpenAI-Organization header (default: OPENAI_ORG_ID)",
    "project": "OpenAI-Project header (default: OPENAI_PROJECT_ID)",
    "responses_model": f"controlling model of the Responses API (default {DEFAULT_RESPONSES_MODEL})",
    "instructions": "system instructions for the Responses API model",
    "tool_choice": "'image_generation' (default: always draw), 'auto' or 'required' (Responses API)",
    "action": "generate, edit or auto: the tool's action (Responses API)",
    "auth_header": "'bearer' (default, Authorization: Bearer) or 'api-key' (Azure key header)",
    "api_version": "sent as ?api-version= (Azure deployments that need it)",
    "headers": "extra HTTP headers, a mapping of names to values",
    "max_response_bytes": f"cap of non-streamed bodies and downloads (default {DEFAULT_MAX_RESPONSE_BYTES})",
}
"""Every option this provider accepts, with a one-line description."""

_RESPONSES_ONLY = ("responses_model", "instructions", "tool_choice", "action")
_OUTPUT_FORMATS = ("png", "jpeg", "webp")


@attrs.frozen(repr=False)
class Settings:
    """A checked request, in the terms of the OpenAI API.

    Attributes:
        api: ``"images"`` or ``"responses"``.
        spec: The image model's rules (``spec.id`` is the model id sent).
        prompt: The prompt.
        stream: Whether to ask for a server-sent event stream.
        n: Number of images.
        endpoint: Base URL and credentials.
        params: Generation parameters as the API names them (``size``,
            ``quality``, ``output_format``, ``partial_images``, ...), only those set.
        images: Edit inputs (empty for a generation).
        images_as_list: Send inputs as ``image[]`` parts (a list was given)
            rather than one ``image`` part.
        mask: Edit mask, if any.
        responses_model: The Responses API's controlling model.
        instructions: Responses API instructions, if any.
        tool_choice: Responses API tool choice.
        timeout: Stall timeout in seconds, or ``None`` for the client default.
        max_response_bytes: Cap of whole bodies and downloads.
    """

    api: str
    spec: ModelSpec
    prompt: str
    stream: bool
    n: int
    endpoint: Endpoint
    params: Mapping[str, Any]
    images: tuple[InputImage, ...] = ()
    images_as_list: bool = False
    mask: InputImage | None = None
    responses_model: str = DEFAULT_RESPONSES_MODEL
    instructions: str | None = None
    tool_choice: str = "image_generation"
    timeout: float | None = None
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    @property
    def model(self) -> str:
        """The image model id."""
        return self.spec.id

    @property
    def is_edit(self) -> bool:
        """True when input images were given."""
        return bool(self.images)

    def __repr__(self) -> str:
        return f"Settings(api={self.api!r}, model={self.model!r}, stream={self.stream}, n={self.n})"


# -- small typed readers -------------------------------------------------------


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.strip().lower() not in allowed:
        raise ConfigurationError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value.strip().lower()


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{name} must be a non-empty string; got {type(value).__name__}")
    return value.strip()


def _integer(name: str, value: Any, low: int, high: int | None = None) -> int:
    # bool is an int subclass, and True is never a meaningful count.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(f"{name} must be an integer; got {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigurationError(f"{name} must be {bounds}; got {value}")
    return value


def _flag(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    raise ConfigurationError(f"{name} must be true or false; got {value!r}")


def _headers(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigurationError("headers must be a mapping of header names to string values")
    return dict(value)


# -- the checks ----------------------------------------------------------------


def _refuse_unknown(options: Mapping[str, Any], request: ImageRequest) -> None:
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ConfigurationError(
            f"openai does not know the option{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(u) for u in unknown)}",
            hint=f"known options: {', '.join(sorted(OPTIONS))}",
        )
    for field, value in (
        ("steps", request.steps),
        ("seed", request.seed),
        ("negative_prompt", request.negative_prompt),
    ):
        if value is not None:
            raise ConfigurationError(
                f"openai image models do not take {field}",
                hint=f"leave {field} unset, or describe what you want in the prompt",
            )


def _check_size(spec: ModelSpec, size: str | None) -> str | None:
    if size is None:
        return None
    size = size.strip().lower()
    if spec.sizes is not None:
        if size not in spec.sizes:
            raise ValidationError(
                f"{spec.id} does not make {size!r} images; sizes: {', '.join(spec.sizes)}"
            )
        return size
    if size == "auto":
        if spec.dalle:
            raise ValidationError(f"{spec.id} has no 'auto' size")
        return size
    dims = parse_size(size)
    assert dims is not None  # "auto" was handled above
    width, height = dims
    if spec.free_size:
        if width % 16 or height % 16:
            raise ValidationError(
                f"{spec.id}: width and height must be multiples of 16; got {width}x{height}"
            )
        if max(width, height) > 3 * min(width, height):
            raise ValidationError(
                f"{spec.id}: the aspect ratio must be between 1:3 and 3:1; got {width}x{height}"
            )
        if max(width, height) > 3840 or width * height > 3840 * 2160:
            raise ValidationError(f"{spec.id}: the largest size is 3840x2160; got {width}x{height}")
    return f"{width}x{height}"


def _params(
    request: ImageRequest,
    options: Mapping[str, Any],
    spec: ModelSpec,
    api: str,
    stream: bool,
    edit: bool,
) -> dict[str, Any]:
    """The generation parameters, checked, in the API's names (only those set)."""
    params: dict[str, Any] = {}

    def only_gpt(name: str) -> None:
        if spec.dalle:
            raise ValidationError(f"{spec.id} does not take {name} (only the GPT image models do)")

    size = _check_size(spec, request.size)
    if size is not None:
        params["size"] = size
    if request.quality is not None:
        quality = _text("quality", request.quality).lower()
        if spec.qualities is not None and quality not in spec.qualities:
            raise ValidationError(
                f"{spec.id} quality must be one of {', '.join(spec.qualities)}; got {quality!r}"
            )
        params["quality"] = quality

    output_format = None
    if request.output_format is not None:
        only_gpt("output_format")
        output_format = _text("output_format", request.output_format).lower()
        output_format = "jpeg" if output_format == "jpg" else output_format
        if spec.known and output_format not in _OUTPUT_FORMATS:
            raise ConfigurationError(
                f"output_format must be one of png, jpeg, webp; got {output_format!r}"
            )
        params["output_format"] = output_format

    if "output_compression" in options:
        only_gpt("output_compression")
        if (output_format or "png") not in ("jpeg", "webp"):
            raise ValidationError(
                "output_compression only applies to jpeg and webp output",
                hint="add --format jpeg or --format webp",
            )
        params["output_compression"] = _integer(
            "output_compression", options["output_compression"], 0, 100
        )

    if "background" in options:
        only_gpt("background")
        background = _choice("background", options["background"], ("transparent", "opaque", "auto"))
        if background == "transparent" and output_format == "jpeg":
            raise ValidationError("a transparent background needs png or webp output, not jpeg")
        params["background"] = background

    if "moderation" in options:
        only_gpt("moderation")
        if edit and api == "images":
            raise ValidationError("moderation applies to generations, not to /v1/images/edits")
        params["moderation"] = _choice("moderation", options["moderation"], ("low", "auto"))

    if request.partial_images is not None:
        if spec.dalle:
            raise ValidationError(f"{spec.id} does not stream partial images (GPT image models do)")
        if not stream:
            raise ValidationError("partial_images needs a stream", hint="drop -o stream false")
        params["partial_images"] = _integer("partial_images", request.partial_images, 0, 3)

    if "input_fidelity" in options:
        if not edit:
            raise ValidationError("input_fidelity applies to edits only (pass -o image PATH)")
        fidelity = _choice("input_fidelity", options["input_fidelity"], ("high", "low"))
        if fidelity not in spec.input_fidelity:
            allowed = ", ".join(spec.input_fidelity) or "no value (omit it)"
            raise ValidationError(f"{spec.id} input_fidelity accepts {allowed}; got {fidelity!r}")
        params["input_fidelity"] = fidelity

    if "style" in options:
        if spec.gpt_image or spec.family == "dall-e-2":
            raise ValidationError(f"style is a dall-e-3 option; {spec.id} does not take it")
        params["style"] = _choice("style", options["style"], ("vivid", "natural"))

    if "response_format" in options:
        if spec.gpt_image or api == "responses":
            raise ValidationError(
                f"{spec.id} does not take response_format: GPT image models always return base64",
                hint="drop -o response_format",
            )
        params["response_format"] = _choice(
            "response_format", options["response_format"], ("url", "b64_json")
        )

    if "user" in options:
        params["user"] = _text("user", options["user"])
    return params


def resolve(request: ImageRequest) -> Settings:
    """Check ``request`` and return the :class:`Settings` to send.

    Raises:
        ConfigurationError: Unknown option, wrong type or value, bad base URL.
        MissingAPIKeyError: No key in the request nor in ``OPENAI_API_KEY``.
        ValidationError: The model or API refuses this combination.
    """
    options = request.options
    _refuse_unknown(options, request)
    api = _choice("api", options.get("api", "images"), ("images", "responses"))
    spec = spec_for(_text("model", request.model) if request.model is not None else DEFAULT_MODEL)

    if api == "responses":
        if spec.dalle:
            raise ValidationError(
                f"the Responses API image tool runs GPT image models, not {spec.id}"
            )
        if request.n != 1:
            raise ValidationError(
                "the Responses API makes one image per call; use n=1 or -o api images"
            )
    else:
        misplaced = [name for name in _RESPONSES_ONLY if name in options]
        if misplaced:
            raise ValidationError(
                f"{', '.join(misplaced)} only apply to the Responses API",
                hint="add -o api responses",
            )
    n = _integer("n", request.n, 1)
    if n > spec.max_n:
        raise ValidationError(
            f"{spec.id} makes at most {spec.max_n} image(s) per request; got n={n}"
        )

    if "stream" in options:
        stream = _flag("stream", options["stream"])
        if stream and spec.dalle:
            raise ValidationError(f"{spec.id} cannot stream; only GPT image models can")
    else:
        stream = not spec.dalle

    images: tuple[InputImage, ...] = ()
    mask: InputImage | None = None
    if "image" in options:
        if not spec.edits:
            raise ValidationError(f"{spec.id} cannot edit images")
        limit = _DALLE_EDIT_IMAGE_BYTES if spec.dalle else _GPT_EDIT_IMAGE_BYTES
        images = input_images(options["image"], "image", limit)
        if len(images) > spec.max_edit_images:
            raise ValidationError(
                f"{spec.id} edits at most {spec.max_edit_images} image(s); got {len(images)}"
            )
        if spec.family == "dall-e-2":
            first = images[0]
            if first.mime_type != "image/png" or (
                first.dimensions and first.dimensions[0] != first.dimensions[1]
            ):
                raise ValidationError("dall-e-2 edits need one square PNG")
    if "mask" in options:
        if not images:
            raise ValidationError("a mask needs an image to edit (pass -o image PATH)")
        (mask,) = input_images(options["mask"], "mask", _MASK_BYTES)
        if mask.mime_type != "image/png":
            raise ValidationError(
                "the mask must be a PNG (transparent where the image should change)"
            )

    params = _params(request, options, spec, api, stream, bool(images))
    if api == "responses" and "action" in options:
        params["action"] = _choice("action", options["action"], ("generate", "edit", "auto"))

    endpoint = Endpoint(
        base_url=resolve_base_url(request.base_url),
        api_key=resolve_key(request.api_key),
        organization=_text("organization", options["organization"])
        if "organization" in options
        else env_organization(),
        project=_text("project", options["project"]) if "project" in options else env_project(),
        auth_header=_choice(
            "auth_header", options.get("auth_header", "bearer"), ("bearer", "api-key")
        ),
        api_version=_text("api_version", options["api_version"])
        if "api_version" in options
        else None,
        extra_headers=_headers(options["headers"]) if "headers" in options else {},
    )
    if request.timeout is not None and (
        isinstance(request.timeout, bool)
        or not isinstance(request.timeout, (int, float))
        or request.timeout <= 0
    ):
        raise ConfigurationError(
            f"timeout must be a positive number of seconds; got {request.timeout!r}"
        )
    if not request.prompt.strip():
        raise ValidationError("the prompt is empty", hint="say what to draw")

    return Settings(
        api=api,
        spec=spec,
        prompt=request.prompt,
        stream=stream,
        n=n,
        endpoint=endpoint,
        params=params,
        images=images,
        images_as_list=isinstance(options.get("image"), (list, tuple)),
        mask=mask,
        responses_model=(
            _text("responses_model", options["responses_model"])
            if "responses_model" in options
            else DEFAULT_RESPONSES_MODEL
        ),
        instructions=_text("instructions", options["instructions"])
        if "instructions" in options
        else None,
        tool_choice=_choice(
            "tool_choice",
            options.get("tool_choice", "image_generation"),
            ("image_generation", "auto", "required"),
        ),
        timeout=float(request.timeout) if request.timeout is not None else None,
        max_response_bytes=(
            _integer("max_response_bytes", options["max_response_bytes"], 1)
            if "max_response_bytes" in options
            else DEFAULT_MAX_RESPONSE_BYTES
        ),
    )
