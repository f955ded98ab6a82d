"""Turn parsed shape groups into placed :class:`Shape` s.

The parser says *what* was asked ("two small red circles on the left"); this
module decides *where*: each group gets a region of the canvas (from its
position words, or a fair share of the width), and the group's shapes are laid
out on the grid that makes them as large as the region allows.

Everything is computed in canvas fractions (see :class:`Shape`), assuming a
square canvas. On a non-square canvas sizes follow the shorter side, so shapes
only get more room between them, never overlap more.
"""

from __future__ import annotations

import math
from typing import Final

import attrs

from ._palette import RGB
from ._scene import Shape, ShapeKind

_SIZE_FACTORS: Final = {"": 1.0, "small": 0.55, "big": 1.3}
_TOP_SCALE: Final = 0.55
"""A shape resting on another is drawn at this fraction of the one below."""

_HORIZONTAL: Final = {"": (0.0, 1.0), "center": (0.0, 1.0), "left": (0.0, 0.5), "right": (0.5, 1.0)}
_VERTICAL: Final = {"": (0.0, 1.0), "center": (0.0, 1.0), "top": (0.0, 0.5), "bottom": (0.5, 1.0)}


@attrs.frozen
class GroupSpec:
    """One shape phrase of the prompt, before layout."""

    kind: ShapeKind
    count: int
    colour: RGB
    colour_name: str
    size_word: str = ""
    horizontal: str = ""
    vertical: str = ""
    rests_on: int | None = None
    """Index (in the same list) of the group this one is drawn on top of."""

    @property
    def place(self) -> str:
        """The position in words, e.g. ``"at the top left"`` (empty if none given)."""
        h, v = self.horizontal, self.vertical
        if not h and not v:
            return ""
        if v in ("", "center") and h in ("", "center"):
            return "in the center"
        if not v or v == "center":
            return f"on the {h}"
        side = "" if h in ("", "center") else f" {h}"
        return f"at the {v}{side}"


@attrs.frozen
class _Region:
    """An axis-aligned part of the canvas, in canvas fractions."""

    x0: float
    y0: float
    x1: float
    y1: float


def layout(groups: list[GroupSpec]) -> tuple[Shape, ...]:
    """Place every shape of ``groups``; bases come before what rests on them.

    The returned order is the drawing order (back to front).
    """
    bases = {group.rests_on for group in groups if group.rests_on is not None}
    # A "slot" is a top group together with the chain of groups beneath it:
    # they share one region so that the top one sits on its base.
    tops = [index for index in range(len(groups)) if index not in bases]
    unplaced = [index for index in tops if not _placed(groups, index)]
    shapes: list[Shape] = []
    for index in tops:
        region = _slot_region(groups, index, unplaced)
        chain = _chain(groups, index)
        shapes.extend(_layout_chain(groups, chain, region))
    return tuple(shapes)


def _chain(groups: list[GroupSpec], top: int) -> list[int]:
    """Indices from the bottom-most base up to ``top``."""
    chain = [top]
    seen = {top}
    base = groups[top].rests_on
    while base is not None and base not in seen:
        chain.append(base)
        seen.add(base)
        base = groups[base].rests_on
    return chain[::-1]


def _placed(groups: list[GroupSpec], top: int) -> bool:
    return any(groups[i].horizontal or groups[i].vertical for i in _chain(groups, top))


def _slot_region(groups: list[GroupSpec], top: int, unplaced: list[int]) -> _Region:
    for index in reversed(_chain(groups, top)):
        group = groups[index]
        if group.horizontal or group.vertical:
            x0, x1 = _HORIZONTAL[group.horizontal]
            y0, y1 = _VERTICAL[group.vertical]
            return _Region(x0, y0, x1, y1)
    # Groups without a position share the canvas as cells of a grid, filled
    # in prompt order, so "a red circle and a blue square" reads left to
    # right like the sentence.
    centres, cell = _cells(len(unplaced), _Region(0.0, 0.0, 1.0, 1.0))
    x, y = centres[unplaced.index(top)]
    return _Region(x - cell / 2, y - cell / 2, x + cell / 2, y + cell / 2)


def _layout_chain(groups: list[GroupSpec], chain: list[int], region: _Region) -> list[Shape]:
    shapes: list[Shape] = []
    below: list[Shape] = []
    for index in chain:
        group = groups[index]
        if not below:
            placed = _grid(group, region, scale=1.0)
        elif len(below) == group.count:
            # One on each: same centres, smaller.
            placed = [
                (base.x, base.y, base.size * _TOP_SCALE * _SIZE_FACTORS[group.size_word])
                for base in below
            ]
        elif len(below) == 1:
            base = below[0]
            half = base.size * 0.35
            inner = _Region(base.x - half, base.y - half, base.x + half, base.y + half)
            placed = _grid(group, inner, scale=1.0)
        else:
            placed = _grid(group, region, scale=_TOP_SCALE)
        layer = [
            Shape(
                kind=group.kind,
                colour=group.colour,
                colour_name=group.colour_name,
                x=x,
                y=y,
                size=size,
                size_word=group.size_word,
                place=group.place,
                group=index,
                rests_on=group.rests_on,
            )
            for x, y, size in placed
        ]
        shapes.extend(layer)
        below = layer
    return shapes


def _grid(group: GroupSpec, region: _Region, *, scale: float) -> list[tuple[float, float, float]]:
    """Centres and sizes of ``group.count`` shapes on the best grid for ``region``."""
    centres, cell = _cells(group.count, region)
    # A lone shape on an empty canvas looks best at about 60% of it; shapes
    # in small cells need a larger share of the cell to not look lost.
    size = cell * (0.75 - 0.15 * min(cell, 1.0)) * _SIZE_FACTORS[group.size_word] * scale
    size = min(size, cell * 0.96)
    return [(x, y, size) for x, y in centres]


def _cells(count: int, region: _Region) -> tuple[list[tuple[float, float]], float]:
    """Centres of ``count`` square cells, as large as fit in ``region``, and their side.

    Rows are filled left to right, top to bottom; an incomplete last row is
    centred instead of leaving a hole on the right.
    """
    width = region.x1 - region.x0
    height = region.y1 - region.y0
    cols, rows, cell = 1, count, 0.0
    for c in range(1, count + 1):
        r = math.ceil(count / c)
        candidate = min(width / c, height / r)
        # On a tie prefer more columns: a row reads like the sentence.
        if candidate >= cell - 1e-9:
            cols, rows, cell = c, r, candidate
    left = region.x0 + (width - cols * cell) / 2
    top = region.y0 + (height - rows * cell) / 2
    centres = []
    for i in range(count):
        row, col = divmod(i, cols)
        offset = (cols - min(cols, count - row * cols)) * cell / 2
        centres.append((left + offset + (col + 0.5) * cell, top + (row + 0.5) * cell))
    return centres, cell
