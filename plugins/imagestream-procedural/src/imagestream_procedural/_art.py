"""The drawing engine of the procedural provider: prompt in, pictures out.

Four pure functions, used in this order by the provider:

* :func:`parse_prompt` reads the prompt as a :class:`Scene`: either simple
  shapes and colours ("a blue square on yellow") or an abstract composition
  seeded by the prompt's words;
* :func:`render` draws the scene's final picture;
* :func:`sigma_schedule` gives the falling noise levels of the steps;
* :func:`denoise_frames` turns the final picture into the stream of preview
  frames, from noise to the picture.

Nothing here touches the network, the clock or global random state: equal
arguments always give equal pixels.
"""

from __future__ import annotations

import random

import attrs
from PIL import Image

from ._abstract import render_abstract
from ._denoise import Frame, denoise_frames
from ._limits import MAX_SIDE, MAX_STEPS, MIN_SIDE, MIN_STEPS, check_size
from ._parse import parse_prompt
from ._scene import Scene, Shape, ShapeKind
from ._schedule import sigma_schedule
from ._shapes import draw_shape

__all__ = [
    "MAX_SIDE",
    "MAX_STEPS",
    "MIN_SIDE",
    "MIN_STEPS",
    "Frame",
    "Scene",
    "Shape",
    "ShapeKind",
    "denoise_frames",
    "parse_prompt",
    "render",
    "sigma_schedule",
]


def render(scene: Scene, width: int, height: int, seed: int) -> Image.Image:
    """Draw ``scene`` as a new ``width`` x ``height`` RGB image.

    Simple scenes are drawn as described, with antialiased edges: the prompt
    decides the shapes, colours, sizes and places, and the seed nudges each
    shape a little (a few percent of its position and size), so ``n=3``
    gives three takes on the same picture, and one seed always the same
    one. Abstract scenes depend on both the scene's words and ``seed``.

    Raises :class:`ValueError` if a side is outside 16..4096 pixels.
    """
    check_size(width, height)
    if scene.abstract:
        return render_abstract(scene.words, seed, width, height)
    canvas = Image.new("RGB", (width, height), scene.background)
    for shape in _nudged(scene.shapes, seed):
        draw_shape(canvas, shape)
    return canvas


NUDGE = 0.03
"""How far the seed moves a simple shape: this fraction of the canvas, and of its size."""


def _nudged(shapes: tuple[Shape, ...], seed: int) -> list[Shape]:
    # A private generator: no global random state, equal seeds give equal pictures.
    rng = random.Random(seed)
    return [
        attrs.evolve(
            shape,
            x=shape.x + rng.uniform(-NUDGE, NUDGE),
            y=shape.y + rng.uniform(-NUDGE, NUDGE),
            size=min(2.0, shape.size * (1 + rng.uniform(-NUDGE, NUDGE))),
        )
        for shape in shapes
    ]
