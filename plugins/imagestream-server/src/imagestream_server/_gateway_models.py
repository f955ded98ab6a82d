"""Model names of the gateway: ``provider/model``, a provider alone, or a bare model id.

The rules are in :mod:`imagestream_server._gateway`'s docstring.
"""

from __future__ import annotations

import time
from typing import Any

import attrs
from aiohttp import web

from imagestream import Provider, get_provider, list_providers

from ._openai_errors import GatewayError, openai_error_response

__all__ = ["Target", "model", "model_ids", "models", "resolve_model"]


def model_ids() -> list[str]:
    """Every model as the gateway names it: ``provider/model``."""
    return [
        f"{provider.name}/{model.id}" for provider in list_providers() for model in provider.models
    ]


@attrs.frozen
class Target:
    """Where a request goes: a provider and one of its models.

    Attributes:
        provider: The installed provider.
        model: The model id, or ``None`` for the provider's default.
    """

    provider: Provider
    model: str | None = None

    @property
    def name(self) -> str:
        """``provider/model`` (the provider's default model when none was named)."""
        model = self.model or self.provider.default_model
        return f"{self.provider.name}/{model}" if model else self.provider.name

    @property
    def streams_previews(self) -> bool:
        """True if the model streams real previews (unknown models: if any of the provider's does)."""
        info = self.provider.model_info(self.model)
        return info.streams_previews if info is not None else self.provider.streams_previews


def _not_found(name: str, param: str) -> GatewayError:
    return GatewayError(
        f"The model '{name}' does not exist: use provider/model as GET /v1/models lists them, "
        "a provider's name for its default model, or a model id only one provider has",
        status=404,
        param=param,
        code="model_not_found",
    )


def resolve_model(name: object, *, default_provider: str | None, param: str = "model") -> Target:
    """The provider and model a request's ``model`` names (see the module's naming rules).

    Raises:
        GatewayError: 404 for a name nothing matches, 400 for an ambiguous or malformed one.
    """
    if name is None or name == "":
        return Target(get_provider(default_provider))
    if not isinstance(name, str):
        raise GatewayError(f"{param} must be a string", param=param, code="invalid_type")
    providers = {provider.name: provider for provider in list_providers()}
    if name in providers:
        return Target(providers[name])
    prefix, slash, model = name.partition("/")
    if slash and prefix in providers and model:
        return Target(providers[prefix], model)
    owners = [
        provider
        for provider in providers.values()
        if any(known.id == name for known in provider.models)
    ]
    if len(owners) > 1:
        preferred = [provider for provider in owners if provider.name == default_provider]
        if preferred:
            return Target(preferred[0], name)
        choices = ", ".join(f"{provider.name}/{name}" for provider in owners)
        raise GatewayError(
            f"The model '{name}' is offered by several providers; name one of: {choices}",
            param=param,
            code="model_ambiguous",
        )
    if owners:
        return Target(owners[0], name)
    raise _not_found(name, param)


def _model_entry(model_id: str, created: int) -> dict[str, Any]:
    return {
        "id": model_id,
        "object": "model",
        "created": created,
        "owned_by": model_id.split("/")[0],
    }


async def models(request: web.Request) -> web.Response:
    """``GET /v1/models``."""
    created = int(time.time())
    return web.json_response(
        {"object": "list", "data": [_model_entry(model, created) for model in model_ids()]}
    )


async def model(request: web.Request) -> web.Response:
    """``GET /v1/models/{model}``: one model, under its full ``provider/model`` name."""
    try:
        target = resolve_model(request.match_info["model"], default_provider=None)
    except GatewayError as exc:
        return openai_error_response(exc)
    return web.json_response(_model_entry(target.name, int(time.time())))
