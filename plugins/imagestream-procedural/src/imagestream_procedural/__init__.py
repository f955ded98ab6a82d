"""imagestream-procedural: the offline default provider. No key, no network.

It parses simple prompts ("a simple red circle", "a blue square on yellow") and
draws them; anything else becomes abstract art seeded by the prompt's words.
Previews are real intermediate frames, from noise to the image, with a
falling sigma like a diffusion sampler's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagestream.provider import lazy_exports

if TYPE_CHECKING:
    from ._provider import ProceduralProvider

__all__ = ["ProceduralProvider"]


# Imported on first use: the entry module, a submodule, must not pay for it.
__getattr__, __dir__ = lazy_exports(__name__, {"ProceduralProvider": "._provider"}, __all__)
