"""The Responses API: ``POST /v1/responses`` with the ``image_generation`` tool.

A controlling model (``responses_model``, a text model) calls the tool, whose
``model`` is the image model. Streamed responses become chunks through
:class:`~imagestream_openai._events.ResponsesEvents`; whole responses become a
:class:`~imagestream.ProviderResponse` for the core's fake streaming. Edit
inputs travel as ``input_image`` parts holding ``data:`` URLs.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from imagestream import Chunk, ImageFinal, ProviderResponse
from imagestream.errors import ProviderError

from ._base64 import b64encode
from ._errors import error_from_event
from ._events import ResponsesEvents, final_from_item, responses_usage
from ._transport import chunks_of, post, read_json

if TYPE_CHECKING:
    import aiohttp

    from imagestream import RunContext

    from ._inputs import InputImage
    from ._options import Settings

__all__ = ["generate_responses", "request_body", "stream_responses"]

# Parameters that belong to the request, not to the tool.
_TOP_LEVEL = frozenset({"user"})


async def _data_url(image: InputImage) -> str:
    return f"data:{image.mime_type};base64,{b64encode(await image.read())}"


async def request_body(settings: Settings) -> dict[str, Any]:
    """The JSON body of ``/v1/responses``."""
    tool: dict[str, Any] = {"type": "image_generation", "model": settings.model}
    tool.update((name, value) for name, value in settings.params.items() if name not in _TOP_LEVEL)
    if not settings.stream:
        tool.pop("partial_images", None)
    if settings.mask is not None:
        tool["input_image_mask"] = {"image_url": await _data_url(settings.mask)}
    user_input: Any = settings.prompt
    if settings.images:
        content: list[dict[str, Any]] = [{"type": "input_text", "text": settings.prompt}]
        for image in settings.images:
            content.append({"type": "input_image", "image_url": await _data_url(image)})
        user_input = [{"role": "user", "content": content}]
    body: dict[str, Any] = {
        "model": settings.responses_model,
        "input": user_input,
        "tools": [tool],
        "stream": settings.stream,
    }
    if settings.tool_choice == "image_generation":
        # Without this the model may answer in words and draw nothing.
        body["tool_choice"] = {"type": "image_generation"}
    else:
        body["tool_choice"] = settings.tool_choice
    if settings.instructions:
        body["instructions"] = settings.instructions
    if "user" in settings.params:
        body["user"] = settings.params["user"]
    return body


async def stream_responses(settings: Settings, context: RunContext) -> AsyncGenerator[Chunk, None]:
    """Chunks of one Responses API call, streamed or not."""
    response = await post(context, settings, "responses", body=await request_body(settings))
    chunks = chunks_of(
        context,
        response,
        stream=settings.stream,
        machine=lambda: ResponsesEvents(
            settings.model,
            settings.responses_model,
            key=settings.endpoint.api_key,
            headers=response.headers,
        ),
        whole=lambda: _whole_response(settings, context, response),
    )
    async with aclosing(chunks):
        async for chunk in chunks:
            yield chunk


async def generate_responses(settings: Settings, context: RunContext) -> ProviderResponse:
    """One non-streamed Responses API call, as a whole response."""
    response = await post(context, settings, "responses", body=await request_body(settings))
    try:
        return await _whole_response(settings, context, response)
    finally:
        response.close()


async def _whole_response(
    settings: Settings, context: RunContext, response: aiohttp.ClientResponse
) -> ProviderResponse:
    body = await read_json(context, response, settings.max_response_bytes)
    if not isinstance(body, Mapping):
        raise ProviderError("the response is not a JSON object", provider="openai")
    return responses_response(body, settings, headers=response.headers)


def responses_response(
    body: Mapping[str, Any], settings: Settings, headers: Mapping[str, str] | None = None
) -> ProviderResponse:
    """A whole ``Response`` object as a :class:`ProviderResponse`."""
    status = body.get("status")
    if status in ("failed", "incomplete") or isinstance(body.get("error"), Mapping):
        kind = "response.incomplete" if status == "incomplete" else "response.failed"
        raise error_from_event(
            {"type": kind, "response": body}, key=settings.endpoint.api_key, headers=headers
        )
    images: list[ImageFinal] = []
    text: list[str] = []
    output = body.get("output")
    for item in output if isinstance(output, list) else ():
        if not isinstance(item, Mapping):
            continue
        if item.get("type") == "image_generation_call":
            final = final_from_item(item, len(images))
            if final is not None:
                images.append(final)
        elif item.get("type") == "message":
            content = item.get("content")
            for part in content if isinstance(content, list) else ():
                if isinstance(part, Mapping) and part.get("type") == "output_text":
                    value = part.get("text")
                    if isinstance(value, str):
                        text.append(value)
    return ProviderResponse(
        images=images,
        text="".join(text),
        usage=responses_usage(body, settings.model, settings.responses_model),
    )
