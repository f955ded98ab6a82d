"""Read a prompt as a simple scene ("two red circles on yellow") if it is one.

The grammar is deliberately small and strict: a prompt is a list of shape
phrases (``[count] [size] [colour] shape [position]``), optionally a
background (``on <colour>``, ``<colour> background``), joined by filler and
connectives. A single word outside that vocabulary makes the whole prompt
abstract: drawing "a lighthouse at dusk" as whatever shapes happened to be
recognised in it would be worse than an honest abstract picture.
"""

from __future__ import annotations

import re
from typing import Final

import attrs

from ._layout import GroupSpec, layout
from ._palette import MODIFIERS, canonical_colour, luminance, resolve
from ._scene import Scene, ShapeKind
from ._words import content_words

SHAPES: Final[dict[str, ShapeKind]] = {
    "circle": "circle",
    "disc": "circle",
    "disk": "circle",
    "dot": "circle",
    "ball": "circle",
    "square": "square",
    "box": "square",
    "rectangle": "rectangle",
    "rect": "rectangle",
    "triangle": "triangle",
    "star": "star",
    "ellipse": "ellipse",
    "oval": "ellipse",
    "line": "line",
    "stripe": "line",
    "ring": "ring",
    "donut": "ring",
    "heart": "heart",
    "diamond": "diamond",
    "rhombus": "diamond",
    "pentagon": "pentagon",
    "hexagon": "hexagon",
}
"""Shape nouns (singular) and the shape each one draws."""

_PLURALS: Final = {"ellipses": "ellipse", "boxes": "box", "rhombi": "rhombus", "discs": "disc"}

_COUNTS: Final = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "pair": 2,
    "couple": 2, "few": 3, "several": 4, "many": 9,
}  # fmt: skip
_PLURAL_COUNT: Final = 3
"""How many shapes a plural without a number ("red circles") draws."""
_MAX_COUNT: Final = 100
"""More shapes than this would be specks; such a prompt is treated as abstract."""

_SIZES: Final = {
    "small": "small", "tiny": "small", "little": "small", "mini": "small",
    "big": "big", "large": "big", "huge": "big", "giant": "big", "medium": "",
}  # fmt: skip

_POSITIONS: Final = {
    "left": ("h", "left"), "right": ("h", "right"),
    "top": ("v", "top"), "upper": ("v", "top"), "bottom": ("v", "bottom"),
    "lower": ("v", "bottom"), "center": ("c", "center"), "centre": ("c", "center"),
    "middle": ("c", "center"),
}  # fmt: skip
_POSITION_FILLER: Final = frozenset({"side", "corner", "half", "part", "of", "picture", "image"})

_FILLER: Final = frozenset(
    {
        "a", "an", "the", "simple", "plain", "single", "just", "please", "draw", "paint",
        "make", "show", "me", "picture", "image", "drawing", "painting", "illustration",
        "of", "with", "and", "colored", "coloured", "solid", "flat", "shaped", "there",
        "is", "are",
    }
)  # fmt: skip
"""Words that carry no meaning for the scene and are skipped anywhere."""

_ON: Final = frozenset({"on", "against", "over", "atop"})
_AT: Final = frozenset({"at", "in", "to"})
_BACKGROUND: Final = frozenset({"background", "backdrop", "bg"})

_DEFAULT_BACKGROUND: Final = "white"


class _NotUnderstood(Exception):
    """Raised internally when the prompt leaves the simple-scene grammar."""


def parse_prompt(prompt: str) -> Scene:
    """Understand ``prompt`` as a simple scene, or fall back to an abstract one.

    Simple scenes are colour words and basic shapes ("a simple red circle",
    "a blue square on yellow", "two green triangles", "a dark blue star on a
    light grey background", "a small red circle on the left"). Anything else
    becomes ``Scene(abstract=True, words=...)`` seeded by the prompt's words.
    Matching is case-insensitive and ignores punctuation and articles.
    """
    tokens = _tokenise(prompt)
    try:
        parser = _Parser(tokens)
        parser.run()
        if not parser.groups and parser.background is None:
            raise _NotUnderstood
    except _NotUnderstood:
        return Scene(abstract=True, words=content_words(prompt))
    return parser.scene()


def _tokenise(prompt: str) -> list[str]:
    # Hyphens and punctuation separate words ("top-left", "red, blue"), and
    # digits split from letters, so "3 squares" and "3squares" both count.
    return re.findall(r"[a-z]+|\d+", prompt.lower())


class _Parser:
    """A single left-to-right pass over the tokens, with one word of lookahead."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.groups: list[GroupSpec] = []
        self.background: tuple[str, str | None] | None = None
        # Attributes read so far for the next shape noun.
        self.count: int | None = None
        self.size: str | None = None
        self.colour: tuple[str, str | None] | None = None
        self.place: tuple[str, str] = ("", "")
        # Set by "on": the next thing is a background or a base to rest on.
        self.on = False

    # -- driving -------------------------------------------------------

    def run(self) -> None:
        """Consume every token or raise :class:`_NotUnderstood`."""
        while (word := self._next()) is not None:
            self._word(word)
        if self.count is not None or self.size is not None or self.colour is not None:
            raise _NotUnderstood  # e.g. "two red" with no shape
        if self.place != ("", ""):
            raise _NotUnderstood
        if self.on:
            raise _NotUnderstood  # "a circle on" with nothing after

    def _next(self) -> str | None:
        while self.pos < len(self.tokens):
            word = self.tokens[self.pos]
            self.pos += 1
            if word not in _FILLER:
                return word
        return None

    def _peek(self) -> str | None:
        saved = self.pos
        word = self._next()
        self.pos = saved
        return word

    def _word(self, word: str) -> None:
        if word in _ON:
            if self._peek() in _POSITIONS:
                self._position(self._next() or "")
            else:
                self.on = True
        elif word in _AT:
            following = self._next()
            if following not in _POSITIONS:
                raise _NotUnderstood  # "at dusk", "in a forest"
            self._position(following)
        elif word in _POSITIONS:
            self._position(word)
        elif word in _BACKGROUND:
            self._background_word()
        elif word in MODIFIERS or canonical_colour(word):
            self._colour(word)
        elif word in _SIZES:
            self._set_once("size", _SIZES[word])
        elif word.isdigit() or word in _COUNTS:
            count = int(word) if word.isdigit() else _COUNTS[word]
            if not 1 <= count <= _MAX_COUNT:
                raise _NotUnderstood
            self._set_once("count", count)
        elif (shape := _shape_of(word)) is not None:
            if self.count is None and _is_plural(word):
                self.count = _PLURAL_COUNT  # "red circles": some, not one
            self._shape(shape, small=word in ("dot", "dots"))
        else:
            raise _NotUnderstood

    # -- grammar rules -------------------------------------------------

    def _set_once(self, name: str, value: object) -> None:
        if getattr(self, name) is not None:
            raise _NotUnderstood  # "big small circle", "two three squares"
        setattr(self, name, value)

    def _pending_shape_attrs(self) -> bool:
        return self.count is not None or self.size is not None

    def _colour(self, word: str) -> None:
        modifier: str | None = None
        if word in MODIFIERS:
            modifier = word
            if self._peek() in _BACKGROUND:
                # "on a dark background" names no hue: take it as a grey.
                word = "grey"
                if modifier == "bright":
                    modifier, word = None, "white"
            else:
                word = self._next() or ""
        name = canonical_colour(word)
        if name is None:
            raise _NotUnderstood  # "dark night", "light house"
        colour = (name, modifier)
        following = self._peek()
        if following in _BACKGROUND:
            self._next()
            self._set_background(colour)
            self.on = False
            return
        # "on yellow", "on a light grey": a colour not followed by a shape is
        # what everything stands on.
        if (
            self.on
            and not self._pending_shape_attrs()
            and following not in _SIZES
            and (following is None or _shape_of(following) is None)
        ):
            self._set_background(colour)
            self.on = False
            return
        self._set_once("colour", colour)

    def _background_word(self) -> None:
        if self.colour is not None and not self._pending_shape_attrs():
            self._set_background(self.colour)  # "a yellow background" as a phrase start
            self.colour = None
            self.on = False
            return
        # "background: yellow", "background is dark blue"
        word = self._next()
        if word is None:
            raise _NotUnderstood
        modifier: str | None = None
        if word in MODIFIERS:
            modifier, word = word, self._next() or ""
        name = canonical_colour(word)
        if name is None:
            raise _NotUnderstood
        self._set_background((name, modifier))

    def _set_background(self, colour: tuple[str, str | None]) -> None:
        if self.background is not None and self.background != colour:
            raise _NotUnderstood  # two different backgrounds
        self.background = colour

    def _shape(self, kind: ShapeKind, *, small: bool) -> None:
        size = self.size if self.size is not None else ("small" if small else "")
        name, modifier = self.colour if self.colour is not None else ("", None)
        group = GroupSpec(
            kind=kind,
            count=self.count or 1,
            colour=resolve(name, modifier) if name else (0, 0, 0),
            colour_name=f"{modifier} {name}" if modifier else name,
            size_word=size,
            horizontal=self.place[0],
            vertical=self.place[1],
        )
        if self.on:
            if not self.groups:
                raise _NotUnderstood  # "on a square" with nothing on it
            # "a red circle on a blue square": the new group is the base the
            # previous one rests on, so link the previous one to it.
            top = self.groups[-1]
            self.groups[-1] = attrs.evolve(top, rests_on=len(self.groups))
            self.on = False
        self.groups.append(group)
        self.count = self.size = self.colour = None
        self.place = ("", "")

    def _position(self, word: str) -> None:
        axis, value = _POSITIONS[word]
        horizontal, vertical = "", ""
        if axis == "h":
            horizontal = value
        elif axis == "v":
            vertical = value
        else:
            horizontal = vertical = "center"
        # "top left", "upper right corner", "left side": a second position word
        # may follow; position fillers are skipped only here so that "half" or
        # "corner" elsewhere still makes the prompt abstract.
        while self.pos < len(self.tokens) and self.tokens[self.pos] in _POSITION_FILLER:
            self.pos += 1
        following = self._peek()
        if following in _POSITIONS:
            other_axis, other = _POSITIONS[following]
            if other_axis == "h" and not horizontal:
                horizontal = other
                self._next()
            elif other_axis == "v" and not vertical:
                vertical = other
                self._next()
            while self.pos < len(self.tokens) and self.tokens[self.pos] in _POSITION_FILLER:
                self.pos += 1
        # After a shape the position belongs to it ("a circle on the left");
        # before one, to the shape that follows ("on the left, a red circle").
        if self.groups and not self._pending() and not _has_place(self.groups[-1]):
            self.groups[-1] = attrs.evolve(
                self.groups[-1], horizontal=horizontal, vertical=vertical
            )
        elif self.place == ("", ""):
            self.place = (horizontal, vertical)
        else:
            raise _NotUnderstood

    def _pending(self) -> bool:
        return self._pending_shape_attrs() or self.colour is not None

    # -- result --------------------------------------------------------

    def scene(self) -> Scene:
        """Lay the understood groups out and pick colours that were not given."""
        groups = self.groups
        if self.background is not None:
            bg_name, bg_modifier = self.background
            background = resolve(bg_name, bg_modifier)
            background_name = f"{bg_modifier} {bg_name}" if bg_modifier else bg_name
        else:
            background_name = _DEFAULT_BACKGROUND
            # A white shape on the default white would vanish: when every
            # coloured shape is very light, default to a black background.
            lights = [luminance(g.colour) > 0.8 for g in groups if g.colour_name]
            if lights and all(lights):
                background_name = "black"
            background = resolve(background_name)
        # Uncoloured shapes get black, or white on a dark background.
        default = "white" if luminance(background) < 0.35 else "black"
        groups = [
            g if g.colour_name else attrs.evolve(g, colour=resolve(default), colour_name=default)
            for g in groups
        ]
        return Scene(
            background=background,
            background_name=background_name,
            shapes=layout(groups),
        )


def _is_plural(word: str) -> bool:
    return word in _PLURALS or (word.endswith("s") and word[:-1] in SHAPES)


def _shape_of(word: str) -> ShapeKind | None:
    singular = _PLURALS.get(word)
    if singular is None:
        singular = word[:-1] if word.endswith("s") and word[:-1] in SHAPES else word
    return SHAPES.get(singular)


def _has_place(group: GroupSpec) -> bool:
    return bool(group.horizontal or group.vertical)
