"""Built-in plugin ``native``: run a provider's own ``stream`` or ``generate``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING

from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from .._chunks import Chunk
    from .._context import RunContext
    from .._provider import Provider, ProviderResponse
    from .._request import ImageRequest


@hookimpl
def stream(
    request: ImageRequest, provider: Provider, context: RunContext
) -> AsyncIterator[Chunk] | None:
    """Use the provider's own stream when it has one."""
    if provider.can_stream:
        return provider.stream(request, context)
    return None


@hookimpl
def generate(
    request: ImageRequest, provider: Provider, context: RunContext
) -> Awaitable[ProviderResponse] | None:
    """Use the provider's own generate when it has one."""
    if provider.can_generate:
        return provider.generate(request, context)
    return None
