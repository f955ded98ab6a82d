"""Fetching a result URL: an image, capped in size, checked to be one.

Animus answers with URLs (``{"output": ["https://…png"]}``, ``result_urls``),
so every image is one more GET. The URL comes from the server, so:

- only ``http`` and ``https`` are followed;
- the bearer token goes along only to the API's own origin (a CDN or a
  storage bucket never sees it);
- a ``Content-Length`` above the cap is refused before reading, and a body
  that grows past it is cut off;
- the body must be an image: an HTML page or JSON is an
  :class:`~imagestream.UnexpectedResponseError` quoting its start, bytes with
  no image signature an :class:`~imagestream.ImageValidationError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from imagestream import ImageData, ImageValidationError, ProviderError, UnexpectedResponseError
from imagestream.provider import media_type, redact

from ._config import PROVIDER, origin
from ._errors import error_parser
from ._wire import refuse_content_type

if TYPE_CHECKING:
    from ._api import AnimusAPI

__all__ = ["DEFAULT_MAX_IMAGE_BYTES", "IMAGE_TYPES", "download_image"]

DEFAULT_MAX_IMAGE_BYTES: Final = 50 * 2**20
"""The largest image downloaded (``max_image_bytes``)."""

IMAGE_TYPES: Final = (
    "image/png",
    "image/jpeg",
    "image/webp",
    "image/gif",
    "application/octet-stream",
    "binary/octet-stream",
)
"""Media types a result URL may answer with (storage often says octet-stream: the bytes decide)."""


async def download_image(api: AnimusAPI, url: str, *, limit: int) -> ImageData:
    """The image at ``url``, at most ``limit`` bytes, with its sniffed type.

    Raises:
        UnexpectedResponseError: Not an http(s) URL, or the answer is not an image type.
        ProviderError: An error status, or more than ``limit`` bytes.
        ImageValidationError: The bytes are not an image.
    """
    shown = redact(url, api.secrets)
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise UnexpectedResponseError(
            f"the result URL {shown!r} is not an http(s) URL", provider=PROVIDER
        )
    headers = {"Accept": "image/*"}
    token = api.last_token
    if token is not None and origin(url) == origin(api.base):
        # The API's own storage: it may want the token. Anyone else must not see it.
        headers["Authorization"] = f"Bearer {token}"
    response = await api.http.send(
        "GET",
        url,
        provider=PROVIDER,
        headers=headers,
        parse_error=error_parser(api.secrets),
        stall_timeout=api.stall_timeout,
    )
    try:
        media = media_type(response)
        if media not in IMAGE_TYPES and not media.startswith("image/"):
            raise await refuse_content_type(
                response, ("image/png", "image/jpeg", "image/webp"), api.secrets
            )
        declared = response.content_length
        if declared is not None and declared > limit:
            raise _too_large(shown, limit, declared)
        pieces: list[bytes] = []
        size = 0
        async for piece in api.http.iter_body(response, provider=PROVIDER):
            size += len(piece)
            if size > limit:
                raise _too_large(shown, limit, None)
            pieces.append(piece)
    finally:
        response.close()
    data = b"".join(pieces)
    image = ImageData.from_bytes(data)
    mime = image.mime_type
    if mime is None:
        raise ImageValidationError(
            f"{PROVIDER}: the result URL {shown!r} sent {len(data)} bytes that are not an image "
            f"(starting {data[:8]!r})"
        )
    return ImageData.from_bytes(data, mime)


def _too_large(shown: str, limit: int, declared: int | None) -> ProviderError:
    said = f" ({declared} bytes by its Content-Length)" if declared is not None else ""
    return ProviderError(
        f"the image at {shown!r} is larger than max_image_bytes={limit}{said}",
        provider=PROVIDER,
        hint="pass -o max_image_bytes N if an image this large is expected",
    )
