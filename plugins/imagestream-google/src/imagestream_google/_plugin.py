"""The module the ``imagestream`` entry point names: registers ``gemini`` and ``vertex``.

Light on purpose: the plugin manager imports it at start-up.
"""

from __future__ import annotations

from collections.abc import Callable

from imagestream import Provider, hookimpl

from ._provider import GeminiProvider, VertexProvider

__all__ = ["register_providers"]


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    """Register the Gemini API and Vertex AI providers."""
    register(GeminiProvider())
    register(VertexProvider())
