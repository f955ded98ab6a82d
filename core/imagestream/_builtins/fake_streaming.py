"""Built-in plugin ``fake_streaming``: stream a provider that can only generate.

Yields the response's text first, then each final image, then usage, every
chunk marked ``synthetic=True``, with no artificial delay: a fake stream is
exactly as fast as the non-streaming call it wraps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from .._chunks import Chunk
from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from .._context import RunContext
    from .._provider import Provider
    from .._request import ImageRequest


@hookimpl(trylast=True)
def stream(
    request: ImageRequest, provider: Provider, context: RunContext
) -> AsyncIterator[Chunk] | None:
    """Accept any request whose provider cannot stream."""
    if provider.can_stream:
        return None
    return _fake_stream(context)


async def _fake_stream(context: RunContext) -> AsyncIterator[Chunk]:
    response = await context.run_generate_hook()
    for chunk in response.chunks():
        yield chunk
