"""The module the entry point names: registers the ``diffusers`` provider.

Light: torch and diffusers are imported by the first generation, in its
worker thread, never by this module.
"""

from __future__ import annotations

from collections.abc import Callable

from imagestream import Provider, hookimpl

from ._provider import DiffusersProvider


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    """Offer the ``diffusers`` provider."""
    register(DiffusersProvider())
