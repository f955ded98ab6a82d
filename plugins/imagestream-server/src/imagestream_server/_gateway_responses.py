"""OpenAI's Responses API with the ``image_generation`` tool: ``POST /v1/responses``.

The top-level ``model`` is the "controlling" model: any name is accepted and
echoed. The image comes from the tool's ``model`` when it names one (the
gateway's naming rules), else from the provider the top-level model names
when it is a ``provider/model`` id (that model if the provider lists it, its
default model otherwise), else from the server's default provider. The
prompt is the text of the user messages in ``input`` (a string, or messages
with ``input_text`` parts); ``input_image`` parts given as ``data:`` URLs go
to the provider as its ``image`` option (URLs and file ids are refused: the
server fetches nothing for a client).

Output order: the ``image_generation_call`` item first (``ig_...``, output
index 0, opened as soon as the stream starts so clients see progress at
once), then, if the provider said anything, one assistant ``message`` item
with its text. Text arrives before the image with some providers, so it is
held until the image item is done: one consistent order whatever the
provider. Streamed, the events are what the official SDK's strict
``responses.stream()`` helper checks: ``response.created`` first, one
response id, a ``sequence_number`` on every event, each ``output_item.added``
matched by its ``output_item.done``, and ``response.completed`` with the
whole response at the end. A failure after the first byte is an ``error``
event (the SDK raises it) followed by ``response.failed``.
"""

from __future__ import annotations

import binascii
import time
import uuid
from collections.abc import Mapping
from typing import Any

import attrs
from aiohttp import web

from imagestream import (
    Chunk,
    GenerationResult,
    ImageFinal,
    ImagePreview,
    TextDelta,
    get_provider,
    list_providers,
)
from imagestream.provider import decode_base64

from ._gateway_models import Target, resolve_model
from ._gateway_params import ImageSettings, image_settings, read_flag
from ._gateway_run import collect_run, stream_run
from ._keys import CONFIG
from ._openai_errors import (
    GatewayError,
    json_object,
    openai_error_response,
    openai_http_error,
)
from ._openai_events import ImageFacts, PartialPicker, responses_usage, sse_event

__all__ = ["ResponsesRelay", "responses"]

_ECHOED = ("instructions", "metadata", "parallel_tool_calls", "temperature", "top_p", "user")
_STATEFUL = ("previous_response_id", "conversation")
_TOOL_FIELDS_HANDLED = ("type", "model", "action", "input_image_mask")


@attrs.frozen
class ResponsesJob:
    """One Responses API request, checked.

    Attributes:
        target: Provider and model of the image.
        params: Parameters for :meth:`Generations.run`.
        settings: The tool's image parameters, checked.
        stream: Answer with events.
        echo: Request fields the response object repeats (model, tools, ...).
    """

    target: Target
    params: dict[str, Any]
    settings: ImageSettings
    stream: bool
    echo: dict[str, Any]


def _data_url(url: Any, param: str) -> bytes:
    if not isinstance(url, str):
        raise GatewayError(f"'{param}' must be a data: URL", param=param, code="invalid_image_url")
    head, comma, data = url.partition(",")
    if not url.startswith("data:") or not comma or not head.endswith(";base64"):
        raise GatewayError(
            f"'{param}' must be a base64 data: URL (data:image/png;base64,...): this server "
            "fetches no URLs and keeps no files",
            param=param,
            code="invalid_image_url",
        )
    try:
        return decode_base64(data)
    except (binascii.Error, ValueError):
        raise GatewayError(
            f"'{param}' is not valid base64", param=param, code="invalid_base64_image"
        ) from None


def _image_part(part: Mapping[str, Any], param: str) -> bytes:
    if part.get("file_id"):
        raise GatewayError(
            "file ids are not supported: send the image as a data: URL",
            param=f"{param}.file_id",
            code="invalid_image",
        )
    return _data_url(part.get("image_url"), f"{param}.image_url")


def _read_input(value: Any) -> tuple[str, list[bytes]]:
    """The prompt (user text, joined) and the input images of ``input``."""
    if isinstance(value, str):
        return value, []
    if not isinstance(value, list):
        raise GatewayError(
            "Missing required parameter: 'input'.", param="input", code="missing_required_parameter"
        )
    texts: list[str] = []
    images: list[bytes] = []
    for number, item in enumerate(value):
        param = f"input[{number}]"
        if not isinstance(item, Mapping):
            raise GatewayError(f"'{param}' must be an object", param=param, code="invalid_type")
        if item.get("type", "message") != "message" or item.get("role") != "user":
            continue  # earlier answers, tool calls, instructions: not the prompt
        content = item.get("content")
        if isinstance(content, str):
            texts.append(content)
            continue
        if not isinstance(content, list):
            raise GatewayError(f"'{param}.content' must be a string or a list", param=param)
        for index, part in enumerate(content):
            where = f"{param}.content[{index}]"
            kind = part.get("type") if isinstance(part, Mapping) else None
            if kind == "input_text" and isinstance(part, Mapping):
                texts.append(str(part.get("text") or ""))
            elif kind == "input_image" and isinstance(part, Mapping):
                images.append(_image_part(part, where))
            else:
                raise GatewayError(
                    f"'{where}': only input_text and input_image parts are supported",
                    param=where,
                    code="invalid_value",
                )
    return "\n".join(text for text in texts if text), images


def _image_tool(tools: Any) -> Mapping[str, Any]:
    if isinstance(tools, list):
        for tool in tools:
            if isinstance(tool, Mapping) and tool.get("type") == "image_generation":
                return tool
    raise GatewayError(
        'this server runs the image_generation tool only: add tools=[{"type": "image_generation"}]',
        param="tools",
        code="missing_required_parameter",
    )


def _target(tool: Mapping[str, Any], model: Any, default_provider: str | None) -> Target:
    if tool.get("model"):
        return resolve_model(tool["model"], default_provider=default_provider, param="tools.model")
    name, slash, model_id = model.partition("/") if isinstance(model, str) else ("", "", "")
    provider = {found.name: found for found in list_providers()}.get(name) if slash else None
    if provider is not None:  # "openai/gpt-5": openai draws, with gpt-5 if it were an image model
        known = any(info.id == model_id for info in provider.models)
        return Target(provider, model_id if known else None)
    return Target(get_provider(default_provider))


def _job(request: web.Request, body: Mapping[str, Any]) -> ResponsesJob:
    for name in _STATEFUL:
        if body.get(name):
            raise GatewayError(
                f"'{name}' is not supported: this server keeps no conversations; send the whole input",
                param=name,
                code="unsupported_parameter",
            )
    if body.get("background"):
        raise GatewayError(
            "background responses are not supported: use stream instead",
            param="background",
            code="unsupported_parameter",
        )
    prompt, images = _read_input(body.get("input"))
    if not prompt.strip():
        raise GatewayError(
            "the input has no text to draw from", param="input", code="missing_required_parameter"
        )
    tool = _image_tool(body.get("tools"))
    config = request.app[CONFIG]
    target = _target(tool, body.get("model"), config.default_provider)
    stream = read_flag(body.get("stream") or False, "stream")
    fields = {name: value for name, value in tool.items() if name not in _TOOL_FIELDS_HANDLED}
    settings = image_settings(fields, target, stream=stream)
    options = dict(settings.options)
    if images:
        options["image"] = images[0] if len(images) == 1 else images
    mask = tool.get("input_image_mask")
    if isinstance(mask, Mapping):
        options["mask"] = _image_part(mask, "tools.input_image_mask")
    params: dict[str, Any] = {"prompt": prompt, "provider": target.provider.name}
    if target.model is not None:
        params["model"] = target.model
    params.update(settings.params)
    if options:
        params["options"] = options
    echo = {name: body[name] for name in _ECHOED if body.get(name) is not None}
    echo["model"] = body.get("model") if isinstance(body.get("model"), str) else target.name
    echo["tools"] = list(body.get("tools") or [])
    echo["tool_choice"] = body.get("tool_choice") or "auto"
    return ResponsesJob(target, params, settings, stream, echo)


def _error_code(error: GatewayError) -> str:
    if error.status == 429:
        return "rate_limit_exceeded"
    if error.type == "image_generation_user_error":
        return "image_content_policy_violation"
    return "server_error"


class ResponsesRelay:
    """A run's chunks as Responses API events, and the response object they build.

    Args:
        job: The checked request.
        emit: Build the events (``False`` when answering with one JSON body).
    """

    def __init__(self, job: ResponsesJob, *, emit: bool = True) -> None:
        self.job = job
        self.emit = emit
        self.id = f"resp_{uuid.uuid4().hex}"
        self.created_at = int(time.time())
        self.sequence = 0
        self.output: list[dict[str, Any]] = []
        self.facts: ImageFacts = job.settings.facts
        self.picker = PartialPicker(job.settings.partials)
        self._items: dict[int, int] = {}  # sample -> output index
        self._text: list[str] = []
        self.final: dict[str, Any] | None = None

    # -- the response object ----------------------------------------------------------

    def response(
        self,
        status: str,
        *,
        usage: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The whole ``Response`` object as it stands."""
        echo = self.job.echo
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "completed_at": int(time.time()) if status == "completed" else None,
            "status": status,
            "background": False,
            "error": error,
            "incomplete_details": None,
            "instructions": echo.get("instructions"),
            "max_output_tokens": None,
            "max_tool_calls": None,
            "metadata": echo.get("metadata") or {},
            "model": echo["model"],
            "output": [dict(item) for item in self.output],
            "parallel_tool_calls": echo.get("parallel_tool_calls", True),
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "store": False,
            "temperature": echo.get("temperature", 1.0),
            "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": echo["tool_choice"],
            "tools": echo["tools"],
            "top_p": echo.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": usage,
            "user": echo.get("user"),
        }

    def _event(self, name: str, data: Mapping[str, Any]) -> bytes:
        number = self.sequence
        self.sequence += 1
        if not self.emit:
            return b""
        return sse_event(name, {"type": name, "sequence_number": number, **data})

    # -- images ----------------------------------------------------------------------

    def _open_image(self, sample: int) -> list[bytes]:
        if sample in self._items:
            return []
        index = len(self.output)
        item = {
            "id": f"ig_{uuid.uuid4().hex}",
            "type": "image_generation_call",
            "status": "in_progress",
        }
        self.output.append(item)
        self._items[sample] = index
        where = {"output_index": index, "item_id": item["id"]}
        return [
            self._event("response.output_item.added", {"output_index": index, "item": dict(item)}),
            self._event("response.image_generation_call.in_progress", where),
            self._event("response.image_generation_call.generating", where),
        ]

    def _partial(self, picked: list[tuple[int, ImagePreview]]) -> list[bytes]:
        out = []
        for number, preview in picked:
            index = self._items[preview.sample]
            out.append(
                self._event(
                    "response.image_generation_call.partial_image",
                    {
                        "output_index": index,
                        "item_id": self.output[index]["id"],
                        "partial_image_index": number,
                        "partial_image_b64": preview.image.b64,
                        **self.facts.event_fields(preview),
                    },
                )
            )
        return out

    def _complete_image(self, final: ImageFinal) -> list[bytes]:
        index = self._items[final.sample]
        item = self.output[index]
        if item["status"] != "in_progress":
            return []  # a provider sent two finals for one image: the first stands
        item.update(status="completed", result=final.image.b64, **self.facts.event_fields(final))
        if final.revised_prompt:
            item["revised_prompt"] = final.revised_prompt
        where = {"output_index": index, "item_id": item["id"]}
        return [
            self._event("response.image_generation_call.completed", where),
            self._event("response.output_item.done", {"output_index": index, "item": dict(item)}),
        ]

    # -- text ------------------------------------------------------------------------

    def _message(self) -> list[bytes]:
        text = "".join(self._text)
        if not text:
            return []
        index = len(self.output)
        item_id = f"msg_{uuid.uuid4().hex}"
        part = {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
        item = {
            "id": item_id,
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [part],
        }
        self.output.append(item)
        where = {"item_id": item_id, "output_index": index, "content_index": 0}
        out = [
            self._event(
                "response.output_item.added",
                {"output_index": index, "item": {**item, "status": "in_progress", "content": []}},
            ),
            self._event("response.content_part.added", {**where, "part": {**part, "text": ""}}),
        ]
        out += [
            self._event("response.output_text.delta", {**where, "delta": delta, "logprobs": []})
            for delta in self._text
            if delta
        ]
        out += [
            self._event("response.output_text.done", {**where, "text": text, "logprobs": []}),
            self._event("response.content_part.done", {**where, "part": part}),
            self._event("response.output_item.done", {"output_index": index, "item": item}),
        ]
        return out

    # -- the relay ---------------------------------------------------------------------

    def opening(self) -> list[bytes]:
        """``response.created``, ``response.in_progress`` and the first image item, opened."""
        started = self.response("in_progress")
        return [
            self._event("response.created", {"response": started}),
            self._event("response.in_progress", {"response": started}),
            *self._open_image(0),
        ]

    def chunk(self, chunk: Chunk) -> list[bytes]:
        """Partial images and finished image items; text is kept for the message item."""
        if isinstance(chunk, TextDelta):
            if not chunk.thought:
                self._text.append(chunk.text)
            return []
        if isinstance(chunk, ImagePreview):
            out = self._open_image(chunk.sample)
            return out + self._partial(self.picker.offer(chunk))
        if isinstance(chunk, ImageFinal):
            out = self._open_image(chunk.sample)
            out += self._partial(self.picker.finish(chunk.sample))
            return out + self._complete_image(chunk)
        return []

    def finish(self, result: GenerationResult) -> list[bytes]:
        """The message item, if there was text, and ``response.completed``."""
        unfinished = [item for item in self.output if item["status"] != "completed"]
        if unfinished or not result.images:
            raise GatewayError(
                f"{result.provider} returned no image",
                status=502,
                type="server_error",
                code="no_image",
            )
        out = self._message()
        self.final = self.response("completed", usage=responses_usage(result.usage))
        return [*out, self._event("response.completed", {"response": self.final})]

    def failure(self, error: GatewayError) -> list[bytes]:
        """An ``error`` event (the SDK raises it), then ``response.failed``."""
        for item in self.output:
            if item["status"] == "in_progress":
                item["status"] = "failed"
        body = error.body()
        failed = self.response(
            "failed", error={"code": _error_code(error), "message": error.message}
        )
        return [
            self._event(
                "error",
                {
                    "code": body["code"],
                    "message": body["message"],
                    "param": body["param"],
                    "error": body,
                },
            ),
            self._event("response.failed", {"response": failed}),
        ]


async def responses(request: web.Request) -> web.StreamResponse:
    """``POST /v1/responses``."""
    try:
        body = await json_object(request)
        job = _job(request, body)
    except web.HTTPException as exc:
        return openai_http_error(request, exc.status, exc.reason)
    except Exception as exc:
        return openai_error_response(exc)
    if job.stream:
        return await stream_run(request, job.params, ResponsesRelay(job))
    try:
        result = await collect_run(request, job.params)
        if result is None:  # the client left; nobody reads this
            return web.Response(status=499)
        relay = ResponsesRelay(job, emit=False)
        relay.opening()
        for final in result.images:
            relay.chunk(final)
        for text in result.text_parts:
            relay.chunk(TextDelta(text))
        relay.finish(result)
        return web.json_response(relay.final)
    except Exception as exc:
        return openai_error_response(exc)
