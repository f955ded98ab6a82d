"""The module the ``imagestream`` entry point names: registers the ``openai`` provider.

It stays light on purpose: every process that loads plugins imports it, so
it registers the provider as a :class:`~imagestream.provider.LazyProvider`
with what ``imagestream providers`` shows (the model table), and the class,
its option checks and the API modules are imported when a run needs them.
"""

from __future__ import annotations

from collections.abc import Callable

from imagestream import Provider, hookimpl
from imagestream.provider import LazyProvider

from ._models import MODELS

__all__ = ["register_providers"]


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    """Register :class:`~imagestream_openai.OpenAIProvider` as ``openai``."""
    # What OpenAIProvider says about itself (the plugin's tests check it does).
    register(
        LazyProvider(
            "imagestream_openai._provider:OpenAIProvider",
            name="openai",
            description=(
                "OpenAI GPT image and DALL-E models (Images API, Responses API image tool)."
            ),
            models=MODELS,
            default_model="gpt-image-1.5",
            options="imagestream_openai._option_specs:OPTION_SPECS",
            key_env="OPENAI_API_KEY",
        )
    )
