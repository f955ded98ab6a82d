"""OpenAI's Images API: ``POST /v1/images/generations`` (JSON) and ``/v1/images/edits`` (multipart).

The answer's form follows the body's ``stream`` (the SDK sends ``Accept:
application/json`` even when it streams):

- not streaming: one ``ImagesResponse`` JSON body, every image as
  ``b64_json`` exactly as the provider made it, or, with ``response_format:
  "url"``, as the absolute URL of the copy the server saved (``/files/...``,
  behind the server's token like every API route);
- streaming: ``image_generation.partial_image`` events (``image_edit.*`` for
  edits) for up to ``partial_images`` previews per image, chosen by
  :class:`PartialPicker`, then one ``*.completed`` event per image, the last
  with the run's usage. Providers without previews stream too: no partials,
  then the completed event. A failure after the first byte is an ``error``
  event (``{"type": "error", "error": {...}}``), which the SDK raises.

Edit inputs (``image`` or repeated ``image[]`` parts, ``mask``) go to the
provider as its ``image`` and ``mask`` options, as bytes; a provider that
takes no input image refuses them with its own message.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import attrs
from aiohttp import web

from imagestream import Chunk, GenerationResult, ImageFinal, ImagePreview, Usage

from ._files import file_url
from ._gateway_models import Target, resolve_model
from ._gateway_params import ImageSettings, image_settings, read_flag, read_text
from ._gateway_run import collect_run, stream_run
from ._keys import CONFIG
from ._openai_errors import (
    GatewayError,
    json_object,
    openai_error_response,
    openai_http_error,
)
from ._openai_events import ImageFacts, PartialPicker, images_usage, sse_event

__all__ = ["ImagesRelay", "edits", "generations"]

_GENERATION = "image_generation"
_EDIT = "image_edit"


@attrs.frozen
class ImageJob:
    """One Images API request, checked: what to run and how to answer.

    Attributes:
        kind: ``image_generation`` or ``image_edit`` (the event names' prefix).
        target: Provider and model.
        params: Parameters for :meth:`Generations.run`.
        settings: The checked image parameters.
        stream: Answer with events.
        response_format: ``b64_json`` or ``url``.
    """

    kind: str
    target: Target
    params: dict[str, Any]
    settings: ImageSettings
    stream: bool
    response_format: str


def _job(
    request: web.Request,
    fields: Mapping[str, Any],
    *,
    kind: str,
    images: list[bytes] | None = None,
    mask: bytes | None = None,
) -> ImageJob:
    fields = {name: value for name, value in fields.items() if value is not None}
    if not fields.get("prompt"):
        raise GatewayError(
            "Missing required parameter: 'prompt'.",
            param="prompt",
            code="missing_required_parameter",
        )
    prompt = read_text(fields.pop("prompt"), "prompt")
    config = request.app[CONFIG]
    target = resolve_model(fields.pop("model", None), default_provider=config.default_provider)
    stream = read_flag(fields.pop("stream", False), "stream")
    response_format = read_text(fields.pop("response_format", "b64_json"), "response_format")
    if response_format not in ("b64_json", "url"):
        raise GatewayError(
            f"Invalid value for 'response_format': {response_format!r}; use 'b64_json' or 'url'",
            param="response_format",
            code="invalid_value",
        )
    if response_format == "url" and not config.save:
        raise GatewayError(
            "This server keeps no images (started with --no-save), so it cannot answer "
            "with URLs; use response_format 'b64_json'.",
            param="response_format",
            code="unsupported_value",
        )
    settings = image_settings(fields, target, stream=stream)
    options = dict(settings.options)
    if images:
        options["image"] = images[0] if len(images) == 1 else list(images)
    if mask is not None:
        options["mask"] = mask
    params: dict[str, Any] = {"prompt": prompt, "provider": target.provider.name}
    if target.model is not None:
        params["model"] = target.model
    params.update(settings.params)
    if options:
        params["options"] = options
    return ImageJob(kind, target, params, settings, stream, response_format)


class ImagesRelay:
    """A run's chunks as Images API stream events.

    The completed event of an image is held until the next image's first
    event or the end of the run, so the last one can carry the run's usage
    (reported after the images); earlier ones carry zeros.

    Args:
        kind: ``image_generation`` or ``image_edit``.
        facts: What was asked for.
        partials: Partial images per image.
    """

    def __init__(self, kind: str, facts: ImageFacts, partials: int) -> None:
        self.kind = kind
        self.facts = facts
        self.picker = PartialPicker(partials)
        self.sequence = 0
        self._held: ImageFinal | None = None

    def _event(self, suffix: str, data: dict[str, Any]) -> bytes:
        name = f"{self.kind}.{suffix}"
        event = {"type": name, "created_at": int(time.time()), **data}
        event["sequence_number"] = self.sequence
        self.sequence += 1
        return sse_event(name, event)

    def _partial(self, index: int, preview: ImagePreview) -> bytes:
        return self._event(
            "partial_image",
            {
                "b64_json": preview.image.b64,
                "partial_image_index": index,
                **self.facts.event_fields(preview),
            },
        )

    def _release(self, usage: Usage | None = None) -> list[bytes]:
        held, self._held = self._held, None
        if held is None:
            return []
        return [
            self._event(
                "completed",
                {
                    "b64_json": held.image.b64,
                    **self.facts.event_fields(held),
                    "usage": images_usage(usage),
                },
            )
        ]

    def opening(self) -> list[bytes]:
        """Nothing: the Images API has no opening event."""
        return []

    def chunk(self, chunk: Chunk) -> list[bytes]:
        """Partial images for chosen previews; a final is held (see the class)."""
        if isinstance(chunk, ImagePreview):
            picked = self.picker.offer(chunk)
            if not picked:
                return []
            return [*self._release(), *(self._partial(i, p) for i, p in picked)]
        if isinstance(chunk, ImageFinal):
            out = self._release()
            out += [self._partial(i, p) for i, p in self.picker.finish(chunk.sample)]
            self._held = chunk
            return out
        return []

    def finish(self, result: GenerationResult) -> list[bytes]:
        """The last completed event, with the run's usage."""
        if not result.images:
            raise _no_image(result)
        return self._release(result.usage)

    def failure(self, error: GatewayError) -> list[bytes]:
        """``event: error``; the SDK raises it as an ``APIError``."""
        return [sse_event("error", {"type": "error", "error": error.body()})]


def _no_image(result: GenerationResult) -> GatewayError:
    return GatewayError(
        f"{result.provider} returned no image", status=502, type="server_error", code="no_image"
    )


def _body(request: web.Request, job: ImageJob, result: GenerationResult) -> dict[str, Any]:
    if not result.images:
        raise _no_image(result)
    data: list[dict[str, Any]] = []
    if job.response_format == "url":
        if len(result.saved) != len(result.images):
            raise GatewayError(
                "an image could not be saved", status=500, type="server_error", code="save_failed"
            )
        origin = str(request.url.origin())
        data = [{"url": origin + file_url(saved.path)} for saved in result.saved]
    else:
        data = [{"b64_json": image.image.b64} for image in result.images]
    for item, image in zip(data, result.images, strict=True):
        if image.revised_prompt:
            item["revised_prompt"] = image.revised_prompt
    body: dict[str, Any] = {
        "created": int(time.time()),
        "data": data,
        **job.settings.facts.of(result.images[0]),
    }
    if result.usage is not None:
        body["usage"] = images_usage(result.usage)
    return body


async def _answer(request: web.Request, job: ImageJob) -> web.StreamResponse:
    if job.stream:
        relay = ImagesRelay(job.kind, job.settings.facts, job.settings.partials)
        return await stream_run(request, job.params, relay)
    try:
        result = await collect_run(request, job.params)
        if result is None:  # the client left; nobody reads this
            return web.Response(status=499)
        return web.json_response(_body(request, job, result))
    except Exception as exc:
        return openai_error_response(exc)


async def generations(request: web.Request) -> web.StreamResponse:
    """``POST /v1/images/generations``."""
    try:
        body = await json_object(request)
        job = _job(request, body, kind=_GENERATION)
    except web.HTTPException as exc:
        return openai_http_error(request, exc.status, exc.reason)
    except Exception as exc:
        return openai_error_response(exc)
    return await _answer(request, job)


async def _form(request: web.Request) -> tuple[dict[str, Any], list[bytes], bytes | None]:
    if not request.content_type.startswith("multipart/"):
        raise GatewayError(
            "Edits take multipart/form-data (image parts and form fields).",
            code="invalid_content_type",
        )
    form = await request.post()  # within the server's body limit (413 beyond)
    fields: dict[str, Any] = {}
    images: list[bytes] = []
    mask: bytes | None = None
    for name, value in form.items():
        if isinstance(value, web.FileField):
            with value.file:
                data = value.file.read()
            if name in ("image", "image[]"):
                images.append(data)
            elif name == "mask":
                mask = data
            else:
                raise GatewayError(f"Unknown file parameter: '{name}'.", param=name)
        elif name in ("image", "image[]", "mask"):
            raise GatewayError(f"'{name}' must be a file part.", param=name, code="invalid_type")
        elif name in fields:
            raise GatewayError(f"'{name}' was sent twice.", param=name)
        else:
            fields[name] = value
    return fields, images, mask


async def edits(request: web.Request) -> web.StreamResponse:
    """``POST /v1/images/edits``."""
    try:
        fields, images, mask = await _form(request)
        if not images:
            raise GatewayError(
                "Missing required parameter: 'image'.",
                param="image",
                code="missing_required_parameter",
            )
        job = _job(request, fields, kind=_EDIT, images=images, mask=mask)
    except web.HTTPException as exc:
        return openai_http_error(request, exc.status, exc.reason)
    except Exception as exc:
        return openai_error_response(exc)
    return await _answer(request, job)
