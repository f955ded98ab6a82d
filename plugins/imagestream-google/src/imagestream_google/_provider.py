"""``GeminiProvider`` and ``VertexProvider``: one request path, two ways to address and sign it.

Kept light to import: the plugin manager constructs both at start-up, so the
HTTP-facing modules are imported only when a request is made.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import attrs

from imagestream.provider import Prepared, Provider

from ._models import DEFAULT_MODEL, MODELS, spec_for

if TYPE_CHECKING:
    from collections.abc import Sequence

    import aiohttp

    from imagestream import (
        ImageRequest,
        ModelInfo,
        Pricing,
        ProviderResponse,
        RunContext,
        Secret,
    )
    from imagestream.provider import Chunk

    from ._adc import AdcTokens
    from ._endpoint import Endpoint
    from ._settings import Settings

__all__ = ["GeminiProvider", "VertexProvider"]

_MAX_HOPS = 16
"""Requests one reply may span through ``CONTINUATION`` before the rest is given up."""


class _GoogleProvider(Provider):
    """What both providers share: the request, the stream, the reading of responses."""

    api: ClassVar[Literal["gemini", "vertex"]]
    default_model: ClassVar[str | None] = DEFAULT_MODEL

    def settings(self, request: ImageRequest) -> Settings:
        """The checked settings of ``request`` (what :meth:`validate` checks)."""
        raise NotImplementedError

    def validate(self, request: ImageRequest) -> Prepared:
        """Refuse what Google would refuse, before any request; fill in model, key and base URL."""
        settings = self.settings(request)
        return Prepared(
            attrs.evolve(
                request,
                model=settings.model,
                api_key=settings.api_key,
                base_url=settings.base_url,
            ),
            settings,
        )

    def pricing(self, model: str | None) -> Pricing | None:
        """Prices of ``model`` (unknown ids have none)."""
        return spec_for(model or DEFAULT_MODEL).pricing

    async def endpoint(self, settings: Settings) -> Endpoint:
        """Where to send ``settings`` and with which credentials."""
        from ._endpoint import Endpoint

        return Endpoint(
            settings.base_url,
            settings.version,
            settings.model_path,
            api_key=settings.api_key,
            token=settings.access_token,
        )

    async def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Chunk]:
        """Text, thoughts and images in the order they arrive, then usage."""
        settings = context.prepared_as(_settings_type()) or self.settings(request)
        if settings.spec.imagen:
            for chunk in (await self.generate(request, context)).chunks():
                yield chunk
            return
        from ._errors import error_parser
        from ._events import ResponseReader
        from ._settings import body, describe

        endpoint = await self.endpoint(settings)
        method = "streamGenerateContent" if settings.stream else "generateContent"
        payload = body(settings)
        context.logger.debug("%s: POST %s (%s)", self.name, method, describe(payload))
        reader = ResponseReader(
            self.name,
            wants_image=settings.wants_image,
            secrets=endpoint.secrets,
            synthetic=not settings.stream,
        )
        for _ in range(_MAX_HOPS):
            # Asked for before sending: a missing decoder plugin costs no request.
            decoder = context.get_decoder("sse") if settings.stream else None
            response = await context.http.send(
                "POST",
                endpoint.url(method),
                provider=self.name,
                headers=endpoint.headers(
                    accept="text/event-stream" if settings.stream else "application/json"
                ),
                data=json.dumps(payload).encode("utf-8"),
                parse_error=error_parser(self.name, endpoint.secrets),
                stall_timeout=settings.timeout,
            )
            objects = _objects(context, response, decoder, settings, self.name, endpoint.secrets)
            async with aclosing(objects):
                async for obj in objects:
                    for chunk in reader.read(obj):
                        yield chunk
            token = reader.continuation()
            if token is None:
                break
            # The reply goes on in another request: the same one, with the token.
            context.logger.debug("%s: the reply continues in a new request", self.name)
            payload = {**body(settings), "continuationToken": token}
        for chunk in reader.finish():
            yield chunk

    async def generate(self, request: ImageRequest, context: RunContext) -> ProviderResponse:
        """Imagen's ``:predict``: the whole answer at once (Vertex AI only)."""
        from imagestream import ValidationError
        from imagestream.provider import read_json

        from ._errors import error_parser
        from ._imagen import imagen_response
        from ._settings import body

        settings = context.prepared_as(_settings_type()) or self.settings(request)
        if not settings.spec.imagen:
            raise ValidationError(f"{self.name}: {settings.model} streams; use stream()")
        endpoint = await self.endpoint(settings)
        response = await context.http.send(
            "POST",
            endpoint.url("predict"),
            provider=self.name,
            headers=endpoint.headers(accept="application/json"),
            data=json.dumps(body(settings)).encode("utf-8"),
            parse_error=error_parser(self.name, endpoint.secrets),
            stall_timeout=settings.timeout,
        )
        answer = await read_json(
            context, response, provider=self.name, limit=settings.max_response_bytes
        )
        return imagen_response(answer, provider=self.name)


def _settings_type() -> type[Settings]:
    from ._settings import Settings

    return Settings


async def _objects(
    context: RunContext,
    response: aiohttp.ClientResponse,
    decoder: Any,
    settings: Settings,
    provider: str,
    secrets: tuple[Secret, ...] = (),
) -> AsyncGenerator[object, None]:
    """The response objects of a body: one per SSE event, or the whole JSON (an object or a list).

    Raises:
        StreamDecodeError: An event whose data is not JSON.
        UnexpectedResponseError: A body that is neither (a proxy's HTML page).
    """
    from imagestream import StreamDecodeError
    from imagestream.provider import iter_events, media_type, read_json, redact

    from ._errors import KEY_PATTERNS

    if decoder is not None and media_type(response) == "text/event-stream":
        from ._framing import ErrorLines

        lines = ErrorLines(decoder)
        async with aclosing(iter_events(context, response, lines, provider=provider)) as events:
            async for event in events:
                data = event.data
                if not data.strip():
                    continue
                try:
                    yield json.loads(data)
                except ValueError:
                    # Quoted from the server, so masked: it may echo the key back.
                    quoted = redact(data, secrets, patterns=KEY_PATTERNS)[:80]
                    raise StreamDecodeError(
                        f"{provider}: an event's data is not JSON: {quoted!r}"
                    ) from None
        return
    # A whole answer: asked for (stream false), or a gateway that ignored alt=sse.
    types = ("application/json",) if decoder is None else ("application/json", "text/event-stream")
    whole = await read_json(
        context, response, provider=provider, limit=settings.max_response_bytes, content_types=types
    )
    for obj in whole if isinstance(whole, list) else [whole]:
        yield obj


class GeminiProvider(_GoogleProvider):
    """Google's Gemini API (AI Studio): Gemini image models, text and images interleaved.

    The key comes from ``api_key=``/``--key``, ``GEMINI_API_KEY`` or
    ``GOOGLE_API_KEY`` and travels in the ``x-goog-api-key`` header.
    """

    name: ClassVar[str] = "gemini"
    api: ClassVar[Literal["gemini", "vertex"]] = "gemini"
    description: ClassVar[str] = (
        "Google Gemini API: Gemini image models, text and images interleaved"
    )
    models: ClassVar[Sequence[ModelInfo]] = tuple(
        spec.info() for spec in MODELS.values() if not spec.imagen
    )
    key_env: ClassVar[str | None] = "GEMINI_API_KEY"
    key_aliases: ClassVar[Sequence[str]] = ("GOOGLE_API_KEY",)

    def settings(self, request: ImageRequest) -> Settings:
        """The checked settings of ``request``.

        Raises:
            MissingAPIKeyError: No key given and ``GEMINI_API_KEY`` unset.
        """
        from ._settings import parse

        key = self.api_key(request)
        return parse(request, api="gemini", key=key)


class VertexProvider(_GoogleProvider):
    """Google Vertex AI: Gemini image models (and legacy Imagen) in a Cloud project.

    Authenticates with an OAuth token from Application Default Credentials
    (the ``vertex`` extra), a token given as ``-o access_token``, or, in
    express mode, an API key (``--key`` or ``GOOGLE_API_KEY``, no project).
    """

    name: ClassVar[str] = "vertex"
    api: ClassVar[Literal["gemini", "vertex"]] = "vertex"
    description: ClassVar[str] = (
        "Google Vertex AI: Gemini image models and legacy Imagen, by project and location"
    )
    models: ClassVar[Sequence[ModelInfo]] = tuple(spec.info() for spec in MODELS.values())

    def __init__(self) -> None:
        self._adc: AdcTokens | None = None

    def settings(self, request: ImageRequest) -> Settings:
        """The checked settings of ``request`` (credentials are looked up, not fetched)."""
        from ._settings import parse

        return parse(request, api="vertex")

    async def endpoint(self, settings: Settings) -> Endpoint:
        """As for Gemini, with an ADC token fetched (off the event loop) when none was given."""
        endpoint = await super().endpoint(settings)
        if settings.api != "vertex" or settings.access_token is not None:
            return endpoint
        if self._adc is None:
            from ._adc import AdcTokens

            self._adc = AdcTokens()
        token, quota_project = await self._adc.token()
        return attrs.evolve(endpoint, token=token, user_project=quota_project)
