"""Check a request against the chosen API and model; build the settings the requests use.

Everything a model or an API would refuse is refused here, before any network
call: unknown option names (with "did you mean"), values of the wrong type or
outside their range, and options the model does not support
(``response_format`` on GPT image models, streaming on DALL·E, ...). Values
are read with the kit's readers, so the errors follow its one policy
(:mod:`imagestream.provider`): :class:`~imagestream.ConfigurationError` for a
value that cannot be read, :class:`~imagestream.ValidationError` for one that
is read but refused (out of range, or a combination the model or API refuses).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import attrs

from imagestream.errors import ConfigurationError, ValidationError
from imagestream.provider import (
    ImageRequest,
    InputImage,
    Options,
    Secret,
    load_input_image,
    load_input_images,
    read_choice,
    read_integer,
    read_number,
    read_size,
    read_text,
)

from ._config import Endpoint, env_organization, env_project, resolve_base_url
from ._models import (
    NO_STREAM_FORMATS,
    OUTPUT_FORMATS,
    ModelSpec,
    RetiredModelWarning,
    spec_for,
)

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
    "stream": "true/false; default true for GPT image models (gif output: false), false for DALL-E",
    "background": "transparent, opaque or auto (GPT image models)",
    "moderation": "low or auto (GPT image models, generations)",
    "output_compression": "0-100, for jpeg and webp output (GPT image models)",
    "input_fidelity": "high or low, for edits (GPT image models that support it)",
    "complexity": "low, medium or high: effort spent planning the image (GPT image models)",
    "frame_count": "2-16 frames of gif output (default 9)",
    "frame_duration_ms": "delay of each gif frame in milliseconds (default 200)",
    "style": "vivid or natural (dall-e-3)",
    "response_format": "url or b64_json (DALL-E only; GPT image models always send base64)",
    "image": "edit input: a file path, bytes, base64 or a data: URL, or a list of them",
    "mask": "edit mask: a PNG as a path, bytes, base64 or a data: URL (transparent where to edit)",
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

_P = "openai"
_RESPONSES_ONLY = ("responses_model", "instructions", "tool_choice", "action")


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


# -- the checks ----------------------------------------------------------------


def _refused(message: str, hint: str | None = None) -> ValidationError:
    return ValidationError(f"{_P}: {message}", hint=hint)


def _refuse_foreign_fields(request: ImageRequest) -> None:
    # Fields OpenAI has no parameter for cannot be read as any setting: like an
    # unknown option name, a ConfigurationError.
    for field, value in (
        ("steps", request.steps),
        ("seed", request.seed),
        ("negative_prompt", request.negative_prompt),
    ):
        if value is not None:
            raise ConfigurationError(
                f"{_P}: image models do not take {field}",
                hint=f"leave {field} unset, or describe what you want in the prompt",
            )


def _check_size(spec: ModelSpec, size: str | None) -> str | None:
    if size is None:
        return None
    dims = None
    size = size.strip().lower()
    if size != "auto":
        # Unreadable (not WIDTHxHEIGHT) is a ConfigurationError whatever the model.
        dims = read_size(size, provider=_P)
        size = f"{dims[0]}x{dims[1]}"
    if spec.sizes is not None:
        if size not in spec.sizes:
            raise _refused(
                f"{spec.id} does not make {size!r} images; sizes: {', '.join(spec.sizes)}"
            )
    elif dims is not None and spec.free_size:
        width, height = dims
        if width % 16 or height % 16:
            raise _refused(f"{spec.id}: width and height must be multiples of 16; got {size}")
        if max(width, height) > 3 * min(width, height):
            raise _refused(f"{spec.id}: the aspect ratio must be between 1:3 and 3:1; got {size}")
        if max(width, height) > 3840 or width * height > 3840 * 2160:
            raise _refused(f"{spec.id}: the largest size is 3840x2160; got {size}")
    return size


def _output_format(request: ImageRequest, spec: ModelSpec) -> str | None:
    """The requested ``output_format`` in the API's word (``jpg`` is ``jpeg``), checked."""
    if request.output_format is None:
        return None
    if spec.dalle:
        raise _refused(f"{spec.id} does not take output_format (only the GPT image models do)")
    output_format = read_text(request.output_format, "output_format", provider=_P).lower()
    output_format = "jpeg" if output_format == "jpg" else output_format
    if output_format == "svg":
        # The API can make SVG, but it is no raster image: the core's image
        # checks would refuse it once made, and billed.
        raise _refused(
            "svg output is not supported: imagestream carries raster images "
            f"({', '.join(OUTPUT_FORMATS)})",
            hint="ask for --format png, or call the API directly for SVG",
        )
    if spec.known:
        output_format = read_choice(output_format, "output_format", OUTPUT_FORMATS, provider=_P)
    return output_format


def _stream(options: Options, spec: ModelSpec, api: str, output_format: str | None) -> bool:
    """Whether to stream: by default, whenever the model and the output format can."""
    # The Images API cannot stream a gif; the Responses API streams its other
    # events and sends the gif whole.
    whole_format = output_format in NO_STREAM_FORMATS and api == "images"
    stream = options.flag("stream", not spec.dalle and not whole_format)
    if stream and spec.dalle:
        raise _refused(f"{spec.id} cannot stream; only GPT image models can")
    if stream and whole_format:
        raise _refused(
            f"{output_format} output cannot be streamed by the Images API",
            hint=f"drop -o stream true: a {output_format} comes whole",
        )
    return stream


def _params(
    request: ImageRequest,
    options: Options,
    spec: ModelSpec,
    api: str,
    stream: bool,
    edit: bool,
    output_format: str | None,
) -> dict[str, Any]:
    """The generation parameters, checked, in the API's names (only those set)."""
    params: dict[str, Any] = {}

    def only_gpt(name: str) -> None:
        if spec.dalle:
            raise _refused(f"{spec.id} does not take {name} (only the GPT image models do)")

    size = _check_size(spec, request.size)
    if size is not None:
        params["size"] = size
    if request.quality is not None:
        quality = read_text(request.quality, "quality", provider=_P).lower()
        # A word another model accepts: refused by this model, not unreadable.
        if spec.qualities is not None and quality not in spec.qualities:
            raise _refused(
                f"{spec.id} quality must be one of {', '.join(spec.qualities)}; got {quality!r}"
            )
        params["quality"] = quality

    if output_format is not None:
        params["output_format"] = output_format

    if "output_compression" in options:
        only_gpt("output_compression")
        if (output_format or "png") not in ("jpeg", "webp"):
            raise _refused(
                "output_compression only applies to jpeg and webp output",
                hint="add --format jpeg or --format webp",
            )
        params["output_compression"] = options.integer("output_compression", low=0, high=100)

    if "background" in options:
        only_gpt("background")
        background = options.choice("background", ("transparent", "opaque", "auto"))
        if background == "transparent" and output_format == "jpeg":
            raise _refused("a transparent background needs png or webp output, not jpeg")
        params["background"] = background

    if "moderation" in options:
        only_gpt("moderation")
        if edit and api == "images":
            raise _refused("moderation applies to generations, not to /v1/images/edits")
        params["moderation"] = options.choice("moderation", ("low", "auto"))

    if request.partial_images is not None:
        if spec.dalle:
            raise _refused(f"{spec.id} does not stream partial images (GPT image models do)")
        partial = read_integer(request.partial_images, "partial_images", provider=_P, low=0, high=3)
        # Images API: no gif stream at all; Responses API: partial_images 0 only.
        if output_format in NO_STREAM_FORMATS and (api == "images" or partial):
            raise _refused(
                f"{output_format} output has no partial images",
                hint="drop --partial-images, or ask for png, jpeg or webp",
            )
        if not stream:
            raise _refused("partial_images needs a stream", hint="drop -o stream false")
        params["partial_images"] = partial

    if "input_fidelity" in options:
        if not edit:
            raise _refused("input_fidelity applies to edits only (pass -o image PATH)")
        fidelity = options.choice("input_fidelity", ("high", "low"))
        if spec.input_fidelity is not None and fidelity not in spec.input_fidelity:
            allowed = ", ".join(spec.input_fidelity) or "no value (omit it)"
            raise _refused(f"{spec.id} input_fidelity accepts {allowed}; got {fidelity!r}")
        params["input_fidelity"] = fidelity

    if "complexity" in options:
        only_gpt("complexity")
        params["complexity"] = options.choice("complexity", ("low", "medium", "high"))

    gif_numbers: tuple[tuple[str, int, int | None], ...] = (
        ("frame_count", 2, 16),
        ("frame_duration_ms", 0, None),
    )
    for name, low, high in gif_numbers:
        if name in options:
            only_gpt(name)
            if output_format != "gif":
                raise _refused(f"{name} applies to gif output only", hint="add --format gif")
            params[name] = options.integer(name, low=low, high=high)

    if "style" in options:
        if spec.gpt_image or spec.family == "dall-e-2":
            raise _refused(f"style is a dall-e-3 option; {spec.id} does not take it")
        params["style"] = options.choice("style", ("vivid", "natural"))

    if "response_format" in options:
        if spec.gpt_image or api == "responses":
            raise _refused(
                f"{spec.id} does not take response_format: GPT image models always return base64",
                hint="drop -o response_format",
            )
        params["response_format"] = options.choice("response_format", ("url", "b64_json"))

    if "user" in options:
        params["user"] = options.text("user")
    return params


def _inputs(options: Options, spec: ModelSpec) -> tuple[tuple[InputImage, ...], InputImage | None]:
    """The edit images and mask, read (once) and checked against the model's rules."""
    images: tuple[InputImage, ...] = ()
    if "image" in options:
        if not spec.edits:
            raise _refused(f"{spec.id} cannot edit images")
        limit = _DALLE_EDIT_IMAGE_BYTES if spec.dalle else _GPT_EDIT_IMAGE_BYTES
        images = load_input_images(options.raw("image"), "image", provider=_P, max_bytes=limit)
        if len(images) > spec.max_edit_images:
            raise _refused(
                f"{spec.id} edits at most {spec.max_edit_images} image(s); got {len(images)}"
            )
        first = images[0]
        if spec.family == "dall-e-2" and (
            first.mime_type != "image/png" or (first.size and first.size[0] != first.size[1])
        ):
            raise _refused("dall-e-2 edits need one square PNG")
    if "mask" not in options:
        return images, None
    if not images:
        raise _refused("a mask needs an image to edit (pass -o image PATH)")
    mask = load_input_image(options.raw("mask"), "mask", provider=_P, max_bytes=_MASK_BYTES)
    if mask.mime_type != "image/png":
        raise _refused("the mask must be a PNG (transparent where the image should change)")
    return images, mask


def _endpoint(request: ImageRequest, options: Options, key: Secret) -> Endpoint:
    headers = options.mapping("headers") or {}
    if not all(isinstance(value, str) for value in headers.values()):
        raise options.unreadable("headers must map header names to text values")
    return Endpoint(
        base_url=resolve_base_url(request.base_url),
        api_key=key,
        organization=options.text("organization") or env_organization(),
        project=options.text("project") or env_project(),
        auth_header=options.choice("auth_header", ("bearer", "api-key"), "bearer"),
        api_version=options.text("api_version"),
        extra_headers=dict(headers),
    )


def resolve(request: ImageRequest, key: Secret) -> Settings:
    """Check ``request`` and return the :class:`Settings` to send with ``key``.

    Raises:
        ConfigurationError: Unknown option, a value that cannot be read, bad base URL.
        ValidationError: A value out of range, or a combination the model or API refuses.
    """
    options = Options(request.options, provider=_P, known=OPTIONS)
    _refuse_foreign_fields(request)
    api = options.choice("api", ("images", "responses"), "images")
    model = read_text(request.model, "model", provider=_P) if request.model is not None else None
    spec = spec_for(model or DEFAULT_MODEL)
    retired = spec.retired_message()
    if retired is not None:
        # Still sent: the server has the last word (and some gateways keep old models).
        warnings.warn(RetiredModelWarning(retired), stacklevel=3)

    if api == "responses":
        if spec.dalle:
            raise _refused(f"the Responses API image tool runs GPT image models, not {spec.id}")
        if request.n != 1:
            raise _refused("the Responses API makes one image per call; use n=1 or -o api images")
    else:
        misplaced = [name for name in _RESPONSES_ONLY if name in options]
        if misplaced:
            raise _refused(
                f"{', '.join(misplaced)} only apply to the Responses API",
                hint="add -o api responses",
            )
    n = read_integer(request.n, "n", provider=_P, low=1)
    if n > spec.max_n:
        raise _refused(f"{spec.id} makes at most {spec.max_n} image(s) per request; got n={n}")

    output_format = _output_format(request, spec)
    stream = _stream(options, spec, api, output_format)

    images, mask = _inputs(options, spec)
    if mask is not None and output_format in NO_STREAM_FORMATS:
        raise _refused(f"{output_format} output cannot use a mask", hint="drop -o mask")
    params = _params(request, options, spec, api, stream, bool(images), output_format)
    if api == "responses" and "action" in options:
        params["action"] = options.choice("action", ("generate", "edit", "auto"))
    endpoint = _endpoint(request, options, key)
    timeout = None
    if request.timeout is not None:
        timeout = read_number(request.timeout, "timeout", provider=_P)
        if timeout <= 0:
            raise _refused(f"timeout must be a positive number of seconds, not {request.timeout!r}")
    if not request.prompt.strip():
        raise _refused("the prompt is empty", hint="say what to draw")

    return Settings(
        api=api,
        spec=spec,
        prompt=request.prompt,
        stream=stream,
        n=n,
        endpoint=endpoint,
        params=params,
        images=images,
        images_as_list=isinstance(options.raw("image"), list | tuple),
        mask=mask,
        responses_model=options.text("responses_model", DEFAULT_RESPONSES_MODEL),
        instructions=options.text("instructions"),
        tool_choice=options.choice(
            "tool_choice", ("image_generation", "auto", "required"), "image_generation"
        ),
        timeout=timeout,
        max_response_bytes=options.integer("max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES, low=1),
    )
