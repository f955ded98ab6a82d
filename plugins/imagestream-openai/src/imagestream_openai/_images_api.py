"""The Images API: ``POST /v1/images/generations`` (JSON) and ``/v1/images/edits`` (multipart).

Streamed responses become chunks through :class:`~imagestream_openai._events.ImagesEvents`.
Whole responses (``data[]`` of ``b64_json`` or ``url``) become a
:class:`~imagestream.ProviderResponse`, streamed as its ``chunks()``; ``url``
results are downloaded through the same HTTP client, without the API key (the
URL points at storage, not at the API).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping
from typing import TYPE_CHECKING, Any

from imagestream.errors import ProviderError
from imagestream.provider import Chunk, ImageData, ImageFinal, ProviderResponse, Usage, media_type

from ._errors import error_from_event, http_error_parser
from ._events import ImagesEvents, images_usage, mime_for, payload_image
from ._pricing import dalle_image_price
from ._transport import Whole, call, call_whole

if TYPE_CHECKING:
    import aiohttp

    from imagestream.provider import RunContext

    from ._options import Settings

__all__ = ["generate_images", "stream_images"]

_BODY_FACTS = ("background", "output_format", "quality", "size", "created")


def request_body(settings: Settings) -> dict[str, Any]:
    """The JSON body of ``/v1/images/generations``."""
    body: dict[str, Any] = {"model": settings.model, "prompt": settings.prompt}
    if settings.n != 1:
        body["n"] = settings.n
    body.update(settings.params)
    if settings.stream:
        body["stream"] = True
    else:
        body.pop("partial_images", None)
    return body


def edit_form(settings: Settings) -> Callable[[], aiohttp.FormData]:
    """A factory of the multipart form of ``/v1/images/edits`` (a form can be sent once only)."""
    import aiohttp

    fields = {name: value for name, value in request_body(settings).items() if name != "prompt"}
    # Several images go as repeated "image[]" parts, one as "image", as the official SDK does.
    image_field = "image[]" if settings.images_as_list else "image"
    parts = [(image_field, image) for image in settings.images]
    if settings.mask is not None:
        parts.append(("mask", settings.mask))

    def build() -> aiohttp.FormData:
        form = aiohttp.FormData()
        form.add_field("prompt", settings.prompt)
        for name, value in fields.items():
            form.add_field(name, _form_value(value))
        for name, image in parts:
            form.add_field(name, image.data, filename=image.filename, content_type=image.mime_type)
        return form

    return build


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _send(settings: Settings) -> dict[str, Any]:
    """Where the call goes and what it carries: a multipart form for edits, else JSON."""
    if settings.is_edit:
        return {"path": "images/edits", "form": edit_form(settings)}
    return {"path": "images/generations", "body": request_body(settings)}


def _whole(settings: Settings, context: RunContext) -> Whole:
    async def whole(body: Mapping[str, Any], headers: Mapping[str, str]) -> ProviderResponse:
        return await images_response(body, settings, context)

    return whole


def stream_images(settings: Settings, context: RunContext) -> AsyncGenerator[Chunk, None]:
    """Chunks of one Images API call, streamed or not."""
    return call(
        context,
        settings,
        **_send(settings),
        machine=lambda headers: ImagesEvents(
            settings.n, key=settings.endpoint.api_key, headers=headers
        ),
        whole=_whole(settings, context),
    )


async def generate_images(settings: Settings, context: RunContext) -> ProviderResponse:
    """One non-streamed Images API call, as a whole response."""
    return await call_whole(context, settings, **_send(settings), whole=_whole(settings, context))


async def images_response(
    body: Mapping[str, Any], settings: Settings, context: RunContext
) -> ProviderResponse:
    """A whole ``ImagesResponse`` body as a :class:`ProviderResponse` (``url`` results downloaded)."""
    error = body.get("error")
    if isinstance(error, Mapping):
        raise error_from_event(body, key=settings.endpoint.api_key)
    data = body.get("data")
    items = [item for item in data if isinstance(item, Mapping)] if isinstance(data, list) else []
    facts = {name: body[name] for name in _BODY_FACTS if body.get(name) is not None}
    declared = mime_for(body.get("output_format")) or ("image/png" if settings.spec.dalle else None)
    images: list[ImageFinal] = []
    for sample, item in enumerate(items):
        image = await _image_of(item, declared, settings, context)
        if image is None:
            continue
        revised = item.get("revised_prompt")
        images.append(
            ImageFinal(
                image=image,
                sample=sample,
                mime_type=image.declared_mime_type,
                revised_prompt=revised if isinstance(revised, str) else None,
                extra=facts,
            )
        )
    if not images:
        raise ProviderError("the response holds no image", provider="openai")
    usage = images_usage(body.get("usage"))
    if usage is None and settings.spec.dalle:
        # DALL·E reports no usage: it is billed per image, by size and quality.
        price = dalle_image_price(
            settings.spec.family, settings.params.get("quality"), settings.params.get("size")
        )
        if price is not None:
            usage = Usage(cost_usd=price * len(images))
    return ProviderResponse(images=images, usage=usage)


async def _image_of(
    item: Mapping[str, Any], declared: str | None, settings: Settings, context: RunContext
) -> ImageData | None:
    image = payload_image(item.get("b64_json"), declared)
    if image is not None:
        return image
    url = item.get("url")
    if isinstance(url, str) and url:
        return await download(url, settings, context, declared)
    return None


async def download(
    url: str, settings: Settings, context: RunContext, declared: str | None
) -> ImageData:
    """Fetch an image URL through the run's HTTP client, capped at ``max_response_bytes``.

    The API key is not sent: the URL is a signed link to storage.
    """
    response = await context.http.send(
        "GET",
        url,
        provider="openai",
        headers={"Accept": "image/*"},
        parse_error=http_error_parser(settings.endpoint.api_key),
        stall_timeout=settings.timeout,
    )
    try:
        data = await context.http.read_body(
            response, provider="openai", limit=settings.max_response_bytes
        )
        served = media_type(response)
    finally:
        response.close()
    return ImageData.from_bytes(data, served if served.startswith("image/") else declared)
