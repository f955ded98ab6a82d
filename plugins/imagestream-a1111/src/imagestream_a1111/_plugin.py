"""The module the ``imagestream`` entry point names: registers the ``a1111`` provider.

Importing it is cheap: nothing reaches the network, and the HTTP stack is
imported only when a run starts.
"""

from __future__ import annotations

from collections.abc import Callable

from imagestream import Provider, hookimpl

from ._provider import A1111Provider

__all__ = ["register_providers"]


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    """Register :class:`~imagestream_a1111.A1111Provider` as ``a1111``."""
    register(A1111Provider())
