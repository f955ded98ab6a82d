"""Entry point module: registers the ``procedural`` provider (cheap: Pillow loads on use)."""

from __future__ import annotations

from collections.abc import Callable

from imagestream import Provider, hookimpl

from ._provider import ProceduralProvider


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    """Register the offline ``procedural`` provider."""
    register(ProceduralProvider())
