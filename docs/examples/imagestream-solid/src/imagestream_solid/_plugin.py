"""The module the entry point names. imagestream imports it at start-up: keep it light."""

from __future__ import annotations

from collections.abc import Callable

from imagestream import Provider, hookimpl

from ._provider import SolidProvider


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    """Offer the ``solid`` provider."""
    register(SolidProvider())
