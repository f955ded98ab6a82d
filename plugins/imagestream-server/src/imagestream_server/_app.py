"""The aiohttp application: the page, the native API, the OpenAI-compatible gateway."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from ._config import ServerConfig
from ._gateway import add_gateway_routes
from ._generations import Generations
from ._keys import CONFIG, GENERATIONS
from ._native import add_native_routes
from ._security import middlewares

__all__ = ["STATIC", "make_app"]

STATIC = Path(__file__).parent / "static"
"""The page's files, shipped in the package: no CDN, no build step."""


async def _index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


def make_app(config: ServerConfig | None = None) -> web.Application:
    """The server as an aiohttp application (``imagestream serve`` runs it).

    Everything it keeps is per request or per process (the limits' counters);
    saved images live in ``config.out_dir``, which processes behind one proxy
    may share.

    Raises:
        ConfigurationError: ``config`` would expose the server without a token.
    """
    config = (config or ServerConfig()).check()
    app = web.Application(client_max_size=config.max_body_bytes, middlewares=middlewares())
    app[CONFIG] = config
    app[GENERATIONS] = Generations(config)
    app.router.add_get("/", _index)
    app.router.add_static("/static/", STATIC, show_index=False, follow_symlinks=False)
    add_native_routes(app)
    add_gateway_routes(app)
    return app
