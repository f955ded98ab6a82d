"""imagestream-solid: a provider that paints the colour the prompt names."""

from ._provider import SolidProvider, encode_png

__all__ = ["SolidProvider", "encode_png"]
