"""``OpenAIProvider``: the provider class the plugin registers.

Kept light to import: the plugin manager constructs it at start-up, even for
``imagestream --help``, so the HTTP and API modules are imported only when a
request is made.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import TYPE_CHECKING, ClassVar

import attrs

from imagestream import Provider

from ._config import ENV_KEY
from ._models import MODELS, pricing_for
from ._options import DEFAULT_MODEL, Settings, resolve

if TYPE_CHECKING:
    from collections.abc import Sequence

    from imagestream import Chunk, ImageRequest, ModelInfo, Pricing, ProviderResponse, RunContext

__all__ = ["OpenAIProvider"]


class OpenAIProvider(Provider):
    """OpenAI image generation: the Images API and the Responses API's image tool.

    Streams partial images as :class:`~imagestream.ImagePreview` chunks, the
    finished image as :class:`~imagestream.ImageFinal`, the Responses API
    model's words as :class:`~imagestream.TextDelta`, and token usage as
    :class:`~imagestream.Usage`. Options are listed in
    :data:`imagestream_openai.OPTIONS`; anything a model would refuse is
    refused by :meth:`validate`, before a request is sent.
    """

    name: ClassVar[str] = "openai"
    description: ClassVar[str] = (
        "OpenAI GPT image and DALL-E models (Images API, Responses API image tool)."
    )
    models: ClassVar[Sequence[ModelInfo]] = MODELS
    default_model: ClassVar[str | None] = DEFAULT_MODEL
    key_env: ClassVar[str | None] = ENV_KEY

    def validate(self, request: ImageRequest) -> ImageRequest:
        """Refuse what OpenAI would refuse; fill in the model, key and base URL.

        Raises:
            ConfigurationError: Unknown option, bad value or base URL.
            MissingAPIKeyError: No key given and ``OPENAI_API_KEY`` unset.
            ValidationError: The model or API does not support the request.
        """
        settings = resolve(request)
        return attrs.evolve(
            request,
            model=settings.model,
            api_key=settings.endpoint.api_key,
            base_url=settings.endpoint.base_url,
        )

    async def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Chunk]:
        """Stream one request's chunks (a non-streamed call is streamed by the core's fake streaming)."""
        settings = resolve(request)
        async with aclosing(_run(settings, context)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def generate(self, request: ImageRequest, context: RunContext) -> ProviderResponse:
        """Make the images with one non-streamed call and return them whole."""
        settings = resolve(request)
        params = {
            name: value for name, value in settings.params.items() if name != "partial_images"
        }
        settings = attrs.evolve(settings, stream=False, params=params)
        if settings.api == "responses":
            from ._responses_api import generate_responses

            return await generate_responses(settings, context)
        from ._images_api import generate_images

        return await generate_images(settings, context)

    def pricing(self, model: str | None) -> Pricing | None:
        """Token prices of ``model`` (dated snapshots are priced like their base model)."""
        return pricing_for(model or DEFAULT_MODEL)


def _run(settings: Settings, context: RunContext) -> AsyncGenerator[Chunk, None]:
    if settings.api == "responses":
        from ._responses_api import stream_responses

        return stream_responses(settings, context)
    from ._images_api import stream_images

    return stream_images(settings, context)
