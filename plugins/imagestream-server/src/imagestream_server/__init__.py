"""The imagestream relay server: ``imagestream serve``.

A web page with live previews, a streaming API (server-sent events, one per
chunk) and an OpenAI-compatible gateway (``/v1/images/generations``,
``/v1/images/edits``, ``/v1/responses``, ``/v1/models``) in front of every
installed provider::

    from aiohttp import web
    from imagestream_server import ServerConfig, make_app

    web.run_app(make_app(ServerConfig(port=8787)), handler_cancellation=True)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._config import DEFAULT_HOST, DEFAULT_PORT, TOKEN_ENV, ServerConfig
from ._version import __version__

if TYPE_CHECKING:
    from ._app import make_app

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "TOKEN_ENV", "ServerConfig", "__version__", "make_app"]


def __getattr__(name: str) -> Any:
    # The entry point imports this package whenever the command line lists its
    # commands (--help): aiohttp's server side is loaded only when a server is made.
    if name == "make_app":
        from ._app import make_app

        return make_app
    raise AttributeError(f"module 'imagestream_server' has no attribute {name!r}")
