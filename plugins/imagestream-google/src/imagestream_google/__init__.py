"""Google provider for imagestream: Gemini API and Vertex AI image generation, streamed.

Installed, it adds two providers::

    import imagestream

    async for chunk in imagestream.stream("a watercolor fox", provider="gemini"):
        match chunk:
            case imagestream.TextDelta(text=text, thought=False):
                print(text, end="")
            case imagestream.ImageFinal():
                chunk.image.save("fox.png")

``gemini`` speaks the Gemini API (AI Studio, ``GEMINI_API_KEY``); ``vertex``
speaks Vertex AI (a Cloud project with Application Default Credentials, or
an API key in express mode). Both read ``streamGenerateContent`` server-sent
events with the ``sse`` decoder plugin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagestream.provider import lazy_exports

from ._models import MODELS
from ._version import __version__

if TYPE_CHECKING:
    from ._provider import GeminiProvider, VertexProvider
    from ._settings import GEMINI_OPTIONS, VERTEX_OPTIONS

__all__ = [
    "GEMINI_OPTIONS",
    "MODELS",
    "VERTEX_OPTIONS",
    "GeminiProvider",
    "VertexProvider",
    "__version__",
]


# The option tables live with the request checks, which start-up never needs;
# the providers with the request path, which only a run needs (the entry
# module, a submodule imported by every process that loads plugins, registers
# them without importing them).
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "GEMINI_OPTIONS": "._settings",
        "VERTEX_OPTIONS": "._settings",
        "GeminiProvider": "._provider",
        "VertexProvider": "._provider",
    },
    __all__,
)
