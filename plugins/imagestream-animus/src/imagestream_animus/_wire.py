"""Reading Animus's answers outside a pipeline run: content types checked, sizes capped.

The kit's :func:`~imagestream.provider.read_json` needs a run's context; the
key exchange and the chat happen outside one, so these do the same checks
with only an :class:`~imagestream.HttpClient` at hand.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any, Final

from imagestream import StreamDecodeError, UnexpectedResponseError
from imagestream.provider import media_type, redact

from ._config import PROVIDER

if TYPE_CHECKING:
    import aiohttp

    from imagestream import HttpClient

__all__ = ["JSON_LIMIT", "is_json", "read_json_response", "refuse_content_type"]

JSON_LIMIT: Final = 8 * 2**20
"""The largest JSON answer read (a status or a reply is a few kilobytes)."""

_QUOTE: Final = 200


def is_json(media: str) -> bool:
    """True for ``application/json`` and ``application/*+json``."""
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def refuse_content_type(
    response: aiohttp.ClientResponse, expected: Collection[str], secrets: Iterable[str | None]
) -> UnexpectedResponseError:
    """The error for a body that is not one of ``expected``, quoting its start (masked); closes it."""
    media = media_type(response)
    head = b""
    try:
        head = await response.content.read(_QUOTE)
    except Exception:  # the quote is a courtesy: never let it hide the real error
        head = b""
    finally:
        response.close()
    quoted = redact(" ".join(head.decode("utf-8", "replace").split()), tuple(secrets))[:_QUOTE]
    wanted = " or ".join(list(expected)[:3])
    return UnexpectedResponseError(
        f"expected {wanted} but the server sent {media or 'no content type'}"
        + (f": {quoted!r}" if quoted else ""),
        provider=PROVIDER,
        status=response.status,
        content_type=media,
        hint="check base_url: a proxy, a login page or a wrong path answers this way",
    )


async def read_json_response(
    http: HttpClient,
    response: aiohttp.ClientResponse,
    *,
    what: str,
    secrets: Iterable[str | None] = (),
    limit: int = JSON_LIMIT,
) -> Any:
    """A whole JSON body (``what`` names it in errors); the response closed.

    Raises:
        UnexpectedResponseError: The body is not JSON by its content type.
        ProviderError: The body is larger than ``limit``.
        StreamDecodeError: The body does not parse.
    """
    masked = tuple(secrets)
    try:
        if not is_json(media_type(response)):
            raise await refuse_content_type(response, ("application/json",), masked)
        body = await http.read_body(response, provider=PROVIDER, limit=limit)
    finally:
        response.close()
    try:
        return json.loads(body)
    except ValueError as exc:
        quoted = redact(body[:_QUOTE].decode("utf-8", "replace"), masked)
        raise StreamDecodeError(f"{PROVIDER}: {what} is not JSON ({exc}): {quoted!r}") from None
