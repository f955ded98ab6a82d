"""The OpenAI-compatible gateway (``/v1/...``) for every installed provider.

Routes: ``GET /v1/models`` (and ``/v1/models/{id}``), ``POST
/v1/images/generations``, ``POST /v1/images/edits`` and ``POST /v1/responses``
with the ``image_generation`` tool, streaming or not, answered as OpenAI
answers so the official SDKs work unchanged against ``{server}/v1``.

Model names: every model is ``provider/model`` (``procedural/procedural-1``,
``openai/gpt-image-1``, ``novelai/nai-diffusion-4-5-full``). A request may
also name

- a provider alone (``procedural``): its default model;
- a bare model id (``gpt-image-1``) that exactly one installed provider
  lists; when several do (``gemini-2.5-flash-image`` is both ``gemini``'s and
  ``vertex``'s), the server's default provider wins if it is one of them,
  otherwise the request is refused and told the full names;
- nothing: the server's default provider and its default model.

A provider name comes first, so ``procedural`` is never read as a model id.
``provider/anything`` goes to that provider, which decides whether it knows
``anything``. A name matching none of these is a 404 ``model_not_found``.
"""

from __future__ import annotations

from aiohttp import web

from ._gateway_images import edits, generations
from ._gateway_models import Target, model, model_ids, models, resolve_model
from ._gateway_responses import responses

__all__ = ["Target", "add_gateway_routes", "model_ids", "resolve_model"]


def add_gateway_routes(app: web.Application) -> None:
    """Register the gateway's routes on ``app``."""
    app.router.add_get("/v1/models", models)
    app.router.add_get("/v1/models/{model:.+}", model)
    app.router.add_post("/v1/images/generations", generations)
    app.router.add_post("/v1/images/edits", edits)
    app.router.add_post("/v1/responses", responses)
