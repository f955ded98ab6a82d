"""What the parser understood from a prompt: a :class:`Scene` of :class:`Shape` s.

A scene is plain data so that it can be logged, compared in tests and turned
back into words (:meth:`Scene.describe`, which the provider reports as the
"revised prompt": it tells the user exactly what was drawn).
"""

from __future__ import annotations

from typing import Final, Literal

import attrs

from ._palette import RGB

ShapeKind = Literal[
    "circle",
    "square",
    "rectangle",
    "triangle",
    "star",
    "ellipse",
    "line",
    "ring",
    "heart",
    "diamond",
    "pentagon",
    "hexagon",
]
"""Every shape the renderer can draw."""

_NUMBER_WORDS: Final = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve",
)  # fmt: skip


@attrs.frozen
class Shape:
    """One shape to draw, placed in canvas-relative coordinates.

    Positions and sizes are fractions so that one scene renders at any
    resolution: ``x`` and ``y`` locate the centre as fractions of the width
    and height, ``size`` is the shape's extent as a fraction of the shorter
    side (a circle's diameter, a square's bounding box).
    """

    kind: ShapeKind
    colour: RGB
    colour_name: str
    # Bounded so that a hand-made scene cannot ask for a mask many times the
    # canvas: the parser only produces 0..1.
    x: float = attrs.field(validator=[attrs.validators.ge(-1.0), attrs.validators.le(2.0)])
    y: float = attrs.field(validator=[attrs.validators.ge(-1.0), attrs.validators.le(2.0)])
    size: float = attrs.field(validator=[attrs.validators.gt(0.0), attrs.validators.le(2.0)])
    size_word: str = ""
    """``"small"``, ``"big"`` or ``""``: kept only to describe the scene."""
    place: str = ""
    """Where the prompt put it, e.g. ``"on the left"``; kept only to describe it."""
    group: int = 0
    """Index of the prompt phrase this shape came from ("two red circles" is one)."""
    rests_on: int | None = None
    """Group this one was drawn on top of ("a red circle on a blue square")."""


@attrs.frozen
class Scene:
    """A picture as understood from a prompt.

    Either a literal scene (``abstract`` false: a background colour and shapes
    drawn in order, first at the back) or an abstract composition seeded by
    ``words`` (``abstract`` true: ``shapes`` is empty and the background is
    only a fallback).
    """

    background: RGB = (255, 255, 255)
    background_name: str = "white"
    shapes: tuple[Shape, ...] = ()
    abstract: bool = False
    words: tuple[str, ...] = ()

    def describe(self) -> str:
        """Say in plain words what will be drawn, e.g. ``"a red circle on a white background"``."""
        if self.abstract:
            if not self.words:
                return "abstract composition"
            quoted = ", ".join(f"'{word}'" for word in self.words)
            return f"abstract composition from {quoted}"
        background = f"{_article(self.background_name)} {self.background_name} background"
        phrases = _group_phrases(self.shapes)
        if not phrases:
            return background
        shapes = _join(phrases)
        # "a star on the right on a navy background" reads as if the star were
        # on the right of the background; a comma keeps the two apart.
        qualified = any(s.place or s.rests_on is not None for s in self.shapes)
        separator = ", on " if qualified else " on "
        return f"{shapes}{separator}{background}"


def _group_phrases(shapes: tuple[Shape, ...]) -> list[str]:
    """One phrase per top-level group, bases folded in as "... on a blue square"."""
    groups: dict[int, list[Shape]] = {}
    for shape in shapes:
        groups.setdefault(shape.group, []).append(shape)
    bases = {shape.rests_on for shape in shapes if shape.rests_on is not None}
    phrases = []
    for index in sorted(groups):
        if index in bases:
            continue
        members = groups[index]
        phrase = _phrase(members)
        base = members[0].rests_on
        while base is not None and base in groups:
            phrase += " on " + _phrase(groups[base], with_place=False)
            base = groups[base][0].rests_on
        phrases.append(phrase)
    return phrases


def _phrase(members: list[Shape], *, with_place: bool = True) -> str:
    first = members[0]
    count = len(members)
    noun = first.kind + ("s" if count > 1 else "")
    words = [first.size_word, first.colour_name, noun]
    body = " ".join(word for word in words if word)
    if count == 1:
        body = f"{_article(body)} {body}"
    else:
        number = _NUMBER_WORDS[count] if count < len(_NUMBER_WORDS) else str(count)
        body = f"{number} {body}"
    if with_place and first.place:
        body += f" {first.place}"
    return body


def _article(phrase: str) -> str:
    return "an" if phrase[:1] in set("aeiou") else "a"


def _join(phrases: list[str]) -> str:
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]
