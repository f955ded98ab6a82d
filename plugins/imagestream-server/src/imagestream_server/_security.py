"""The token check, CORS and JSON errors, as aiohttp middlewares.

Every API route (``/api/``, ``/v1/``, ``/files/``) needs ``Authorization:
Bearer <token>`` when the server has a token (always, off loopback); the
page and its static files do not, so a browser can load the page and then
ask for the token. Tokens are compared in constant time. CORS is off unless
origins are allowed by name.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from imagestream import AuthenticationError, ImagestreamError

from ._errors import error_response
from ._keys import CONFIG
from ._openai_errors import is_gateway_path, openai_error_response, openai_http_error

__all__ = ["middlewares"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_PROTECTED = ("/api/", "/v1/", "/files/")


def _allowed(request: web.Request) -> bool:
    token = request.app[CONFIG].token
    if token is None:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode("utf-8"), token.get().encode("utf-8")
    )


def _cors_headers(request: web.Request) -> dict[str, str]:
    origin = request.headers.get("Origin")
    if origin is None or origin not in request.app[CONFIG].cors_origins:
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Headers": "Authorization, Content-Type",
        "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    }


@web.middleware
async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer preflights for allowed origins; add the allow headers to their responses."""
    headers = _cors_headers(request)
    if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
        return web.Response(status=204 if headers else 403, headers=headers)
    response = await handler(request)
    if headers and not response.prepared:
        response.headers.update(headers)
    return response


@web.middleware
async def token(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse API calls without the server's token (401, one clear line)."""
    if request.path.startswith(_PROTECTED) and not _allowed(request):
        error = AuthenticationError(
            "this server needs its access token",
            hint="send Authorization: Bearer <token> (the token imagestream serve was given)",
        )
        headers = {"WWW-Authenticate": 'Bearer realm="imagestream"'}
        if is_gateway_path(request.path):  # OpenAI clients read OpenAI's error shape
            return openai_error_response(error, headers=headers)
        return error_response(error, headers=headers)
    return await handler(request)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Typed errors and aiohttp's own refusals (413, 404, 405) as JSON on API routes.

    On the gateway (``/v1/``) they take OpenAI's shape, as its clients expect.
    """
    try:
        return await handler(request)
    except ImagestreamError as exc:
        if is_gateway_path(request.path):
            return openai_error_response(exc)
        return error_response(exc)
    except web.HTTPException as exc:
        if not request.path.startswith(_PROTECTED) or exc.status < 400:
            raise
        if is_gateway_path(request.path):
            return openai_http_error(request, exc.status, exc.reason)
        message = {413: "the request body is too large"}.get(exc.status, exc.reason)
        return web.json_response(
            {"error": {"type": "HTTPError", "message": message, "hint": None}}, status=exc.status
        )


def middlewares() -> list[Middleware]:
    """The middlewares, outermost first."""
    return [cors, json_errors, token]
