"""The plugin module the ``imagestream`` entry point names: registers the ``novelai`` provider.

Importing it is cheap: it registers the provider as a
:class:`~imagestream.provider.LazyProvider` with what ``imagestream
providers`` shows (the model table), and the class, the option checks and
the stream readers are imported when a run needs them.
"""

from __future__ import annotations

from collections.abc import Callable

from imagestream import ModelInfo, Provider, hookimpl
from imagestream.provider import LazyProvider

from ._models import DEFAULT_MODEL, MODELS

__all__ = ["register_providers"]


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    """Register :class:`~imagestream_novelai.NovelAIProvider` as ``novelai``."""
    # What NovelAIProvider says about itself (the plugin's tests check it does).
    register(
        LazyProvider(
            "imagestream_novelai._provider:NovelAIProvider",
            name="novelai",
            description="NovelAI Diffusion (anime): a preview at every sampler step over msgpack or SSE",
            models=tuple(
                ModelInfo(spec.id, spec.description, streams_previews=spec.streams_by_default)
                for spec in MODELS.values()
            ),
            default_model=DEFAULT_MODEL,
            key_env="NOVELAI_API_KEY",
            key_aliases=("NOVELAI_TOKEN", "NAI_TOKEN"),
            max_concurrency=1,
        )
    )
