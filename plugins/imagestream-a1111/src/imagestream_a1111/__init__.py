"""The AUTOMATIC1111 web UI and Forge for imagestream: previews polled while the server works.

Installed, it registers the provider ``a1111``::

    import imagestream

    async for chunk in imagestream.stream("a castle", provider="a1111", steps=20):
        ...

Use the provider object directly to compose your own pipeline::

    from imagestream_a1111 import A1111Provider

    pipe = imagestream.Pipeline(A1111Provider(), saver=True)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagestream.provider import lazy_exports

if TYPE_CHECKING:
    from ._provider import A1111Provider
    from ._server import AUTH_ENV, BASE_URL_ENV, DEFAULT_BASE_URL

__all__ = ["AUTH_ENV", "BASE_URL_ENV", "DEFAULT_BASE_URL", "A1111Provider"]

__version__ = "0.1.0"

# Imported on first use: the entry module (``_plugin``) is a submodule, and
# every process that loads plugins imports it, so this package imports nothing.
_LAZY: dict[str, str] = {
    "AUTH_ENV": "._server",
    "BASE_URL_ENV": "._server",
    "DEFAULT_BASE_URL": "._server",
    "A1111Provider": "._provider",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, [*__all__, "__version__"])
