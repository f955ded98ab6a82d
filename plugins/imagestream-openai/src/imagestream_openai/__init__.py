"""OpenAI provider for imagestream: GPT image and DALL-E models, streamed.

Installed, it is the ``openai`` provider::

    import imagestream

    async for chunk in imagestream.stream("a lighthouse at dusk", provider="openai",
                                          model="gpt-image-1.5", partial_images=2):
        ...

It speaks the Images API (``/v1/images/generations``, ``/v1/images/edits``)
and the Responses API's ``image_generation`` tool (``-o api responses``) over
aiohttp, reading server-sent events with the ``sse`` decoder plugin.

A retired model (``dall-e-2``, ``dall-e-3``, ``gpt-image-1``) is still sent
when asked for, with a :class:`RetiredModelWarning` naming its replacement.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagestream.provider import lazy_exports

from ._version import __version__

if TYPE_CHECKING:
    from ._models import RetiredModelWarning
    from ._options import OPTIONS
    from ._provider import OpenAIProvider

__all__ = ["OPTIONS", "OpenAIProvider", "RetiredModelWarning", "__version__"]

# Imported on first use: the entry module (_plugin) is a submodule, and every
# process that loads plugins imports it, so this package must import nothing.
_LAZY = {"OPTIONS": "._options", "OpenAIProvider": "._provider", "RetiredModelWarning": "._models"}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
