"""The Responses API: ``POST /v1/responses`` with the ``image_generation`` tool.

A controlling model (``responses_model``, a text model) calls the tool, whose
``model`` is the image model. Streamed responses become chunks through
:class:`~imagestream_openai._events.ResponsesEvents`; whole responses become a
:class:`~imagestream.ProviderResponse`, streamed as its ``chunks()``. Edit
inputs travel as ``input_image`` parts holding ``data:`` URLs.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import TYPE_CHECKING, Any

from imagestream.provider import Chunk, ImageFinal, ProviderResponse

from ._errors import error_from_event
from ._events import (
    ResponsesEvents,
    call_failure,
    final_from_item,
    no_image_error,
    refusal_parts,
    responses_usage,
)
from ._transport import Whole, call, call_whole

if TYPE_CHECKING:
    from imagestream.provider import RunContext

    from ._options import Settings

__all__ = ["generate_responses", "request_body", "stream_responses"]

# Parameters that belong to the request, not to the tool.
_TOP_LEVEL = frozenset({"user"})


def request_body(settings: Settings) -> dict[str, Any]:
    """The JSON body of ``/v1/responses``."""
    tool: dict[str, Any] = {"type": "image_generation", "model": settings.model}
    tool.update((name, value) for name, value in settings.params.items() if name not in _TOP_LEVEL)
    if not settings.stream:
        tool.pop("partial_images", None)
    if settings.mask is not None:
        tool["input_image_mask"] = {"image_url": settings.mask.data_url}
    user_input: Any = settings.prompt
    if settings.images:
        content: list[dict[str, Any]] = [{"type": "input_text", "text": settings.prompt}]
        for image in settings.images:
            content.append({"type": "input_image", "image_url": image.data_url})
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


def _whole(settings: Settings) -> Whole:
    async def whole(body: Mapping[str, Any], headers: Mapping[str, str]) -> ProviderResponse:
        return responses_response(body, settings, headers)

    return whole


def stream_responses(settings: Settings, context: RunContext) -> AsyncGenerator[Chunk, None]:
    """Chunks of one Responses API call, streamed or not."""
    return call(
        context,
        settings,
        "responses",
        body=request_body(settings),
        machine=lambda headers: ResponsesEvents(
            settings.model, settings.responses_model, key=settings.endpoint.api_key, headers=headers
        ),
        whole=_whole(settings),
    )


async def generate_responses(settings: Settings, context: RunContext) -> ProviderResponse:
    """One non-streamed Responses API call, as a whole response."""
    return await call_whole(
        context, settings, "responses", body=request_body(settings), whole=_whole(settings)
    )


def responses_response(
    body: Mapping[str, Any], settings: Settings, headers: Mapping[str, str] | None = None
) -> ProviderResponse:
    """A whole ``Response`` object as a :class:`ProviderResponse`.

    Raises:
        NoImageError: No image, because the model refused or the
            ``image_generation_call`` failed (see :func:`no_image_error`).
    """
    status = body.get("status")
    if status in ("failed", "incomplete") or isinstance(body.get("error"), Mapping):
        kind = "response.incomplete" if status == "incomplete" else "response.failed"
        raise error_from_event(
            {"type": kind, "response": body}, key=settings.endpoint.api_key, headers=headers
        )
    images: list[ImageFinal] = []
    text: list[str] = []
    refusals: list[str] = []
    failures: list[tuple[str | None, str]] = []
    output = body.get("output")
    for item in output if isinstance(output, list) else ():
        if not isinstance(item, Mapping):
            continue
        if item.get("type") == "image_generation_call":
            final = final_from_item(item, len(images))
            if final is not None:
                images.append(final)
            elif (failure := call_failure(item)) is not None:
                failures.append(failure)
        elif item.get("type") == "message":
            content = item.get("content")
            for part in content if isinstance(content, list) else ():
                if isinstance(part, Mapping) and part.get("type") == "output_text":
                    value = part.get("text")
                    if isinstance(value, str):
                        text.append(value)
            refusals.extend(refusal_parts(item))
    if not images:
        error = no_image_error(
            refusal="".join(refusals), failures=failures, said="".join(text), headers=headers
        )
        if error is not None:
            raise error
    return ProviderResponse(
        images=images,
        text="".join([*text, *refusals]),
        usage=responses_usage(body, settings.model, settings.responses_model),
    )
