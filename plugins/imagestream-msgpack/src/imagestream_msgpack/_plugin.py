"""The imagestream plugin: registers the ``"msgpack"`` stream decoder.

Loaded through the ``imagestream`` entry point group. Importing it is cheap:
msgpack itself is imported when the first decoder is made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from imagestream.hookspecs import hookimpl

from ._decoder import MsgpackDecoder

__all__ = ["register_decoders"]

DECODER_NAME = "msgpack"


@hookimpl
def register_decoders(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register :class:`~imagestream_msgpack.MsgpackDecoder` as ``"msgpack"``.

    The class is the factory: ``get_decoder("msgpack", **options)`` calls
    ``MsgpackDecoder(**options)``, so options are its keyword arguments.
    """
    register(DECODER_NAME, MsgpackDecoder)
