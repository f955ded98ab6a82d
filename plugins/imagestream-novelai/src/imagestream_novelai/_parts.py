"""The structured options: characters, character references and vibe transfer.

Each reader takes the option's raw value (from Python or, as JSON, from the
command line) and returns frozen records the body builder can trust. Input
images are read and checked here too, so that a missing file or a text that
is not an image is refused before any request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs

from ._checks import choice, items, mapping, number, refused, text, unreadable
from ._inputs import InputImage, load_base64, load_image
from ._models import ModelSpec

__all__ = [
    "MAX_CHARACTERS",
    "MAX_VIBES",
    "Character",
    "CharacterReference",
    "VibeReference",
    "read_character_references",
    "read_characters",
    "read_controlnet",
]

MAX_CHARACTERS: Final = 6
"""Characters the web app allows in one image."""

MAX_VIBES: Final = 16
"""Vibe-transfer references in one request."""

_REFERENCE_TYPES: Final = ("character&style", "character", "style")
_GRID_COLUMNS: Final = "ABCDE"


@attrs.frozen
class Character:
    """One character prompt (V4 and V4.5).

    Attributes:
        prompt: What this character looks like.
        uc: What to avoid for this character.
        center: ``(x, y)`` in 0..1, or ``None`` to let the model place it.
    """

    prompt: str
    uc: str = ""
    center: tuple[float, float] | None = None


@attrs.frozen
class CharacterReference:
    """One character reference image (V4.5 "director reference").

    Attributes:
        image: The reference picture.
        kind: ``"character&style"``, ``"character"`` or ``"style"``.
        strength: How strongly the reference is followed, 0..1.
        fidelity: How closely it is copied, 0..1.
    """

    image: InputImage
    kind: str = "character&style"
    strength: float = 1.0
    fidelity: float = 1.0


@attrs.frozen
class VibeReference:
    """One vibe-transfer reference: an encoded vibe (V4+) or an image (V3), as base64.

    Attributes:
        data: Base64 of the vibe or image.
        strength: Reference strength, 0..1.
        information_extracted: How much is taken from it, 0..1 (V3 only).
    """

    data: str = attrs.field(repr=lambda value: f"<{len(value)} base64 chars>")
    strength: float = 0.6
    information_extracted: float = 1.0


def _center(value: object, name: str) -> tuple[float, float]:
    """A position: ``{x, y}``, ``[x, y]`` or a grid cell."""
    # The web app places characters on a 5x5 grid named A1..E5 (column, row).
    if isinstance(value, str):
        cell = value.strip().upper()
        if len(cell) == 2 and cell[0] in _GRID_COLUMNS and cell[1] in "12345":
            return 0.1 + 0.2 * _GRID_COLUMNS.index(cell[0]), 0.1 + 0.2 * (int(cell[1]) - 1)
        raise unreadable(f"{name} {value!r} is not a grid cell A1..E5 nor {{x, y}}")
    if isinstance(value, Mapping):
        point = mapping(value, name, frozenset({"x", "y"}))
        if "x" not in point or "y" not in point:
            raise unreadable(f"{name} needs both x and y")
        pair: Sequence[Any] = (point["x"], point["y"])
    elif isinstance(value, Sequence) and len(value) == 2:
        pair = value
    else:
        raise unreadable(f"{name} must be {{x, y}}, [x, y] or a grid cell like 'C3'")
    return number(pair[0], f"{name}.x", 0.0, 1.0), number(pair[1], f"{name}.y", 0.0, 1.0)


def read_characters(value: object, model: ModelSpec) -> tuple[Character, ...]:
    """The ``characters`` option: prompts (strings) or ``{prompt, uc, center}`` objects."""
    entries = items(value, "characters")
    if not entries:
        return ()
    if not model.is_v4:
        raise refused(f"characters need a V4 or V4.5 model; {model.id} has none", hint="use nai-diffusion-4-5-full")
    if len(entries) > MAX_CHARACTERS:
        raise refused(f"at most {MAX_CHARACTERS} characters, not {len(entries)}")
    characters = []
    for position, item in enumerate(entries):
        name = f"characters[{position}]"
        if isinstance(item, str):
            item = {"prompt": item}
        entry = mapping(item, name, frozenset({"prompt", "uc", "center"}))
        prompt = text(entry.get("prompt"), f"{name}.prompt")
        if not prompt.strip():
            raise refused(f"{name}.prompt is empty")
        center = entry.get("center")
        characters.append(
            Character(
                prompt=prompt,
                uc=text(entry.get("uc", ""), f"{name}.uc"),
                center=None if center is None else _center(center, f"{name}.center"),
            )
        )
    return tuple(characters)


def read_character_references(value: object, model: ModelSpec) -> tuple[CharacterReference, ...]:
    """The ``character_references`` option: ``{image, type, strength, fidelity}`` objects."""
    entries = items(value, "character_references")
    if not entries:
        return ()
    if model.family != "v4.5":
        raise refused(f"character_references need a V4.5 model; {model.id} does not take them")
    references = []
    for position, item in enumerate(entries):
        name = f"character_references[{position}]"
        entry = mapping(item, name, frozenset({"image", "type", "strength", "fidelity"}))
        if "image" not in entry:
            raise unreadable(f"{name} needs an image")
        references.append(
            CharacterReference(
                image=load_image(entry["image"], f"{name}.image"),
                kind=choice(entry.get("type", "character&style"), f"{name}.type", _REFERENCE_TYPES),
                strength=number(entry.get("strength", 1.0), f"{name}.strength", 0.0, 1.0),
                fidelity=number(entry.get("fidelity", 1.0), f"{name}.fidelity", 0.0, 1.0),
            )
        )
    return tuple(references)


def read_controlnet(value: object, model: ModelSpec) -> tuple[tuple[VibeReference, ...], float]:
    """The ``controlnet`` option: its references and its overall strength."""
    spec = mapping(value, "controlnet", frozenset({"references", "strength"}))
    strength = number(spec.get("strength", 1.0), "controlnet.strength", 0.0, 1.0)
    entries = items(spec.get("references", []), "controlnet.references")
    if len(entries) > MAX_VIBES:
        raise refused(f"at most {MAX_VIBES} controlnet references, not {len(entries)}")
    # V4 and later take vibes pre-encoded by NovelAI's encode-vibe endpoint;
    # V3 takes the reference images themselves.
    key = "vibe" if model.is_v4 else "image"
    vibes = []
    for position, item in enumerate(entries):
        name = f"controlnet.references[{position}]"
        entry = mapping(item, name, frozenset({"vibe", "image", "strength", "information_extracted"}))
        if key not in entry:
            other = "an encoded vibe (vibe=...)" if model.is_v4 else "an image (image=...)"
            raise refused(f"{name}: {model.id} takes {other}")
        data = load_base64(entry[key], name) if model.is_v4 else load_image(entry[key], name).b64
        vibes.append(
            VibeReference(
                data=data,
                strength=number(entry.get("strength", 0.6), f"{name}.strength", 0.0, 1.0),
                information_extracted=number(
                    entry.get("information_extracted", 1.0), f"{name}.information_extracted", 0.0, 1.0
                ),
            )
        )
    return tuple(vibes), strength
