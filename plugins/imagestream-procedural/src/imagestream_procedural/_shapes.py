"""Draw one antialiased :class:`Shape` onto a canvas.

Pillow's ``ImageDraw`` does not antialias fills, so each shape is drawn as a
coverage mask at several times the final resolution and box-filtered down:
the edge pixels end up with the fraction of their area the shape covers. The
mask is only as large as the shape's bounding box, which keeps memory bounded
even for many shapes on a 4096-pixel canvas.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final

from PIL import Image, ImageDraw, ImageFilter

from ._scene import Shape, ShapeKind

_MAX_SUPERSAMPLE: Final = 4
_MAX_MASK_SIDE: Final = 8192
"""Cap on the supersampled mask side: 4x of a 4096 canvas would need 256 MB."""

_SHADOW_OPACITY: Final = 0.2
"""A faint drop shadow lifts shapes off the background without changing their colour."""

Point = tuple[float, float]
_Painter = Callable[[ImageDraw.ImageDraw, Point, float], None]
"""Draws a shape in white on a mask: ``(draw, centre, extent)`` in mask pixels."""


def draw_shape(canvas: Image.Image, shape: Shape, *, shadow: bool = True) -> None:
    """Paint ``shape`` onto the RGB ``canvas`` in place, antialiased."""
    width, height = canvas.size
    extent = shape.size * min(width, height)
    if extent < 0.5:
        return  # smaller than a pixel: nothing visible to draw
    cx, cy = shape.x * width, shape.y * height
    blur = extent * 0.025 if shadow else 0.0
    margin = math.ceil(blur * 3) + 2
    x0 = math.floor(cx - extent / 2) - margin
    y0 = math.floor(cy - extent / 2) - margin
    side = math.ceil(extent) + 2 * margin + 2
    mask = _coverage(_PAINTERS[shape.kind], (cx - x0, cy - y0), extent, side)
    if shadow and blur >= 0.5:
        soft = mask.filter(ImageFilter.GaussianBlur(blur))
        soft = soft.point(lambda v: round(v * _SHADOW_OPACITY))
        drop = max(1, round(extent * 0.015))
        canvas.paste((0, 0, 0), (x0, y0 + drop), soft)
    canvas.paste(shape.colour, (x0, y0), mask)


def _coverage(paint: _Painter, centre: Point, extent: float, side: int) -> Image.Image:
    """An ``L`` mask of ``side`` x ``side`` pixels: 255 inside the shape, 0 outside."""
    factor = max(1, min(_MAX_SUPERSAMPLE, _MAX_MASK_SIDE // side))
    big = Image.new("L", (side * factor, side * factor), 0)
    draw = ImageDraw.Draw(big)
    paint(draw, (centre[0] * factor, centre[1] * factor), extent * factor)
    return big.reduce(factor) if factor > 1 else big


# -- painters: every shape fits in an ``extent`` x ``extent`` box at ``c`` ----


def _circle(draw: ImageDraw.ImageDraw, c: Point, e: float) -> None:
    _ellipse(draw, c, e / 2, e / 2)


def _ellipse_shape(draw: ImageDraw.ImageDraw, c: Point, e: float) -> None:
    _ellipse(draw, c, e / 2, e * 0.32)


def _ring(draw: ImageDraw.ImageDraw, c: Point, e: float) -> None:
    _ellipse(draw, c, e / 2, e / 2)
    _ellipse(draw, c, e * 0.31, e * 0.31, fill=0)


def _square(draw: ImageDraw.ImageDraw, c: Point, e: float) -> None:
    # 0.88 gives a square about the area of the circle of the same extent,
    # so "a circle and a square" look equally heavy.
    _box(draw, c, e * 0.44, e * 0.44)


def _rectangle(draw: ImageDraw.ImageDraw, c: Point, e: float) -> None:
    _box(draw, c, e / 2, e * 0.31)


def _line(draw: ImageDraw.ImageDraw, c: Point, e: float) -> None:
    half = max(e * 0.04, 1.0)
    box = (c[0] - e / 2, c[1] - half, c[0] + e / 2, c[1] + half)
    draw.rounded_rectangle(box, radius=half, fill=255)


def _triangle(draw: ImageDraw.ImageDraw, c: Point, e: float) -> None:
    half_height = e * math.sqrt(3) / 4  # equilateral with side e
    cx, cy = c
    draw.polygon(
        [(cx, cy - half_height), (cx + e / 2, cy + half_height), (cx - e / 2, cy + half_height)],
        fill=255,
    )


def _diamond(draw: ImageDraw.ImageDraw, c: Point, e: float) -> None:
    cx, cy = c
    draw.polygon(
        [(cx, cy - e / 2), (cx + e * 0.36, cy), (cx, cy + e / 2), (cx - e * 0.36, cy)], fill=255
    )


def _star(draw: ImageDraw.ImageDraw, c: Point, e: float) -> None:
    outer = e / 2
    points = []
    for i in range(10):
        radius = outer if i % 2 == 0 else outer * 0.45
        angle = -math.pi / 2 + i * math.pi / 5
        points.append((math.cos(angle) * radius, math.sin(angle) * radius))
    draw.polygon(_centred(points, c), fill=255)


def _regular(sides: int) -> _Painter:
    def paint(draw: ImageDraw.ImageDraw, c: Point, e: float) -> None:
        points = [
            (math.cos(a) * e / 2, math.sin(a) * e / 2)
            for a in (-math.pi / 2 + i * 2 * math.pi / sides for i in range(sides))
        ]
        draw.polygon(_centred(points, c), fill=255)

    return paint


def _heart(draw: ImageDraw.ImageDraw, c: Point, e: float) -> None:
    # The classic heart curve; scaled below to fill the box.
    points = []
    for i in range(120):
        t = 2 * math.pi * i / 120
        x = 16 * math.sin(t) ** 3
        y = -(13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t))
        points.append((x, y))
    scale = e / 34  # the curve spans 32 wide and about 29 tall
    draw.polygon(_centred([(x * scale, y * scale) for x, y in points], c), fill=255)


def _centred(points: list[Point], c: Point) -> list[Point]:
    """Move ``points`` so their bounding box is centred on ``c``.

    Stars, pentagons and hearts are not symmetric top to bottom; centring the
    box rather than the construction centre makes them sit where expected.
    """
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    dx = c[0] - (min(xs) + max(xs)) / 2
    dy = c[1] - (min(ys) + max(ys)) / 2
    return [(x + dx, y + dy) for x, y in points]


def _ellipse(draw: ImageDraw.ImageDraw, c: Point, rx: float, ry: float, *, fill: int = 255) -> None:
    draw.ellipse((c[0] - rx, c[1] - ry, c[0] + rx, c[1] + ry), fill=fill)


def _box(draw: ImageDraw.ImageDraw, c: Point, hx: float, hy: float) -> None:
    draw.rectangle((c[0] - hx, c[1] - hy, c[0] + hx, c[1] + hy), fill=255)


_PAINTERS: Final[dict[ShapeKind, _Painter]] = {
    "circle": _circle,
    "ellipse": _ellipse_shape,
    "ring": _ring,
    "square": _square,
    "rectangle": _rectangle,
    "line": _line,
    "triangle": _triangle,
    "diamond": _diamond,
    "star": _star,
    "pentagon": _regular(5),
    "hexagon": _regular(6),
    "heart": _heart,
}
