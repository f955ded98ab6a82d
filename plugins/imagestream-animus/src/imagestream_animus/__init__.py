"""Animus for imagestream: image generation with polled progress, and chat that sends pictures.

Installed, it registers the provider ``animus`` and the command
``imagestream chat``::

    import imagestream

    async with imagestream.stream("a lighthouse at dusk", provider="animus") as chunks:
        async for chunk in chunks:
            if isinstance(chunk, imagestream.Progress):
                print(f"{chunk.fraction:.0%} {chunk.message}")

Chat whose promised pictures are drawn by any image provider::

    from imagestream_animus import AnimusChat, ChatHistory, chat

    history = ChatHistory()
    async with chat("Can you show me a sunset over the sea?", history=history,
                    model=AnimusChat(), image_provider="procedural", save=True) as chunks:
        async for chunk in chunks:
            ...

See :mod:`imagestream_animus.conversation` for the chat flow, which works with any
chat model that yields an image prompt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagestream.provider import lazy_exports

if TYPE_CHECKING:
    from ._auth import DEFAULT_AUTH, AnimusAuth, Credentials
    from ._chat_model import AnimusChat, ChatEventReader
    from ._config import DEFAULT_API_VERSION, DEFAULT_CHAT_MODEL
    from ._provider import OPTIONS, AnimusProvider, read_status
    from .conversation import (
        ChatHistory,
        ChatMessage,
        ChatModel,
        ChatStream,
        ChatTurn,
        Reply,
        achat,
        chat,
        image_tag,
    )

__all__ = [
    "DEFAULT_API_VERSION",
    "DEFAULT_AUTH",
    "DEFAULT_CHAT_MODEL",
    "OPTIONS",
    "AnimusAuth",
    "AnimusChat",
    "AnimusProvider",
    "ChatEventReader",
    "ChatHistory",
    "ChatMessage",
    "ChatModel",
    "ChatStream",
    "ChatTurn",
    "Credentials",
    "Reply",
    "achat",
    "chat",
    "image_tag",
    "read_status",
]

__version__ = "0.1.0"

# Imported on first use: the entry module (``_plugin``) loads with this
# package in every process, and needs only the provider.
_LAZY: dict[str, str] = {
    "DEFAULT_AUTH": "._auth",
    "AnimusAuth": "._auth",
    "Credentials": "._auth",
    "AnimusChat": "._chat_model",
    "ChatEventReader": "._chat_model",
    "DEFAULT_API_VERSION": "._config",
    "DEFAULT_CHAT_MODEL": "._config",
    "OPTIONS": "._provider",
    "AnimusProvider": "._provider",
    "read_status": "._provider",
    "ChatHistory": ".conversation",
    "ChatMessage": ".conversation",
    "ChatModel": ".conversation",
    "ChatStream": ".conversation",
    "ChatTurn": ".conversation",
    "Reply": ".conversation",
    "achat": ".conversation",
    "chat": ".conversation",
    "image_tag": ".conversation",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, [*__all__, "__version__"])
