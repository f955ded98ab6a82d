"""Run the official ``google-genai`` SDK against the local server and return what it parsed.

The SDK is the judge: if it reads the server's bytes into its typed responses, the
server speaks the real protocol. The same helpers show what the SDK *sends* for given
settings (:func:`sdk_request`), for comparison with what imagestream sends.

Clients are made with ``HttpOptions(base_url=<server>, retry_options=attempts 1)``: one
attempt unless a test asks for more (without ``retry_options`` the SDK sleeps 1-10 s
and retries once by itself when a connection fails). Vertex clients get a static
``google.oauth2.credentials.Credentials(token=...)``, so google-auth never looks for
default credentials. Every client shares one TLS context that trusts no certificate:
it spares the SDK loading CA bundles three times per client (most of its start-up
time), and no TLS connection to anywhere can succeed from these tests.
"""

from __future__ import annotations

import functools
import ssl
import warnings
from collections.abc import AsyncIterator
from typing import Any, Literal, TypedDict, Unpack

import attrs
from _google_server import IMAGEN_MODEL, KEY, MODEL, PROJECT, TOKEN, GoogleServer, Recorded

Api = Literal["gemini", "vertex", "express"]
Part = tuple[str, str] | tuple[str, str, bytes]

PROMPT = "an axolotl in a teacup"


class ClientSettings(TypedDict, total=False):
    """How :func:`make_client` builds the ``genai.Client`` (every key optional).

    Keys:
        api_version: ``None`` keeps the SDK's default (``v1`` for the Gemini API,
            ``v1beta1`` for Vertex AI); ``"v1beta"``, ``"v1"``, ...
        key: API key (Gemini API and express mode). Default :data:`KEY`.
        token: OAuth2 access token (Vertex AI). Default :data:`TOKEN`.
        project: Vertex project. Default :data:`PROJECT`.
        location: Vertex location. Default ``"global"``.
        timeout_ms: ``HttpOptions.timeout`` in milliseconds (also sent as
            ``X-Server-Timeout`` in seconds). Default 10 000; ``None``: no timeout.
        retry: An ``HttpRetryOptions``. Default one attempt.
        headers: Extra request headers.
    """

    api_version: str | None
    key: str
    token: str
    project: str
    location: str
    timeout_ms: int | None
    retry: Any
    headers: dict[str, str] | None


@attrs.define
class SdkResult:
    """What the SDK parsed from one call (first candidate only).

    Attributes:
        parts: In order: ``("text", str)``, ``("thought", str)``, ``("image", mime, bytes)``,
            ``("thought_image", mime, bytes)``. Empty text parts are kept.
        signatures: The decoded ``thoughtSignature`` of each part that had one, in order.
        finish_reason: The last finish reason seen (its string value), or ``None``.
        finish_message: The last ``finishMessage`` seen.
        block_reason: ``promptFeedback.blockReason``, or ``None``.
        usage: The last ``usageMetadata`` as a plain dict with camelCase keys, as on the
            wire (``model_dump(mode="json", by_alias=True, exclude_none=True)``).
        model_version: The last ``modelVersion``.
        response_id: The last ``responseId``.
        create_time: The last ``createTime`` (Vertex), ISO text.
        chunks: How many responses the SDK yielded (1 when not streaming).
        responses: The SDK's response objects themselves.
        error: What the SDK raised part way, when the call asked for ``partial=True``.
    """

    parts: list[Part] = attrs.Factory(list)
    signatures: list[bytes] = attrs.Factory(list)
    finish_reason: str | None = None
    finish_message: str | None = None
    block_reason: str | None = None
    usage: dict[str, Any] | None = None
    model_version: str | None = None
    response_id: str | None = None
    create_time: str | None = None
    chunks: int = 0
    responses: list[Any] = attrs.Factory(list)
    error: BaseException | None = None

    @property
    def text(self) -> str:
        """All non-thought text, joined."""
        return "".join(str(part[1]) for part in self.parts if part[0] == "text")

    @property
    def images(self) -> list[tuple[str, bytes]]:
        """The final (non-thought) images as ``(mime, bytes)``."""
        return [(str(part[1]), part[2]) for part in self.parts if part[0] == "image"]  # type: ignore[misc]

    def add(self, response: Any) -> None:
        """Fold one SDK ``GenerateContentResponse`` into the result."""
        self.chunks += 1
        self.responses.append(response)
        if response.prompt_feedback is not None and response.prompt_feedback.block_reason:
            self.block_reason = _value(response.prompt_feedback.block_reason)
        if response.usage_metadata is not None:
            self.usage = response.usage_metadata.model_dump(
                mode="json", by_alias=True, exclude_none=True
            )
        self.model_version = response.model_version or self.model_version
        self.response_id = response.response_id or self.response_id
        if response.create_time is not None:
            self.create_time = response.create_time.isoformat()
        for candidate in (response.candidates or [])[:1]:
            if candidate.finish_reason is not None:
                self.finish_reason = _value(candidate.finish_reason)
            if candidate.finish_message is not None:
                self.finish_message = candidate.finish_message
            content = candidate.content
            for part in (content.parts if content is not None else None) or []:
                if part.thought_signature is not None:
                    self.signatures.append(part.thought_signature)
                if part.inline_data is not None:
                    kind = "thought_image" if part.thought else "image"
                    data = part.inline_data.data or b""
                    self.parts.append((kind, part.inline_data.mime_type or "", data))
                elif part.text is not None:
                    self.parts.append(("thought" if part.thought else "text", part.text))


@attrs.define
class ImagesResult:
    """What the SDK parsed from an Imagen ``generate_images`` call.

    Attributes:
        images: ``(mime, bytes)`` of each generated image, in order.
        filtered: ``rai_filtered_reason`` of each filtered prediction, in order.
        enhanced_prompts: ``enhanced_prompt`` of each prediction that had one.
        response: The SDK's response object.
    """

    images: list[tuple[str, bytes]] = attrs.Factory(list)
    filtered: list[str] = attrs.Factory(list)
    enhanced_prompts: list[str] = attrs.Factory(list)
    response: Any = None


def _value(enum_or_str: Any) -> str:
    return str(getattr(enum_or_str, "value", enum_or_str))


@functools.cache
def _no_trust() -> ssl.SSLContext:
    """A client TLS context with an empty trust store (the server is plain HTTP)."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def make_client(
    base_url: str,
    *,
    api: Api = "gemini",
    api_version: str | None = None,
    key: str = KEY,
    token: str = TOKEN,
    project: str = PROJECT,
    location: str = "global",
    timeout_ms: int | None = 10_000,
    retry: Any = None,
    headers: dict[str, str] | None = None,
) -> Any:
    """A ``genai.Client`` for ``api`` pointed at ``base_url``.

    ``gemini``: ``api_key``; ``vertex``: ``vertexai=True`` with project, location and a
    static OAuth2 token; ``express``: ``vertexai=True`` with ``api_key``. ``api_version``
    ``None`` keeps the SDK's default (``v1`` for Gemini, ``v1beta1`` for Vertex).
    ``retry`` is an ``HttpRetryOptions`` (default: one attempt).
    """
    from google import genai
    from google.genai import types

    options = types.HttpOptions(
        base_url=base_url,
        api_version=api_version,
        timeout=timeout_ms,
        retry_options=retry if retry is not None else types.HttpRetryOptions(attempts=1),
        headers=headers,
        client_args={"verify": _no_trust()},
        async_client_args={"verify": _no_trust(), "ssl": _no_trust()},
    )
    if api == "gemini":
        return genai.Client(api_key=key, http_options=options)
    if api == "express":
        return genai.Client(vertexai=True, api_key=key, http_options=options)
    import google.oauth2.credentials

    credentials = google.oauth2.credentials.Credentials(token=token)  # type: ignore[no-untyped-call]
    return genai.Client(
        vertexai=True,
        project=project,
        location=location,
        credentials=credentials,
        http_options=options,
    )


async def _close(client: Any) -> None:
    await client.aio.aclose()
    client.close()


async def sdk_stream(
    base_url: str,
    *,
    api: Api = "gemini",
    model: str = MODEL,
    prompt: Any = PROMPT,
    config: Any = None,
    stop_after: int | None = None,
    partial: bool = False,
    **client: Unpack[ClientSettings],
) -> SdkResult:
    """``client.aio.models.generate_content_stream(...)``, collected.

    Args:
        base_url: The server's origin (:attr:`GoogleServer.url`).
        api: ``"gemini"``, ``"vertex"`` or ``"express"``.
        model: Model name.
        prompt: ``contents`` (a string, or anything the SDK takes).
        config: A ``GenerateContentConfig`` or a dict of its fields.
        stop_after: Stop reading after this many responses and close the client (an
            early close, as a cancelled caller would).
        partial: Keep what was parsed when the SDK raises part way (in ``error``)
            instead of raising.
        client: :class:`ClientSettings` for :func:`make_client`.
    """
    sdk = make_client(base_url, api=api, **client)
    result = SdkResult()
    try:
        stream: AsyncIterator[Any] = await sdk.aio.models.generate_content_stream(
            model=model, contents=prompt, config=config
        )
        async for response in stream:
            result.add(response)
            if stop_after is not None and result.chunks >= stop_after:
                await stream.aclose()  # type: ignore[attr-defined]
                break
    except Exception as error:
        if not partial:
            raise
        result.error = error
    finally:
        await _close(sdk)
    return result


async def sdk_generate(
    base_url: str,
    *,
    api: Api = "gemini",
    model: str = MODEL,
    prompt: Any = PROMPT,
    config: Any = None,
    **client: Unpack[ClientSettings],
) -> SdkResult:
    """``client.aio.models.generate_content(...)`` (the whole answer), collected."""
    sdk = make_client(base_url, api=api, **client)
    try:
        response = await sdk.aio.models.generate_content(
            model=model, contents=prompt, config=config
        )
    finally:
        await _close(sdk)
    result = SdkResult()
    result.add(response)
    return result


async def sdk_images(
    base_url: str,
    *,
    api: Api = "vertex",
    model: str = IMAGEN_MODEL,
    prompt: str = PROMPT,
    config: Any = None,
    **client: Unpack[ClientSettings],
) -> ImagesResult:
    """``client.aio.models.generate_images(...)`` (Imagen ``:predict``; Vertex only in the SDK)."""
    sdk = make_client(base_url, api=api, **client)
    try:
        with warnings.catch_warnings():
            # generate_images is marked deprecated in favour of Gemini image models.
            warnings.simplefilter("ignore")
            response = await sdk.aio.models.generate_images(
                model=model, prompt=prompt, config=config
            )
    finally:
        await _close(sdk)
    result = ImagesResult(response=response)
    for generated in response.generated_images or []:
        image = generated.image
        if image is not None and image.image_bytes is not None:
            result.images.append((image.mime_type or "", image.image_bytes))
        if generated.rai_filtered_reason is not None:
            result.filtered.append(generated.rai_filtered_reason)
        if generated.enhanced_prompt is not None:
            result.enhanced_prompts.append(generated.enhanced_prompt)
    return result


async def sdk_request(
    server: GoogleServer,
    *,
    kind: Literal["stream", "generate", "images"] = "stream",
    **settings: Any,
) -> Recorded:
    """The request the SDK sends for ``settings`` (those of :func:`sdk_stream` and friends).

    The call runs against ``server`` (its queued scenario or generated answer) and the
    request it recorded is returned: ``path``, ``query``, lower-cased ``headers``, raw
    ``body`` and parsed ``json``.
    """
    before = len(server.requests)
    if kind == "stream":
        await sdk_stream(server.url, **settings)
    elif kind == "generate":
        await sdk_generate(server.url, **settings)
    else:
        await sdk_images(server.url, **settings)
    assert len(server.requests) == before + 1, "the SDK made more than one request"
    return server.requests[-1]
