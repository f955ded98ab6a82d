"""Typed keys for what the application object holds, and who a request comes from."""

from __future__ import annotations

from aiohttp import web

from ._config import ServerConfig
from ._generations import Generations

__all__ = ["CONFIG", "GENERATIONS", "client_key"]

CONFIG = web.AppKey("config", ServerConfig)
GENERATIONS = web.AppKey("generations", Generations)


def client_key(request: web.Request) -> str:
    """Who is asking, for the per-client limit: the peer address.

    Behind a reverse proxy every client shares the proxy's address, so the
    per-client cap then applies to the proxy as a whole; give each process a
    ``max_total`` that fits instead.
    """
    return request.remote or "unknown"
