"""A provider for an HTTP API that streams partial images as server-sent events.

The API is made up for this example: ``POST /v1/sketches`` answers with a
``text/event-stream`` of ``partial``, ``image``, ``usage`` and ``error`` events,
each carrying a JSON object.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import attrs

from imagestream import (
    Chunk,
    ImageData,
    ImageFinal,
    ImagePreview,
    ImageRequest,
    MissingAPIKeyError,
    ModelInfo,
    Provider,
    RunContext,
    StreamDecodeError,
    Usage,
    error_for_status,
)

KEY_ENV = "SKETCH_API_KEY"
DEFAULT_BASE_URL = "https://api.sketch.example"


class SketchProvider(Provider):
    """Streams partial images from the (imaginary) Sketch API."""

    name = "sketch"
    description = "example: partial images over server-sent events"
    models = (ModelInfo("sketch-1", "partial images, then the final", streams_previews=True),)
    default_model = "sketch-1"
    key_env = KEY_ENV

    def validate(self, request: ImageRequest) -> ImageRequest:
        key = request.api_key or os.environ.get(KEY_ENV, "")
        if not key:
            raise MissingAPIKeyError(self.name, KEY_ENV)
        return attrs.evolve(
            request,
            api_key=key,  # wrapped in a Secret: it never shows in a repr or a log
            base_url=request.base_url or DEFAULT_BASE_URL,
            model=request.model or self.default_model,
        )

    async def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Chunk]:
        assert request.api_key is not None and request.base_url is not None  # see validate()
        # Ask for the decoder first: if it is not installed, nothing has been sent yet.
        decoder = context.get_decoder("sse")
        # send() returns once the status is 2xx; it retries before that, and raises
        # AuthenticationError, RateLimitError, ... (status, request id) for errors.
        response = await context.http.send(
            "POST",
            request.base_url.rstrip("/") + "/v1/sketches",
            provider=self.name,
            headers={
                "Authorization": f"Bearer {request.api_key.get()}",
                "Accept": "text/event-stream",
            },
            json_body={
                "model": request.model,
                "prompt": request.prompt,
                "size": request.size,
                "n": request.n,
                "partial_images": request.partial_images,
            },
            stall_timeout=request.timeout,
        )
        # aclosing() releases the connection as soon as the caller stops reading.
        body = context.http.iter_body(response, provider=self.name)
        async with contextlib.aclosing(body):
            async for piece in body:
                for event in decoder.feed(piece):
                    chunk = self._chunk(event.event, event.data)
                    if chunk is not None:
                        yield chunk
        for event in decoder.close():  # raises StreamTruncatedError mid-event
            chunk = self._chunk(event.event, event.data)
            if chunk is not None:
                yield chunk

    def _chunk(self, kind: str, data: str) -> Chunk | None:
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
            # The HTTP status was 200; the real one comes inside the stream.
            raise error_for_status(
                fields.get("status", 500),
                fields.get("message", "unknown error"),
                provider=self.name,
                code=fields.get("code"),
            )
        return None  # an event this version does not know: skip it
