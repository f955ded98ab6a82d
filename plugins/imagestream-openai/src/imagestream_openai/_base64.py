"""Image base64 for this plugin: the core's codec (pybase64 with the ``fast`` extra).

Kept as a module of its own so the plugin's code and benchmark name one place;
decoding stays lazy and once, in :class:`~imagestream.ImageData`.
"""

from __future__ import annotations

from imagestream import ImageData
from imagestream._base64 import FAST_BASE64, decode_base64
from imagestream._base64 import encode_base64 as b64encode

__all__ = ["FAST_BASE64", "b64encode", "decode_base64", "image_from_base64"]


def image_from_base64(b64: str, mime_type: str | None) -> ImageData:
    """Wrap a base64 payload as it arrived; nothing is decoded or copied here."""
    return ImageData.from_base64(b64, mime_type)
