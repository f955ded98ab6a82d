"""The OpenAI-compatible gateway (``/v1/...``) for every installed provider."""

from __future__ import annotations

import time

from aiohttp import web

from imagestream import list_providers

__all__ = ["add_gateway_routes", "model_ids"]


def model_ids() -> list[str]:
    """Every model as the gateway names it: ``provider/model``."""
    return [
        f"{provider.name}/{model.id}" for provider in list_providers() for model in provider.models
    ]


async def models(request: web.Request) -> web.Response:
    """``GET /v1/models``."""
    created = int(time.time())
    return web.json_response(
        {
            "object": "list",
            "data": [
                {
                    "id": model,
                    "object": "model",
                    "created": created,
                    "owned_by": model.split("/")[0],
                }
                for model in model_ids()
            ],
        }
    )


def add_gateway_routes(app: web.Application) -> None:
    """Register the gateway's routes on ``app``."""
    app.router.add_get("/v1/models", models)
