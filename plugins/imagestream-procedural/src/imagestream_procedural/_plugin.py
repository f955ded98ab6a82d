"""Entry point module: registers the ``procedural`` provider, described, not imported.

The provider's class (and Pillow, and the renderer) is imported when it first
runs; listing providers reads what :mod:`._meta` declares.
"""

from __future__ import annotations

from collections.abc import Callable

from imagestream import Provider, hookimpl
from imagestream.provider import LazyProvider

from ._meta import DEFAULT_MODEL, DESCRIPTION, MODELS, NAME, OPTIONS


def provider() -> LazyProvider:
    """The ``procedural`` provider as registered: its description and where its class is."""
    return LazyProvider(
        "imagestream_procedural._provider:ProceduralProvider",
        name=NAME,
        description=DESCRIPTION,
        models=MODELS,
        default_model=DEFAULT_MODEL,
        options=OPTIONS,
    )


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    """Register the offline ``procedural`` provider."""
    register(provider())
