"""``OpenAIProvider``: the provider class the plugin registers.

Kept light to import: the plugin manager constructs it at start-up, even for
``imagestream --help``, so the HTTP and API modules are imported only when a
request is made.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, ClassVar

import attrs

from imagestream.provider import Prepared, Provider

from ._models import MODELS, pricing_for
from ._option_specs import OPTION_SPECS
from ._options import DEFAULT_MODEL, Settings, resolve

if TYPE_CHECKING:
    from collections.abc import Sequence

    from imagestream.provider import (
        Chunk,
        ImageRequest,
        ModelInfo,
        Pricing,
        ProviderResponse,
        RunContext,
    )

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
    options = OPTION_SPECS  # types, defaults and ranges: see _option_specs
    key_env: ClassVar[str | None] = "OPENAI_API_KEY"

    def validate(self, request: ImageRequest) -> Prepared:
        """Refuse what OpenAI would refuse; fill in the model, key and base URL.

        The parsed :class:`Settings` (input images read) ride on the run's
        context to :meth:`stream` / :meth:`generate`.

        Raises:
            ConfigurationError: Unknown option, a value that cannot be read, bad base URL.
            MissingAPIKeyError: No key given and ``OPENAI_API_KEY`` unset.
            ValidationError: A value out of range, or what the model or API does not support.
        """
        settings = self._settings(request)
        checked = attrs.evolve(
            request,
            model=settings.model,
            api_key=settings.endpoint.api_key,
            base_url=settings.endpoint.base_url,
        )
        return Prepared(checked, settings)

    def _settings(self, request: ImageRequest, context: RunContext | None = None) -> Settings:
        # validate's settings when the pipeline ran it: parsed, and files read, once.
        prepared = context.prepared_as(Settings) if context is not None else None
        return prepared or resolve(request, self.api_key(request))

    def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Chunk]:
        """Stream one request's chunks (a whole body, when not streamed, as its chunks).

        The call's own async generator, not one wrapped around it: every
        chunk would pass through one more generator for nothing. Nothing is
        sent until the first chunk is asked for.
        """
        return _run(self._settings(request, context), context)

    async def generate(self, request: ImageRequest, context: RunContext) -> ProviderResponse:
        """Make the images with one non-streamed call and return them whole."""
        settings = self._settings(request, context)
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
