"""imagestream-procedural: the offline default provider. No key, no network.

It parses simple prompts ("a simple red circle", "a blue square on yellow") and
draws them; anything else becomes abstract art seeded by the prompt's words.
Previews are real intermediate frames, from noise to the image, with a
falling sigma like a diffusion sampler's.
"""

from ._provider import ProceduralProvider

__all__ = ["ProceduralProvider"]
