"""The module the ``imagestream`` entry point names: registers ``gemini`` and ``vertex``.

Light on purpose: every process that loads plugins imports it, so it
registers both as :class:`~imagestream.provider.LazyProvider` s with what
``imagestream providers`` shows (the model table), and the classes and the
request path are imported when a run needs them.
"""

from __future__ import annotations

from collections.abc import Callable

from imagestream import Provider, hookimpl
from imagestream.provider import LazyProvider

from ._models import DEFAULT_MODEL, MODELS

__all__ = ["register_providers"]


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    """Register the Gemini API and Vertex AI providers."""
    # What GeminiProvider and VertexProvider say about themselves (the plugin's
    # tests check they do).
    register(
        LazyProvider(
            "imagestream_google._provider:GeminiProvider",
            name="gemini",
            description="Google Gemini API: Gemini image models, text and images interleaved",
            models=tuple(spec.info() for spec in MODELS.values() if not spec.imagen),
            default_model=DEFAULT_MODEL,
            key_env="GEMINI_API_KEY",
            key_aliases=("GOOGLE_API_KEY",),
        )
    )
    register(
        LazyProvider(
            "imagestream_google._provider:VertexProvider",
            name="vertex",
            description=(
                "Google Vertex AI: Gemini image models and legacy Imagen, by project and location"
            ),
            models=tuple(spec.info() for spec in MODELS.values()),
            default_model=DEFAULT_MODEL,
        )
    )
