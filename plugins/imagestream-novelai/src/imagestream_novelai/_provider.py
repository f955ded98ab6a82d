"""``NovelAIProvider``: check the request, send it, turn the answer into chunks.

Three ways back, one result:

* ``stream="msgpack"`` (the default for V4 and V4.5): length-prefixed msgpack
  frames, decoded by the ``msgpack`` decoder plugin;
* ``stream="sse"``: server-sent events, decoded by the ``sse`` decoder plugin;
* ``stream="none"`` (the default for V3): a ZIP of PNGs from the
  non-streaming endpoint, turned into chunks by the core's fake streaming.

Both streams give the same chunks: an :class:`~imagestream.ImagePreview`
per sampler step (JPEG) and an :class:`~imagestream.ImageFinal` per sample (PNG).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

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
    StreamTruncatedError,
)

from ._auth import KEY_ENV, resolve_key
from ._concurrency import GenerationLocks
from ._errors import PROVIDER, error_parser
from ._events import EventTranslator, sse_payload
from ._models import DEFAULT_MODEL, MODELS
from ._options import Settings, parse_settings
from ._request import DEFAULT_BASE_URL, build_body, describe, endpoint_url, headers
from ._zip import ZipLimits, read_zip_images

if TYPE_CHECKING:
    import aiohttp

    from imagestream import Decoder, ImageRequest, RunContext, Secret

__all__ = ["DEFAULT_RETRY", "NovelAIProvider"]

DEFAULT_RETRY = RetryPolicy(statuses=frozenset({408, 502, 503, 504}))
"""Retried before the first byte: gateway failures only.

Not 429: the account's one-at-a-time lock is taken by another generation,
which takes longer than any sensible backoff (concurrent requests from this
process queue instead, see ``_concurrency``). Not 409 nor 500: the
generation may have run, and been paid for, already.
"""


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
    key_env = KEY_ENV

    def __init__(self, *, zip_limits: ZipLimits | None = None, retry: RetryPolicy | None = None) -> None:
        self.zip_limits = zip_limits or ZipLimits()
        self.retry = retry or DEFAULT_RETRY
        self._locks = GenerationLocks()

    # -- before anything is sent ---------------------------------------------

    def settings(self, request: ImageRequest) -> Settings:
        """The checked settings of ``request`` (what :meth:`validate` checks)."""
        return parse_settings(request, default_model=self.default_model or DEFAULT_MODEL)

    def validate(self, request: ImageRequest) -> ImageRequest:
        """Refuse what NovelAI would refuse; fill in model, size, steps, seed and the key.

        The seed is drawn here when the request has none, so that the
        request, and the final images, say which seed was used.
        """
        settings = self.settings(request)
        key = resolve_key(request.api_key)
        return attrs.evolve(
            request,
            model=settings.model.id,
            size=f"{settings.width}x{settings.height}",
            steps=settings.steps,
            seed=settings.seed,
            api_key=key,
        )

    def build_body(self, request: ImageRequest) -> dict[str, Any]:
        """The JSON body this provider would send for ``request`` (for inspection and tests)."""
        return build_body(self.settings(request))

    # -- streaming --------------------------------------------------------------

    async def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Chunk]:
        """Stream previews and final images; see the module docstring for the three modes."""
        settings = self.settings(request)
        secret = resolve_key(request.api_key)
        if settings.stream == "none":
            from imagestream._builtins.fake_streaming import chunks_from_response

            whole = await self._generate_zip(settings, request, context, secret)
            async for chunk in chunks_from_response(whole):
                yield chunk
            return
        # Made before the request is sent: a missing decoder plugin must not
        # cost a generation.
        decoder = self._decoder(context, settings)
        token = secret.get()
        translator = EventTranslator(settings, token)
        body = build_body(settings)
        url = endpoint_url(request.base_url, streaming=True)
        async with self._locks.lock(token, request.base_url or DEFAULT_BASE_URL):
            context.logger.debug("novelai: POST %s (%s)", url, describe(body))
            response = await self._send(context, url, body, token, request.timeout)
            # aclosing: when the consumer stops early, the reader must be
            # closed now (it closes the connection), not when it is collected.
            async with aclosing(self._read_stream(context, response, decoder, translator, settings)) as chunks:
                async for chunk in chunks:
                    yield chunk

    def _decoder(self, context: RunContext, settings: Settings) -> Decoder[Any]:
        if settings.stream == "msgpack":
            return context.get_decoder("msgpack", framing="length-prefixed")
        return context.get_decoder("sse")

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
        settings: Settings,
    ) -> AsyncGenerator[Chunk, None]:
        """Feed the body to the decoder and yield the chunks of its events.

        However this ends (the last final, an error, the consumer stopping
        early, a cancellation) the connection is released: closed outright
        unless the body was read to its end, so the server stops streaming.
        """
        sse = settings.stream == "sse"
        finished = False
        pieces = context.http.iter_body(response, provider=PROVIDER)
        try:
            try:
                async for piece in pieces:
                    for event in decoder.feed(piece):
                        chunk = translator.translate(_payload(event) if sse else event)
                        if chunk is not None:
                            yield chunk
                for event in decoder.close():
                    chunk = translator.translate(_payload(event) if sse else event)
                    if chunk is not None:
                        yield chunk
            except (StreamInterruptedError, StreamTruncatedError) as exc:
                # The connection broke, or the body ended inside a frame: from
                # the caller's side the stream stopped before its end either
                # way. Once every final image is in, though, nothing is lost.
                if not translator.complete:
                    raise translator.interrupted(exc.message) from exc
                context.logger.debug("novelai: stream ended untidily after the last image: %s", exc.message)
                return
            if not translator.complete:
                raise translator.interrupted()
            finished = True
        finally:
            closer = getattr(pieces, "aclose", None)
            if closer is not None:
                await closer()
            if not finished:
                response.close()

    # -- the ZIP endpoint ----------------------------------------------------

    async def generate(self, request: ImageRequest, context: RunContext) -> ProviderResponse:
        """Generate without streaming: the ZIP endpoint, whatever the ``stream`` option says."""
        return await self._generate_zip(self.settings(request), request, context, resolve_key(request.api_key))

    async def _generate_zip(
        self, settings: Settings, request: ImageRequest, context: RunContext, secret: Secret
    ) -> ProviderResponse:
        settings = attrs.evolve(settings, stream="none")
        token = secret.get()
        body = build_body(settings)
        url = endpoint_url(request.base_url, streaming=False)
        async with self._locks.lock(token, request.base_url or DEFAULT_BASE_URL):
            context.logger.debug("novelai: POST %s (%s)", url, describe(body))
            response = await self._send(context, url, body, token, request.timeout)
            archive = await context.http.read_body(
                response, provider=PROVIDER, limit=self.zip_limits.max_archive_bytes
            )
        # Inflating takes a while for big PNGs: keep the event loop free meanwhile.
        images = await asyncio.to_thread(read_zip_images, archive, self.zip_limits)
        finals = []
        for image in images:
            data = ImageData.from_bytes(image.data)
            mime = data.mime_type or "image/png"
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
