"""Abstract compositions for prompts that are not simple shape scenes.

Everything random comes from ``random.Random`` instances seeded with SHA-256
digests of the prompt's words and the seed, so a prompt and seed always give
the same pixels, while any change to either gives a different picture.

A picture is built back to front:

1. a gradient sky between two background colours,
2. a soft glow (a sun, a lamp, a haze),
3. a structure: layered wavy bands (a horizon), straight translucent stripes,
   or concentric orbits,
4. one or two translucent shapes per prompt word, each from that word's own
   hash, so adding a word adds something visible rather than reshuffling all,
5. fine details (thin lines, a dot grid),
6. blurred light spots and a vignette to finish.

Steps 1-5 are drawn at twice the size and halved, which antialiases the
shape edges; Pillow's drawing functions do not antialias on their own.
"""

from __future__ import annotations

import concurrent.futures
import functools
import math
import os
import random
import threading
from typing import Any, Final

import attrs
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from ._moods import hints
from ._palette import COLOURS, RGB, canonical_colour, hsv, hue_of, mix
from ._words import digest

_SUPERSAMPLE_LIMIT: Final = 2048
"""Above this side draw at 1x: a 2x canvas would be huge, and stair steps too small to see."""

_SCHEMES: Final = (
    (0.0, 0.08, -0.08, 0.5),  # analogous with a complementary accent
    (0.0, 1 / 3, 2 / 3),  # triadic
    (0.0, 0.42, 0.58),  # split complementary
    (0.0, 0.05, 0.1, 0.15),  # one family of neighbouring hues
)
"""Hue offsets (in turns) of the accent colours from the base hue."""

RGBA = tuple[int, int, int, int]


@attrs.frozen
class _Palette:
    """The colours of one picture: sky gradient ends, accents, and a line colour."""

    sky: tuple[RGB, RGB]
    accents: tuple[RGB, ...]
    ink: RGB
    dark: bool


def render_abstract(words: tuple[str, ...], seed: int, width: int, height: int) -> Image.Image:
    """Draw the abstract composition for ``words`` and ``seed`` as an RGB image."""
    rng = random.Random(digest("abstract", seed, *words))
    palette = _palette(rng, words)
    factor = 2 if max(width, height) <= _SUPERSAMPLE_LIMIT else 1
    size = (width * factor, height * factor)

    # Everything random is decided first, in the order it always was; the
    # layers that do not depend on the canvas (the glow's mask, the light
    # spots) are then made in another thread while this one paints the rest:
    # Pillow leaves the interpreter free while it works, so a picture takes
    # about the time of its longer half.
    sky = (palette.sky, rng.uniform(-35, 35) + rng.choice((0, 0, 90)), size)
    glow = _plan_glow(size, rng, palette)
    shapes = _Shapes()
    structure = rng.choice((_horizon, _horizon, _stripes, _orbits))
    structure(shapes, rng, palette, size)
    # Short prompts still deserve a full picture: pad with seed-only words.
    shape_words = list(words) + [f"\x00{i}" for i in range(max(0, 3 - len(words)))]
    for word in shape_words:
        _word_shapes(shapes, random.Random(digest("word", seed, word)), palette, size)
    _details(shapes, rng, palette, size)
    spots = _plan_light_spots((width, height), rng, palette)

    helper = _helper()
    glow_mask = helper.submit(_glow_mask, glow)
    spot_layer = helper.submit(_light_layer, spots)
    canvas = _gradient(*sky)
    canvas.paste(glow.colour, glow.corner, glow_mask.result())
    shapes.paint(ImageDraw.Draw(canvas, "RGBA"))
    if factor > 1:
        canvas = canvas.reduce(factor)
    canvas = ImageChops.screen(canvas, spot_layer.result())
    return _vignette(canvas, 0.38 if palette.dark else 0.16)


_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _helper() -> concurrent.futures.ThreadPoolExecutor:
    """The threads that make the layers not painted on the canvas, made on first use.

    As many threads as cores at most, so pictures drawn at once in several
    threads do not queue behind one helper.
    """
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = concurrent.futures.ThreadPoolExecutor(
                    os.cpu_count() or 1, thread_name_prefix="procedural-layers"
                )
    return _pool


def _forget_pool() -> None:
    # A forked child has none of its parent's threads (nor a lock they held):
    # waiting on them would wait forever, so the child makes its own.
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


class _Shapes:
    """The shapes of a picture, kept as they are decided and painted later, in order.

    It takes the calls of :class:`PIL.ImageDraw.ImageDraw` that the layers
    use, so the randomness that places them runs before any pixel is made.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def polygon(self, xy: Any, **style: Any) -> None:
        self.calls.append(("polygon", (xy,), style))

    def ellipse(self, xy: Any, **style: Any) -> None:
        self.calls.append(("ellipse", (xy,), style))

    def pieslice(self, xy: Any, start: float, end: float, **style: Any) -> None:
        self.calls.append(("pieslice", (xy, start, end), style))

    def line(self, xy: Any, **style: Any) -> None:
        self.calls.append(("line", (xy,), style))

    def paint(self, draw: ImageDraw.ImageDraw) -> None:
        """Draw every shape on ``draw``, in the order they were decided."""
        for name, args, style in self.calls:
            getattr(draw, name)(*args, **style)


# -- palette ------------------------------------------------------------


def _palette(rng: random.Random, words: tuple[str, ...]) -> _Palette:
    named, tone = hints(words)
    dark = tone == "dark" if tone else rng.random() < 0.55
    if named:
        accents = [_jitter(rng, COLOURS[name]) for name in named[:4]]
        base = hue_of(COLOURS[named[0]])[0]
    else:
        accents = []
        base = rng.random()
    for offset in rng.choice(_SCHEMES):
        if len(accents) >= 4:
            break
        accents.append(hsv(base + offset, rng.uniform(0.55, 0.9), rng.uniform(0.75, 1.0)))
    # The sky takes the hues of the last accents (for "dusk": navy and
    # violet), so the first ones (orange) glow against it. A colour the prompt
    # names outright ("blue fire") tints the sky too, or it would be lost
    # among the colours of the mood words.
    h1 = hue_of(accents[-1])[0]
    h2 = hue_of(accents[-2])[0]
    explicit = [COLOURS[n] for w in words if (n := canonical_colour(w)) is not None]
    if explicit and hue_of(explicit[0])[1] >= 0.2:
        h2 = hue_of(explicit[0])[0]
    if dark:
        sky = (
            hsv(h1, rng.uniform(0.5, 0.8), rng.uniform(0.08, 0.18)),
            hsv(h2, rng.uniform(0.45, 0.7), rng.uniform(0.3, 0.45)),
        )
        ink = hsv(base, 0.08, 0.97)
    else:
        sky = (
            hsv(h1, rng.uniform(0.06, 0.16), rng.uniform(0.95, 1.0)),
            hsv(h2, rng.uniform(0.2, 0.35), rng.uniform(0.82, 0.93)),
        )
        ink = hsv(base, 0.6, 0.22)
    return _Palette(sky=sky, accents=tuple(accents), ink=ink, dark=dark)


def _jitter(rng: random.Random, colour: RGB) -> RGB:
    """A nearby variant of ``colour``, so two prompts with "red" differ a little."""
    h, s, v = hue_of(colour)
    return hsv(h + rng.uniform(-0.02, 0.02), s * rng.uniform(0.9, 1.05), v * rng.uniform(0.9, 1.05))


def _with_alpha(colour: RGB, alpha: int) -> RGBA:
    return (colour[0], colour[1], colour[2], alpha)


# -- layers -------------------------------------------------------------


def _gradient(ends: tuple[RGB, RGB], angle: float, size: tuple[int, int]) -> Image.Image:
    """A linear gradient from ``ends[0]`` to ``ends[1]``, rotated by ``angle`` degrees."""
    # Rotate a small gradient and crop its middle so no corner is left
    # unfilled; a smooth ramp loses nothing when scaled up afterwards.
    ramp = Image.linear_gradient("L").rotate(angle, resample=Image.Resampling.BICUBIC)
    ramp = ramp.crop((53, 53, 203, 203)).resize(size, Image.Resampling.BICUBIC)
    # Every pixel is one of 256 mixes of the two colours: composite them once
    # per ramp value and look the pixels up, the same colours at a fraction of
    # the cost of compositing two full-size plain images.
    levels = Image.frombytes("L", (256, 1), bytes(range(256)))
    first, second = (Image.new("RGB", (256, 1), end) for end in ends)
    ramp.putpalette(Image.composite(second, first, levels).tobytes())
    return ramp.convert("RGB")


@attrs.frozen
class _Glow:
    """Where the glow goes, how big, how strong and in which colour."""

    colour: RGB
    corner: tuple[int, int]
    side: int
    lut: list[int]


def _plan_glow(size: tuple[int, int], rng: random.Random, palette: _Palette) -> _Glow:
    width, height = size
    unit = min(width, height)
    radius = unit * rng.uniform(0.3, 0.6)
    cx = width * rng.uniform(0.2, 0.8)
    cy = height * rng.uniform(0.15, 0.6)
    # radial_gradient is 0 at the centre, about 180 at the middle of each
    # edge and 255 in the corners: fade out by 180 so no square edge shows.
    opacity = rng.uniform(0.55, 0.85)
    lut = [round(255 * opacity * max(0.0, 1 - v / 180) ** 1.6) for v in range(256)]
    side = max(2, round(radius * 2))
    return _Glow(palette.accents[0], (round(cx - radius), round(cy - radius)), side, lut)


def _glow_mask(glow: _Glow) -> Image.Image:
    falloff = Image.radial_gradient("L").resize((glow.side, glow.side), Image.Resampling.BILINEAR)
    return falloff.point(glow.lut)


def _horizon(draw: _Shapes, rng: random.Random, palette: _Palette, size: tuple[int, int]) -> None:
    """Layered wavy bands from a horizon down, each nearer one darker and more opaque."""
    width, height = size
    layers = rng.randint(2, 4)
    top = rng.uniform(0.45, 0.7)
    floor = palette.sky[0] if palette.dark else mix(palette.sky[0], (40, 40, 60), 0.5)
    for i in range(layers):
        base = height * (top + (1 - top) * i / layers)
        amplitude = height * rng.uniform(0.01, 0.06)
        waves = rng.uniform(0.5, 2.5)
        phase = rng.uniform(0, 2 * math.pi)
        points = [
            (
                width * k / 64,
                base + amplitude * math.sin(2 * math.pi * waves * k / 64 + phase),
            )
            for k in range(65)
        ]
        points += [(width, height), (0, height)]
        accent = palette.accents[(i + 1) % len(palette.accents)]
        colour = mix(accent, floor, 0.35 + 0.5 * i / layers)
        draw.polygon(points, fill=_with_alpha(colour, rng.randint(170, 235)))


def _stripes(draw: _Shapes, rng: random.Random, palette: _Palette, size: tuple[int, int]) -> None:
    """Straight translucent bands crossing the canvas at one shared angle."""
    width, height = size
    diagonal = math.hypot(width, height)
    angle = math.radians(rng.choice((-1, 1)) * rng.uniform(15, 60))
    along = (math.cos(angle), math.sin(angle))
    across = (-along[1], along[0])
    for i in range(rng.randint(3, 6)):
        offset = rng.uniform(-0.45, 0.45) * diagonal
        thickness = rng.uniform(0.03, 0.18) * diagonal
        cx = width / 2 + across[0] * offset
        cy = height / 2 + across[1] * offset
        corners = [
            (
                cx + along[0] * s * diagonal + across[0] * t,
                cy + along[1] * s * diagonal + across[1] * t,
            )
            for s, t in ((-1, 0), (1, 0), (1, thickness), (-1, thickness))
        ]
        colour = palette.accents[i % len(palette.accents)]
        draw.polygon(corners, fill=_with_alpha(colour, rng.randint(60, 140)))


def _orbits(draw: _Shapes, rng: random.Random, palette: _Palette, size: tuple[int, int]) -> None:
    """A disc with concentric rings around it, like a planet's orbits."""
    width, height = size
    unit = min(width, height)
    cx = width * rng.uniform(0.3, 0.7)
    cy = height * rng.uniform(0.3, 0.7)
    radius = unit * rng.uniform(0.12, 0.22)
    core = palette.accents[rng.randrange(len(palette.accents))]
    draw.ellipse(_box(cx, cy, radius), fill=_with_alpha(core, 220))
    for i in range(rng.randint(3, 6)):
        r = radius * (1.35 + 0.45 * i + rng.uniform(-0.1, 0.1))
        line = max(1, round(unit * rng.uniform(0.002, 0.012)))
        colour = palette.accents[i % len(palette.accents)] if i % 2 else palette.ink
        draw.ellipse(_box(cx, cy, r), outline=_with_alpha(colour, rng.randint(90, 200)), width=line)


def _word_shapes(
    draw: _Shapes, rng: random.Random, palette: _Palette, size: tuple[int, int]
) -> None:
    """One or two translucent shapes whose every property comes from one word."""
    width, height = size
    unit = min(width, height)
    for _ in range(rng.choice((1, 1, 2))):
        cx = width * rng.uniform(0.08, 0.92)
        cy = height * rng.uniform(0.08, 0.92)
        r = unit * rng.uniform(0.05, 0.24)
        colour = _with_alpha(
            palette.accents[rng.randrange(len(palette.accents))], rng.randint(110, 210)
        )
        kind = rng.randrange(6)
        if kind == 0:
            draw.ellipse(_box(cx, cy, r), fill=colour)
        elif kind == 1:
            draw.ellipse(
                _box(cx, cy, r), outline=colour, width=max(1, round(r * rng.uniform(0.12, 0.35)))
            )
        elif kind == 2:
            draw.polygon(_regular(cx, cy, r, 3, rng.uniform(0, 2 * math.pi)), fill=colour)
        elif kind == 3:
            draw.polygon(_rotated_rect(cx, cy, r, r * rng.uniform(0.25, 1.0), rng), fill=colour)
        elif kind == 4:
            start = rng.choice((0, 90, 180, 270))
            draw.pieslice(_box(cx, cy, r), start, start + 180, fill=colour)
        else:
            draw.polygon(_blob(cx, cy, r, rng), fill=colour)


def _details(draw: _Shapes, rng: random.Random, palette: _Palette, size: tuple[int, int]) -> None:
    """Thin lines and a small dot grid: fine structure that reads as "designed"."""
    width, height = size
    unit = min(width, height)
    for _ in range(rng.randint(1, 3)):
        y = height * rng.uniform(0.1, 0.9)
        x0, x1 = sorted((width * rng.uniform(0, 0.6), width * rng.uniform(0.4, 1.0)))
        slope = height * rng.uniform(-0.15, 0.15)
        draw.line(
            [(x0, y), (x1, y + slope)],
            fill=_with_alpha(palette.ink, rng.randint(80, 170)),
            width=max(1, round(unit * 0.004)),
        )
    if rng.random() < 0.6:
        gx = width * rng.uniform(0.1, 0.7)
        gy = height * rng.uniform(0.1, 0.7)
        step = unit * rng.uniform(0.025, 0.04)
        dot = max(1.0, unit * 0.005)
        fill = _with_alpha(palette.ink, rng.randint(110, 190))
        rows, cols = rng.randint(3, 6), rng.randint(3, 7)
        for row in range(rows):
            for col in range(cols):
                draw.ellipse(_box(gx + col * step, gy + row * step, dot), fill=fill)


@attrs.frozen
class _LightSpots:
    """Out-of-focus spots: drawn at half size, blurred, scaled to the picture."""

    size: tuple[int, int]
    small: tuple[int, int]
    spots: tuple[tuple[tuple[float, float, float, float], RGB], ...]
    blur: float


def _plan_light_spots(size: tuple[int, int], rng: random.Random, palette: _Palette) -> _LightSpots:
    width, height = size
    # Drawn at half size: the spots are blurred, so full resolution would be
    # wasted; much smaller and the upscaled blobs turn into visible diamonds.
    small = (max(1, width // 2), max(1, height // 2))
    unit = min(small)
    strength = 0.55 if palette.dark else 0.3
    spots = []
    for _ in range(rng.randint(4, 10)):
        colour = mix((0, 0, 0), palette.accents[rng.randrange(len(palette.accents))], strength)
        r = unit * rng.uniform(0.01, 0.05)
        spots.append((_box(small[0] * rng.random(), small[1] * rng.random(), r), colour))
    return _LightSpots(size, small, tuple(spots), max(1.0, unit * 0.012))


def _light_layer(plan: _LightSpots) -> Image.Image:
    """The spots' layer at the picture's size, to be added with a screen blend (it only brightens)."""
    layer = Image.new("RGB", plan.small, (0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for box, colour in plan.spots:
        draw.ellipse(box, fill=colour)
    layer = layer.filter(ImageFilter.GaussianBlur(plan.blur))
    return layer.resize(plan.size, Image.Resampling.BICUBIC)


def _vignette(canvas: Image.Image, strength: float) -> Image.Image:
    """Darken towards the corners, which draws the eye to the middle."""
    size = canvas.size
    # The mask is the same for every picture of a size and tone: kept for the
    # last size (both tones, at most 8 MB), so runs at one size, the usual
    # case, skip a full-size resize each. Pasting through it only reads it.
    make = _kept_mask if size[0] * size[1] <= _KEPT_MASK_PIXELS else _vignette_mask
    canvas.paste((0, 0, 0), None, make(strength, size))  # the canvas is ours: no copy
    return canvas


_KEPT_MASK_PIXELS: Final = 2048 * 2048


def _vignette_mask(strength: float, size: tuple[int, int]) -> Image.Image:
    lut = [round(255 * strength * min(1.0, v / 255) ** 2) for v in range(256)]
    return Image.radial_gradient("L").point(lut).resize(size, Image.Resampling.BILINEAR)


_kept_mask = functools.lru_cache(maxsize=2)(_vignette_mask)


# -- geometry -----------------------------------------------------------


def _box(cx: float, cy: float, r: float) -> tuple[float, float, float, float]:
    return (cx - r, cy - r, cx + r, cy + r)


def _regular(cx: float, cy: float, r: float, sides: int, turn: float) -> list[tuple[float, float]]:
    return [
        (
            cx + r * math.cos(turn + 2 * math.pi * i / sides),
            cy + r * math.sin(turn + 2 * math.pi * i / sides),
        )
        for i in range(sides)
    ]


def _rotated_rect(
    cx: float, cy: float, half_w: float, half_h: float, rng: random.Random
) -> list[tuple[float, float]]:
    a = rng.uniform(0, math.pi)
    c, s = math.cos(a), math.sin(a)
    return [
        (cx + x * c - y * s, cy + x * s + y * c)
        for x, y in ((-half_w, -half_h), (half_w, -half_h), (half_w, half_h), (-half_w, half_h))
    ]


def _blob(cx: float, cy: float, r: float, rng: random.Random) -> list[tuple[float, float]]:
    """A smooth irregular closed shape: a circle with two low harmonics on its radius."""
    a1, a2 = rng.uniform(0.08, 0.2), rng.uniform(0.04, 0.12)
    p1, p2 = rng.uniform(0, 2 * math.pi), rng.uniform(0, 2 * math.pi)
    points = []
    for i in range(48):
        t = 2 * math.pi * i / 48
        radius = r * (1 + a1 * math.sin(2 * t + p1) + a2 * math.sin(3 * t + p2))
        points.append((cx + radius * math.cos(t), cy + radius * math.sin(t)))
    return points
