"""The module the entry point names: registers the ``diffusers`` provider, described.

Light: it registers a :class:`~imagestream.provider.LazyProvider` with what
:mod:`._meta` declares; the provider's class is imported when it first runs,
and torch and diffusers by the first generation, in its worker thread.
"""

from __future__ import annotations

from collections.abc import Callable

from imagestream import Provider, hookimpl
from imagestream.provider import LazyProvider

from ._meta import DEFAULT_MODEL, DESCRIPTION, MODELS, NAME


def provider() -> LazyProvider:
    """The ``diffusers`` provider as registered: its description and where its class is."""
    return LazyProvider(
        "imagestream_diffusers._provider:DiffusersProvider",
        name=NAME,
        description=DESCRIPTION,
        models=MODELS,
        default_model=DEFAULT_MODEL,
        options="imagestream_diffusers._provider:OPTIONS",
    )


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    """Offer the ``diffusers`` provider."""
    register(provider())
