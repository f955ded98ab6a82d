"""Colour vocabulary: the colour words a prompt may use, and their RGB values.

The values are not the pure web colours: a slightly softened red or blue
reads as "red" or "blue" to anyone looking at it but sits better next to
other colours, which matters because prompts freely combine them.
"""

from __future__ import annotations

import colorsys
from typing import Final

RGB = tuple[int, int, int]
"""An opaque 8-bit colour."""

COLOURS: Final[dict[str, RGB]] = {
    "red": (214, 39, 40),
    "crimson": (190, 20, 50),
    "maroon": (120, 20, 35),
    "orange": (246, 130, 30),
    "coral": (245, 118, 95),
    "yellow": (250, 210, 30),
    "gold": (212, 170, 50),
    "beige": (232, 214, 176),
    "cream": (250, 242, 216),
    "green": (46, 160, 67),
    "lime": (150, 215, 40),
    "olive": (120, 125, 40),
    "teal": (0, 128, 128),
    "turquoise": (40, 200, 190),
    "cyan": (0, 190, 220),
    "blue": (31, 100, 220),
    "navy": (20, 35, 100),
    "indigo": (70, 40, 150),
    "purple": (128, 55, 170),
    "violet": (143, 85, 205),
    "lavender": (190, 170, 230),
    "magenta": (210, 40, 160),
    "pink": (242, 125, 175),
    "brown": (130, 82, 45),
    "black": (18, 18, 18),
    "white": (255, 255, 255),
    "grey": (128, 128, 128),
    "silver": (192, 192, 196),
}
"""Every colour name the parser understands, keyed by its canonical spelling."""

ALIASES: Final[dict[str, str]] = {
    "gray": "grey",
    "golden": "gold",
}
"""Alternative spellings, mapped onto a key of :data:`COLOURS`."""

# How far each modifier pulls the colour towards white (positive) or black
# (negative). "bright" keeps the base colour: the base colours are already
# saturated, and returning them unchanged keeps "bright red" recognisably red.
MODIFIERS: Final[dict[str, float]] = {
    "light": 0.5,
    "pale": 0.65,
    "bright": 0.0,
    "dark": -0.45,
    "deep": -0.3,
}
"""Colour modifiers and how strongly each lightens (+) or darkens (-)."""


def canonical_colour(word: str) -> str | None:
    """Return the canonical colour name for ``word``, or ``None`` if it is not one."""
    word = ALIASES.get(word, word)
    return word if word in COLOURS else None


def resolve(name: str, modifier: str | None = None) -> RGB:
    """Return the RGB value of colour ``name`` adjusted by ``modifier``.

    ``name`` must be a key of :data:`COLOURS` and ``modifier`` (if given) a key
    of :data:`MODIFIERS`.
    """
    base = COLOURS[name]
    amount = MODIFIERS[modifier] if modifier else 0.0
    if amount > 0:
        return mix(base, (255, 255, 255), amount)
    if amount < 0:
        return mix(base, (0, 0, 0), -amount)
    return base


def mix(a: RGB, b: RGB, t: float) -> RGB:
    """Linearly interpolate from ``a`` (``t=0``) to ``b`` (``t=1``)."""
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


def luminance(colour: RGB) -> float:
    """Perceived brightness in 0..1 (Rec. 601 weights, good enough for contrast)."""
    r, g, b = colour
    return (0.299 * r + 0.587 * g + 0.114 * b) / 255.0


def hsv(hue: float, saturation: float, value: float) -> RGB:
    """Build an RGB colour from hue (turns, wrapped), saturation and value in 0..1."""
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, _clamp01(saturation), _clamp01(value))
    return (round(r * 255), round(g * 255), round(b * 255))


def hue_of(colour: RGB) -> tuple[float, float, float]:
    """Return ``(hue, saturation, value)`` of ``colour``, each in 0..1."""
    return colorsys.rgb_to_hsv(colour[0] / 255, colour[1] / 255, colour[2] / 255)


def _clamp01(x: float) -> float:
    return min(1.0, max(0.0, x))
