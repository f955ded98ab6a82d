"""``NovelAIProvider``: check the request, send it, turn the answer into chunks.

Three ways back, one result:

* ``stream="msgpack"`` (the default for V4 and V4.5): length-prefixed msgpack
  frames, decoded by the ``msgpack`` decoder plugin;
* ``stream="sse"``: server-sent events, decoded by the ``sse`` decoder plugin;
* ``stream="none"`` (the default for V3): a ZIP of PNGs from the
  non-streaming endpoint, streamed as whole images (``synthetic``).

Both streams give the same chunks: an :class:`~imagestream.ImagePreview`
per sampler step (JPEG) and an :class:`~imagestream.ImageFinal` per sample (PNG).

Keys, redaction, option reading, input images, the content-type check and
the one-generation-at-a-time queue all come from :mod:`imagestream.provider`;
this module only knows NovelAI.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, Final

import attrs

from imagestream import (
    Chunk,
    ImageData,
    ImageFinal,
    ModelInfo,
    Provider,
    ProviderResponse,
    RetryPolicy,
    StreamInterruptedError,
)
from imagestream.provider import Prepared, check_content_type, iter_events, redact

from ._errors import PROVIDER, error_parser
from ._events import EventTranslator, sse_payload
from ._models import DEFAULT_MODEL, MODELS
from ._options import Settings, parse_settings
from ._request import DEFAULT_BASE_URL, build_body, describe, endpoint_url, headers
from ._zip import ZipLimits, read_zip_images

if TYPE_CHECKING:
    import aiohttp

    from imagestream import Decoder, ImageRequest, RunContext

__all__ = ["DEFAULT_RETRY", "MSGPACK_TYPES", "SSE_TYPES", "ZIP_TYPES", "NovelAIProvider"]

DEFAULT_RETRY = RetryPolicy(statuses=frozenset({408, 502, 503, 504}))
"""Retried before the first byte: gateway failures only.

Not 429: the account's one-at-a-time lock is taken by another generation,
which takes longer than any sensible backoff (concurrent requests from this
process queue instead, see ``max_concurrency``). Not 409 nor 500: the
generation may have run, and been paid for, already.
"""

# No recording of a NovelAI response exists, so its exact media types are
# unknown: every name a binary or msgpack body goes by is accepted, and what
# a proxy's error page or a JSON error sent with 200 uses is refused.
MSGPACK_TYPES: Final = (
    "application/msgpack",
    "application/x-msgpack",
    "application/vnd.msgpack",
    "application/octet-stream",
    "binary/octet-stream",
)
"""Media types accepted for ``stream="msgpack"``."""

SSE_TYPES: Final = ("text/event-stream",)
"""Media types accepted for ``stream="sse"``."""

ZIP_TYPES: Final = (
    "application/zip",
    "application/x-zip-compressed",
    "application/x-zip",
    "application/octet-stream",
    "binary/octet-stream",
)
"""Media types accepted from the ZIP endpoint (third-party clients saw the second and the last)."""


class NovelAIProvider(Provider):
    """NovelAI image generation (V4.5, V4 and V3 models), streamed step by step.

    Args:
        zip_limits: Caps for the ZIP archives of the non-streaming endpoint.
        retry: Retry policy for the request (before any byte of the answer).
    """

    name = "novelai"
    description = "NovelAI Diffusion (anime): a preview at every sampler step over msgpack or SSE"
    models = tuple(
        ModelInfo(spec.id, spec.description, streams_previews=spec.streams_by_default) for spec in MODELS.values()
    )
    default_model = DEFAULT_MODEL
    key_env = "NOVELAI_API_KEY"
    # The names other NovelAI tools use for the same token.
    key_aliases = ("NOVELAI_TOKEN", "NAI_TOKEN")
    # NovelAI runs one generation at a time per account and answers a second
    # one with 429: the pipeline queues runs per token and server instead.
    max_concurrency = 1

    def __init__(self, *, zip_limits: ZipLimits | None = None, retry: RetryPolicy | None = None) -> None:
        self.zip_limits = zip_limits or ZipLimits()
        self.retry = retry or DEFAULT_RETRY

    # -- before anything is sent ---------------------------------------------

    def settings(self, request: ImageRequest) -> Settings:
        """The checked settings of ``request`` (what :meth:`validate` checks)."""
        return parse_settings(request, default_model=self.default_model or DEFAULT_MODEL)

    def validate(self, request: ImageRequest) -> Prepared:
        """Refuse what NovelAI would refuse; fill in model, size, steps, seed, key and server.

        The seed is drawn here when the request has none, so that the
        request, and the final images, say which seed was used. The base URL
        is filled in so that runs naming the default server and runs naming
        none share one queue. The settings go on to :meth:`stream` with the
        request: it is parsed, and its input files read, once.
        """
        settings = self.settings(request)
        request = attrs.evolve(
            request,
            model=settings.model.id,
            size=f"{settings.width}x{settings.height}",
            steps=settings.steps,
            seed=settings.seed,
            api_key=self.api_key(request),
            base_url=request.base_url or DEFAULT_BASE_URL,
        )
        return Prepared(request, settings)

    def build_body(self, request: ImageRequest | Prepared) -> dict[str, Any]:
        """The JSON body this provider would send for ``request`` (for inspection and tests)."""
        return build_body(request.settings if isinstance(request, Prepared) else self.settings(request))

    def _settings(self, request: ImageRequest, context: RunContext) -> Settings:
        return context.prepared_as(Settings) or self.settings(request)

    # -- streaming --------------------------------------------------------------

    async def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Chunk]:
        """Stream previews and final images; see the module docstring for the three modes."""
        settings = self._settings(request, context)
        if settings.stream == "none":
            for chunk in (await self._generate_zip(settings, request, context)).chunks():
                yield chunk
            return
        # Made before the request is sent: a missing decoder plugin must not
        # cost a generation.
        if settings.stream == "msgpack":
            decoder = context.get_decoder("msgpack", framing="length-prefixed")
        else:
            decoder = context.get_decoder("sse")
        token = self.api_key(request).get()
        body = build_body(settings)
        url = endpoint_url(request.base_url, streaming=True)
        context.logger.debug("novelai: POST %s (%s)", redact(url), describe(body))
        response = await self._send(context, url, body, token, request.timeout)
        translator = EventTranslator(settings, token)
        chunks = self._read_stream(context, response, decoder, translator, sse=settings.stream == "sse")
        # aclosing: when the consumer stops early, the reader must be closed
        # now (it closes the connection), not when it is garbage collected.
        async with aclosing(chunks):
            async for chunk in chunks:
                yield chunk

    async def _send(
        self, context: RunContext, url: str, body: Mapping[str, Any], token: str, stall_timeout: float | None
    ) -> aiohttp.ClientResponse:
        return await context.http.send(
            "POST",
            url,
            provider=PROVIDER,
            headers=headers(token),
            json_body=body,
            parse_error=error_parser(token),
            retry=self.retry,
            stall_timeout=stall_timeout,
        )

    async def _read_stream(
        self,
        context: RunContext,
        response: aiohttp.ClientResponse,
        decoder: Decoder[Any],
        translator: EventTranslator,
        *,
        sse: bool,
    ) -> AsyncGenerator[Chunk, None]:
        """The chunks of the body's events; the kit checks the content type and closes the response."""
        types = SSE_TYPES if sse else MSGPACK_TYPES
        events = iter_events(context, response, decoder, provider=PROVIDER, content_types=types)
        try:
            async for event in events:
                chunk = translator.translate(_payload(event) if sse else event)
                if chunk is not None:
                    yield chunk
        except StreamInterruptedError as exc:
            # The connection broke, or the body ended inside a frame: from the
            # caller's side the stream stopped before its end either way.
            # Once every final image is in, though, nothing is lost.
            if not translator.complete:
                raise translator.interrupted(exc.message) from exc
            context.logger.debug("novelai: stream ended untidily after the last image: %s", exc.message)
            return
        finally:
            await events.aclose()
        if not translator.complete:
            raise translator.interrupted()

    # -- the ZIP endpoint ----------------------------------------------------

    async def generate(self, request: ImageRequest, context: RunContext) -> ProviderResponse:
        """Generate without streaming: the ZIP endpoint, whatever the ``stream`` option says."""
        return await self._generate_zip(self._settings(request, context), request, context)

    async def _generate_zip(self, settings: Settings, request: ImageRequest, context: RunContext) -> ProviderResponse:
        settings = attrs.evolve(settings, stream="none")
        token = self.api_key(request).get()
        body = build_body(settings)
        url = endpoint_url(request.base_url, streaming=False)
        context.logger.debug("novelai: POST %s (%s)", redact(url), describe(body))
        response = await self._send(context, url, body, token, request.timeout)
        try:
            await check_content_type(context, response, ZIP_TYPES, provider=PROVIDER)
            archive = await context.http.read_body(
                response, provider=PROVIDER, limit=self.zip_limits.max_archive_bytes
            )
        finally:
            response.close()
        # Imported here: this module loads at start-up, and asyncio costs every
        # command (``--help`` too) 20 ms. Inflating takes a while for big PNGs:
        # keep the event loop free meanwhile.
        import asyncio

        images = await asyncio.to_thread(read_zip_images, archive, self.zip_limits)
        finals = []
        for image in images:
            mime = ImageData.from_bytes(image.data).mime_type or "image/png"
            finals.append(
                ImageFinal(
                    image=ImageData.from_bytes(image.data, mime),
                    sample=image.sample,
                    mime_type=mime,
                    seed=settings.seed,
                    extra={"name": image.name},
                )
            )
        return ProviderResponse(images=finals)


def _payload(event: object) -> Mapping[str, Any]:
    """The event map of a decoded SSE event (the ``sse`` plugin's event record)."""
    return sse_payload(str(getattr(event, "event", "message") or "message"), str(getattr(event, "data", "")))
