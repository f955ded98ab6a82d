"""The imagestream plugin: registers the ``"msgpack"`` stream decoder.

Loaded through the ``imagestream`` entry point group. Importing it is cheap:
the decoder, and msgpack itself, are imported when the first decoder is made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from imagestream.hookspecs import hookimpl

if TYPE_CHECKING:
    from ._decoder import MsgpackDecoder

__all__ = ["make_decoder", "register_decoders"]

DECODER_NAME = "msgpack"


@hookimpl
def register_decoders(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register :class:`~imagestream_msgpack.MsgpackDecoder` as ``"msgpack"``.

    ``get_decoder("msgpack", **options)`` calls :func:`make_decoder`, so
    options are the class's keyword arguments.
    """
    register(DECODER_NAME, make_decoder)


def make_decoder(**options: Any) -> MsgpackDecoder:
    """A fresh ``MsgpackDecoder(**options)``; the class is imported on the first call."""
    from ._decoder import MsgpackDecoder

    return MsgpackDecoder(**options)
