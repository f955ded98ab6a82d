"""imagestream-procedural: the offline default provider. No key, no network.

It parses simple prompts ("a simple red circle", "a blue square on yellow") and
draws them; anything else becomes abstract art seeded by the prompt's words.
Previews are real intermediate frames, from noise to the image, with a
falling sigma like a diffusion sampler's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._provider import ProceduralProvider

__all__ = ["ProceduralProvider"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the entry module, a submodule, must not pay for it.
    if name == "ProceduralProvider":
        from ._provider import ProceduralProvider

        return ProceduralProvider
    raise AttributeError(f"module 'imagestream_procedural' has no attribute {name!r}")
