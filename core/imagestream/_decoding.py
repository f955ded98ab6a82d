"""The stream decoder contract, and lookup of decoders by name.

Decoders are plugins (``register_decoders``); the core only fixes their shape
so that providers and users can drive any of them the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

__all__ = ["Decoder", "DecoderFactory", "get_decoder"]

E = TypeVar("E")


class Decoder(Protocol[E]):
    """An incremental decoder: bytes in, complete events out.

    ``feed`` returns the events the new bytes completed; ``close`` returns what
    the end of the stream completes, or raises
    :class:`~imagestream.StreamTruncatedError`. The events never depend on
    how the bytes were split.
    """

    def feed(self, data: bytes) -> list[E]: ...

    def close(self) -> list[E]: ...


DecoderFactory = Callable[..., Decoder[Any]]
"""Anything that, called with keyword options (limits), returns a fresh decoder."""


def get_decoder(name: str, **options: Any) -> Decoder[Any]:
    """Return a fresh decoder registered under ``name`` by an installed plugin.

    ``options`` go to the decoder's factory: typically size limits, such as
    ``get_decoder("sse", max_event_bytes=256 * 2**20)``.

    Raises:
        UnknownDecoderError: No installed plugin registered ``name``.
    """
    from ._plugins import get_plugin_manager

    return get_plugin_manager().registry.decoder(name, **options)
