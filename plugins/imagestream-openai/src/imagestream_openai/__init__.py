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

from ._models import RetiredModelWarning
from ._options import OPTIONS
from ._provider import OpenAIProvider
from ._version import __version__

__all__ = ["OPTIONS", "OpenAIProvider", "RetiredModelWarning", "__version__"]
