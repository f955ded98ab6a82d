"""Running generations for clients: request checks, limits and saving.

Both APIs (the native one and the OpenAI-compatible gateway) start runs
here, over the installed plugins, saving every final image to the server's
output directory. Clients never choose a key or an upstream address: those
stay the server's.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from imagestream import ChunkStream, Pipeline, SaveOptions, ValidationError, get_plugin_manager
from imagestream.provider import read_integer, read_text

from ._config import ServerConfig
from ._limits import Limits

__all__ = ["Generations", "request_params"]

_INTEGERS = ("steps", "n", "seed", "partial_images")
_TEXTS = ("provider", "model", "size", "output_format", "quality", "negative_prompt")
_SERVER_ONLY = ("api_key", "base_url")


def request_params(data: Mapping[str, Any], *, from_query: bool = False) -> dict[str, Any]:
    """The generation parameters a client sent (JSON body, or query string for ``EventSource``).

    Raises:
        ValidationError: A missing prompt, an unknown or server-only field, a bad value.
    """
    unknown = sorted(set(data) - {"prompt", "options", *_INTEGERS, *_TEXTS, *_SERVER_ONLY})
    if unknown:
        raise ValidationError(
            f"unknown field(s): {', '.join(unknown)}",
            hint="fields: prompt, provider, model, size, steps, n, seed, partial_images, "
            "output_format, quality, negative_prompt, options",
        )
    refused = [name for name in _SERVER_ONLY if name in data]
    if refused:
        raise ValidationError(
            f"{', '.join(refused)} cannot be set by a client",
            hint="the server uses its own provider keys and addresses",
        )
    prompt = read_text(data.get("prompt"), "prompt", provider="server")
    params: dict[str, Any] = {}
    for name in _TEXTS:
        if data.get(name) not in (None, ""):
            params[name] = read_text(data[name], name, provider="server")
    for name in _INTEGERS:
        value = data.get(name)
        if value in (None, ""):
            continue
        if from_query and isinstance(value, str) and value.lstrip("-").isdigit():
            value = int(value)
        params[name] = read_integer(value, name, provider="server", low=0)
    options = data.get("options")
    if from_query and isinstance(options, str) and options:
        try:
            options = json.loads(options)
        except ValueError:
            raise ValidationError("options must be a JSON object") from None
    if options not in (None, ""):
        if not isinstance(options, Mapping):
            raise ValidationError("options must be an object")
        params["options"] = dict(options)
    params["prompt"] = prompt
    return params


class Generations:
    """Starts runs over the installed plugins, within the server's limits.

    Args:
        config: The server's settings (output directory, limits, default provider).
    """

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.limits = Limits(config.max_per_client, config.max_total)
        self.save = SaveOptions(out_dir=config.out_dir) if config.save else None

    def pipeline(self) -> Pipeline:
        """A pipeline over the installed plugins (cheap: one per run keeps runs independent)."""
        return Pipeline(manager=get_plugin_manager())

    @contextlib.asynccontextmanager
    async def run(self, params: Mapping[str, Any], client: str) -> AsyncIterator[ChunkStream]:
        """A running generation for ``client``; closed (upstream too) when the block exits.

        Raises:
            RateLimitError: The client or the server is at its cap (before anything starts).
        """
        params = dict(params)
        prompt = params.pop("prompt")
        if not params.get("provider") and self.config.default_provider:
            params["provider"] = self.config.default_provider
        with self.limits.slot(client):
            chunks = self.pipeline().stream(prompt, save=self.save, **params)
            async with chunks:
                yield chunks
