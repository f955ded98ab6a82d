"""A provider for an HTTP API that streams partial images as server-sent events.

The API is made up for this example: ``POST /v1/sketches`` takes JSON and
answers with a ``text/event-stream`` of ``partial``, ``image``, ``usage`` and
``error`` events, each carrying a JSON object. Everything the provider uses
comes from ``imagestream`` and its provider kit, ``imagestream.provider``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import attrs

from imagestream import (
    Chunk,
    ImageData,
    ImageFinal,
    ImagePreview,
    ImageRequest,
    ModelInfo,
    Provider,
    RunContext,
    Secret,
    StreamDecodeError,
    Usage,
    error_for_status,
)
from imagestream.provider import (
    InputImage,
    Options,
    Prepared,
    load_input_image,
    read_integer,
    redact,
    stream_events,
)

DEFAULT_BASE_URL = "https://api.sketch.example"
# Every option the provider takes; any other name is refused, with "did you mean".
OPTIONS = {
    "style": "pencil, ink or charcoal",
    "detail": "1 (loose) to 10 (fine)",
    "image": "a picture to start from: a path, bytes, base64 or a data: URL",
}
STYLES = ("pencil", "ink", "charcoal")
# The shape of a Sketch key: masked wherever it is quoted, even one that is not ours.
KEY_SHAPE = r"\bsk_sketch_[A-Za-z0-9]{8,}"


@attrs.frozen
class Settings:
    """The request as ``validate`` read it: ``stream`` only sends it."""

    key: Secret
    url: str
    style: str
    detail: int
    image: InputImage | None


class SketchProvider(Provider):
    """Streams partial images from the (imaginary) Sketch API."""

    name = "sketch"
    description = "example: partial images over server-sent events"
    models = (ModelInfo("sketch-1", "partial images, then the final", streams_previews=True),)
    default_model = "sketch-1"
    key_env = "SKETCH_API_KEY"
    # The API draws two sketches at once per account: more runs wait their turn.
    max_concurrency = 2

    def validate(self, request: ImageRequest) -> Prepared:
        settings = self.read(request)
        # The request as it will run: later steps (the analytics, the
        # concurrency limit, which counts per key and base URL) see this.
        request = attrs.evolve(
            request,
            model=request.model or self.default_model,
            api_key=settings.key,
            base_url=request.base_url or DEFAULT_BASE_URL,
        )
        return Prepared(request, settings)

    def read(self, request: ImageRequest) -> Settings:
        """Check everything the request says, before any network call."""
        # The request's key (api_key=, --key), else SKETCH_API_KEY; without
        # one, MissingAPIKeyError tells the user which variable to set.
        key = self.api_key(request)
        # ConfigurationError for what cannot be read (a misspelt name, a word
        # that is not a style, a detail that is not a number); ValidationError
        # for what is read but refused (a detail out of range, a GIF).
        options = Options(request.options, provider=self.name, known=OPTIONS)
        read_integer(request.n, "n", provider=self.name, low=1, high=4)
        image = options.raw("image")
        return Settings(
            key=key,
            url=(request.base_url or DEFAULT_BASE_URL).rstrip("/") + "/v1/sketches",
            style=options.choice("style", STYLES, "pencil"),
            detail=options.integer("detail", 5, low=1, high=10),
            # Read and sniffed once, here: a typo in a path fails before sending.
            image=None if image is None else load_input_image(image, "image", provider=self.name),
        )

    async def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Chunk]:
        # What validate() read; a caller that skipped it gets the same reading now.
        settings = context.prepared_as(Settings) or self.read(request)
        body: dict[str, Any] = {
            "model": request.model,
            "prompt": request.prompt,
            "size": request.size,
            "n": request.n,
            "partial_images": request.partial_images,
            "style": settings.style,
            "detail": settings.detail,
        }
        if settings.image is not None:
            body["image"] = settings.image.data_url
        # Ask for the decoder first: if no plugin provides it, nothing has been sent.
        decoder = context.get_decoder("sse")
        # send() retries before the first byte and raises AuthenticationError,
        # RateLimitError, ... for an error status; the Content-Type is checked
        # before any byte is decoded, so a proxy's HTML page sent with status
        # 200 is an UnexpectedResponseError quoting it, not a decoder failure.
        events = stream_events(
            context,
            "POST",
            settings.url,
            provider=self.name,
            decoder=decoder,
            content_types=("text/event-stream",),
            headers={
                "Authorization": f"Bearer {settings.key.get()}",
                "Accept": "text/event-stream",
            },
            json_body=body,
            stall_timeout=request.timeout,
        )
        # aclosing() releases the connection as soon as the caller stops reading.
        async with contextlib.aclosing(events):
            async for event in events:
                chunk = self.to_chunk(event.event, event.data, settings.key)
                if chunk is not None:
                    yield chunk

    def to_chunk(self, kind: str, data: str, key: Secret) -> Chunk | None:
        """One event as a chunk; ``None`` for an event this version does not know."""
        try:
            fields: dict[str, Any] = json.loads(data)
        except ValueError:
            raise StreamDecodeError(f"sketch: {kind!r} event is not JSON") from None
        if kind == "partial":
            return ImagePreview(
                ImageData.from_base64(fields["b64"], "image/png"),
                index=fields["index"],
                sample=fields.get("sample", 0),
            )
        if kind == "image":
            return ImageFinal(
                ImageData.from_base64(fields["b64"], "image/png"),
                sample=fields.get("sample", 0),
                seed=fields.get("seed"),
                revised_prompt=fields.get("revised_prompt"),
            )
        if kind == "usage":
            return Usage(
                input_tokens=fields.get("input_tokens"),
                output_tokens=fields.get("output_tokens"),
                raw=fields,
            )
        if kind == "error":
            # The HTTP status was 200; the real one comes inside the stream. The
            # message is the server's: mask our key, and anything shaped like one.
            message = str(fields.get("message", "unknown error"))
            message = redact(message, [key], patterns=[KEY_SHAPE])
            raise error_for_status(
                int(fields.get("status", 500)), message, provider=self.name, code=fields.get("code")
            )
        return None
