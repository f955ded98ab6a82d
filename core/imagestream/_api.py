"""The top-level functions: ``stream``, ``agenerate``, ``generate`` over installed plugins."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._pipeline import ChunkStream, Pipeline, check_provider_argument, run_sync
from ._plugins import PluginManager, get_plugin_manager
from ._provider import Provider

if TYPE_CHECKING:
    from ._request import ImageRequest
    from ._result import GenerationResult

__all__ = ["agenerate", "generate", "get_provider", "list_providers", "stream"]


_global: tuple[PluginManager, Pipeline] | None = None


def _global_pipeline() -> Pipeline:
    # One pipeline over the global plugins, remade only when the manager is
    # replaced (tests do); its runs share the running loop's pooled HTTP client.
    global _global
    manager = get_plugin_manager()
    if _global is None or _global[0] is not manager:
        _global = (manager, Pipeline(manager=manager))
    return _global[1]


def stream(
    prompt: str | ImageRequest, *, provider: str | Provider | None = None, **params: Any
) -> ChunkStream:
    """Stream one generation as chunks, with every installed plugin.

    ::

        async with imagestream.stream("a red circle", provider="procedural") as chunks:
            async for chunk in chunks:
                ...

    Args:
        prompt: What to draw, or a whole :class:`ImageRequest`.
        provider: Provider name (default: ``procedural``, offline), or a
            :class:`Provider` object to run with the installed plugins
            without registering it.
        params: Request fields (``model``, ``size``, ``n``, ``steps``, ``seed``,
            ``partial_images``, ``api_key``, ``base_url``, ``deadline``, ...),
            provider options, and ``save=True`` / a :class:`SaveOptions` to
            save images. A keyword that is not a request field is a provider
            option: when the provider refuses one named like a field
            (``step=``), the error asks "did you mean 'steps'?".

    Raises:
        TypeError: ``provider`` is neither a name, a :class:`Provider` nor ``None``.

    Leaving the ``async with`` block, however it is left (``break``, an
    exception, cancellation), closes the run and its connection; a bare
    ``async for`` left early does not (see :class:`ChunkStream`). A run that
    ends without an image raises :class:`NoImageError`. Errors are
    :class:`ImagestreamError` subclasses; their ``partial`` holds what arrived.
    """
    if provider is not None:
        params["provider"] = provider
    return _global_pipeline().stream(prompt, **params)


async def agenerate(
    prompt: str | ImageRequest, *, provider: str | Provider | None = None, **params: Any
) -> GenerationResult:
    """Run one generation to the end; the async twin of :func:`generate`."""
    if provider is not None:
        params["provider"] = provider
    return await _global_pipeline().agenerate(prompt, **params)


def generate(
    prompt: str | ImageRequest, *, provider: str | Provider | None = None, **params: Any
) -> GenerationResult:
    """Run one generation to the end, from synchronous code."""
    return run_sync(lambda: agenerate(prompt, provider=provider, **params))


def get_provider(name: str | Provider | None = None) -> Provider:
    """The installed provider called ``name`` (``None``: the default).

    A :class:`Provider` object is returned as it is, so code can take either.

    Raises:
        UnknownProviderError: No installed plugin registered that name.
        TypeError: ``name`` is neither a name, a :class:`Provider` nor ``None``.
    """
    check_provider_argument(name)
    if isinstance(name, Provider):
        return name
    return get_plugin_manager().registry.provider(name)


def list_providers() -> list[Provider]:
    """Every installed provider, sorted by name."""
    providers = get_plugin_manager().registry.providers
    return [providers[name] for name in sorted(providers)]
