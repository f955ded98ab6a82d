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

from typing import TYPE_CHECKING

from imagestream.provider import lazy_exports

from ._version import __version__

if TYPE_CHECKING:
    from ._app import make_app
    from ._config import DEFAULT_HOST, DEFAULT_PORT, TOKEN_ENV, ServerConfig

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "TOKEN_ENV", "ServerConfig", "__version__", "make_app"]

# Imported on first use: every process that loads plugins imports the entry
# module, a submodule of this package, so the package itself imports nothing
# (the configuration's imports cost more than a bare interpreter's start-up,
# and aiohttp's server side is loaded only when a server is made).
_LAZY: dict[str, str] = {
    "DEFAULT_HOST": "._config",
    "DEFAULT_PORT": "._config",
    "TOKEN_ENV": "._config",
    "ServerConfig": "._config",
    "make_app": "._app",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
