"""Words that suggest colours, so abstract pictures still echo the prompt.

"A lighthouse at dusk" cannot be drawn from shapes, but "dusk" says orange
and violet on a dark sky; an abstract picture in those colours is recognisably
about the prompt. Colour words ("a red dragon") count too, see :func:`hints`.
"""

from __future__ import annotations

from typing import Final, Literal

import attrs

from ._palette import canonical_colour

Tone = Literal["dark", "light", ""]


@attrs.frozen
class Mood:
    """Colour names a word evokes, and whether it reads as dark or light."""

    colours: tuple[str, ...]
    tone: Tone = ""


def _mood(colours: str, tone: Tone = "") -> Mood:
    return Mood(tuple(colours.split()), tone)


_NIGHT: Final = _mood("navy indigo violet", "dark")
_DUSK: Final = _mood("orange violet navy", "dark")
_DAWN: Final = _mood("gold pink cyan", "light")
_SEA: Final = _mood("blue teal cyan")
_GREEN: Final = _mood("green lime olive")
_FIRE: Final = _mood("red orange yellow", "dark")
_SNOW: Final = _mood("white cyan lavender", "light")
_SAND: Final = _mood("gold orange brown")
_BLOOM: Final = _mood("pink magenta red")
_NEON: Final = _mood("magenta cyan violet", "dark")
_SUN: Final = _mood("yellow orange gold")
_STORM: Final = _mood("grey navy indigo", "dark")
_STONE: Final = _mood("grey blue lavender")

MOODS: Final[dict[str, Mood]] = {
    "dusk": _DUSK, "twilight": _DUSK, "evening": _DUSK, "sunset": _mood("orange red purple"),
    "dawn": _DAWN, "sunrise": _DAWN, "morning": _DAWN,
    "night": _NIGHT, "midnight": _NIGHT, "space": _NIGHT, "galaxy": _NIGHT, "moon": _NIGHT,
    "stars": _NIGHT, "dark": _NIGHT,
    "ocean": _SEA, "sea": _SEA, "water": _SEA, "wave": _SEA, "waves": _SEA, "river": _SEA,
    "lake": _SEA, "rain": _SEA, "beach": _mood("cyan gold blue", "light"),
    "forest": _GREEN, "tree": _GREEN, "trees": _GREEN, "jungle": _GREEN, "leaf": _GREEN,
    "leaves": _GREEN, "grass": _GREEN, "garden": _GREEN, "spring": _GREEN,
    "fire": _FIRE, "flame": _FIRE, "flames": _FIRE, "lava": _FIRE, "volcano": _FIRE,
    "dragon": _FIRE,
    "snow": _SNOW, "ice": _SNOW, "winter": _SNOW, "frost": _SNOW, "cloud": _SNOW,
    "clouds": _SNOW,
    "desert": _SAND, "sand": _SAND, "dune": _SAND, "autumn": _SAND, "fall": _SAND,
    "rose": _BLOOM, "roses": _BLOOM, "love": _BLOOM, "flower": _BLOOM, "flowers": _BLOOM,
    "blossom": _BLOOM, "cherry": _BLOOM,
    "city": _NEON, "neon": _NEON, "cyberpunk": _NEON,
    "sun": _SUN, "summer": _SUN, "sunny": _SUN,
    "storm": _STORM, "thunder": _STORM, "fog": _STORM,
    "mountain": _STONE, "mountains": _STONE, "castle": _STONE, "rock": _STONE,
}  # fmt: skip
"""Evocative words and their moods; matched exactly against the prompt's words."""


def hints(words: tuple[str, ...]) -> tuple[list[str], Tone]:
    """Colour names suggested by ``words`` (in order, no repeats) and the first tone.

    An explicit colour word comes before the colours of a mood word at the same
    position, so "a blue fire" leads with blue.
    """
    colours: dict[str, None] = {}
    tone: Tone = ""
    for word in words:
        name = canonical_colour(word)
        if name is not None:
            colours.setdefault(name, None)
        mood = MOODS.get(word)
        if mood is not None:
            for colour in mood.colours:
                colours.setdefault(colour, None)
            tone = tone or mood.tone
    return list(colours), tone
