"""The structured options: characters, character references and vibe transfer.

Each reader takes the request's :class:`~imagestream.provider.Options` and
returns frozen records the body builder can trust. Values come from Python
or, as JSON, from the command line, and are read with the kit's readers, so
they refuse what every provider refuses in the same words. Input images are
read and checked here too, so that a missing file or a text that is not an
image is refused before any request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs

from imagestream.provider import (
    InputImage,
    Options,
    load_input_bytes,
    load_input_image,
    read_choice,
    read_list,
    read_mapping,
    read_number,
    read_text,
)

from ._errors import PROVIDER
from ._models import ModelSpec

__all__ = [
    "MAX_CHARACTERS",
    "MAX_INPUT_BYTES",
    "MAX_VIBES",
    "Character",
    "CharacterReference",
    "VibeReference",
    "load_image",
    "read_character_references",
    "read_characters",
    "read_controlnet",
    "verbatim",
]

MAX_CHARACTERS: Final = 6
"""Characters the web app allows in one image."""

MAX_VIBES: Final = 16
"""Vibe-transfer references in one request."""

MAX_INPUT_BYTES: Final = 48 * 2**20
"""Largest input image or vibe accepted (decoded bytes): a 4K PNG is well below it."""

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


def load_image(value: object, what: str) -> InputImage:
    """One input image (path, bytes, base64 or ``data:`` URL), read and checked once."""
    return load_input_image(value, what, provider=PROVIDER, max_bytes=MAX_INPUT_BYTES)


def _vibe(value: object, what: str) -> str:
    """An encoded vibe as base64: opaque bytes, so without the image check of :func:`load_image`."""
    data, _ = load_input_bytes(value, what, provider=PROVIDER, max_bytes=MAX_INPUT_BYTES)
    return data.b64


def _items(value: object, name: str) -> Sequence[Any]:
    """A list option (not a string); absent is empty."""
    return () if value is None else read_list(value, name, provider=PROVIDER)


def verbatim(value: object, name: str) -> str:
    """Prompt text exactly as given: spaces are sent as the web app sends them."""
    return read_text(value, name, provider=PROVIDER, empty=True, strip=False)


def _fraction(value: object, name: str) -> float:
    """A number in 0..1 (strengths, fidelity, positions)."""
    return read_number(value, name, provider=PROVIDER, low=0.0, high=1.0)


def _center(value: object, name: str, options: Options) -> tuple[float, float]:
    """A position: ``{x, y}``, ``[x, y]`` or a grid cell."""
    # The web app places characters on a 5x5 grid named A1..E5 (column, row).
    if isinstance(value, str):
        cell = value.strip().upper()
        if len(cell) == 2 and cell[0] in _GRID_COLUMNS and cell[1] in "12345":
            return 0.1 + 0.2 * _GRID_COLUMNS.index(cell[0]), 0.1 + 0.2 * (int(cell[1]) - 1)
        raise options.unreadable(f"{name} {value!r} is not a grid cell A1..E5 nor {{x, y}}")
    if isinstance(value, Mapping):
        point = read_mapping(value, name, provider=PROVIDER, keys={"x", "y"})
        if "x" not in point or "y" not in point:
            raise options.unreadable(f"{name} needs both x and y")
        pair: Sequence[Any] = (point["x"], point["y"])
    elif isinstance(value, Sequence) and len(value) == 2:
        pair = value
    else:
        raise options.unreadable(f"{name} must be {{x, y}}, [x, y] or a grid cell like 'C3'")
    return _fraction(pair[0], f"{name}.x"), _fraction(pair[1], f"{name}.y")


def read_characters(options: Options, model: ModelSpec) -> tuple[Character, ...]:
    """The ``characters`` option: prompts (strings) or ``{prompt, uc, center}`` objects."""
    entries = _items(options.raw("characters"), "characters")
    if not entries:
        return ()
    if not model.is_v4:
        raise options.refuse(f"characters need a V4 or V4.5 model; {model.id} has none", hint="use nai-diffusion-4-5-full")
    if len(entries) > MAX_CHARACTERS:
        raise options.refuse(f"at most {MAX_CHARACTERS} characters, not {len(entries)}")
    characters = []
    for position, item in enumerate(entries):
        name = f"characters[{position}]"
        entry = read_mapping({"prompt": item} if isinstance(item, str) else item, name, provider=PROVIDER, keys={"prompt", "uc", "center"})
        prompt = verbatim(entry.get("prompt"), f"{name}.prompt")
        if not prompt.strip():  # refused, like an empty main prompt
            raise options.refuse(f"{name}.prompt is empty")
        center = entry.get("center")
        characters.append(
            Character(
                prompt=prompt,
                uc=verbatim(entry.get("uc", ""), f"{name}.uc"),
                center=None if center is None else _center(center, f"{name}.center", options),
            )
        )
    return tuple(characters)


def read_character_references(options: Options, model: ModelSpec) -> tuple[CharacterReference, ...]:
    """The ``character_references`` option: ``{image, type, strength, fidelity}`` objects."""
    entries = _items(options.raw("character_references"), "character_references")
    if not entries:
        return ()
    if model.family != "v4.5":
        raise options.refuse(f"character_references need a V4.5 model; {model.id} does not take them")
    references = []
    for position, item in enumerate(entries):
        name = f"character_references[{position}]"
        entry = read_mapping(item, name, provider=PROVIDER, keys={"image", "type", "strength", "fidelity"})
        if "image" not in entry:
            raise options.unreadable(f"{name} needs an image")
        references.append(
            CharacterReference(
                image=load_image(entry["image"], f"{name}.image"),
                kind=read_choice(entry.get("type", "character&style"), f"{name}.type", _REFERENCE_TYPES, provider=PROVIDER),
                strength=_fraction(entry.get("strength", 1.0), f"{name}.strength"),
                fidelity=_fraction(entry.get("fidelity", 1.0), f"{name}.fidelity"),
            )
        )
    return tuple(references)


def read_controlnet(options: Options, model: ModelSpec) -> tuple[tuple[VibeReference, ...], float]:
    """The ``controlnet`` option: its references and its overall strength."""
    spec = options.mapping("controlnet", keys={"references", "strength"}) or {}
    strength = _fraction(spec.get("strength", 1.0), "controlnet.strength")
    entries = _items(spec.get("references"), "controlnet.references")
    if len(entries) > MAX_VIBES:
        raise options.refuse(f"at most {MAX_VIBES} controlnet references, not {len(entries)}")
    # V4 and later take vibes pre-encoded by NovelAI's encode-vibe endpoint;
    # V3 takes the reference images themselves.
    key = "vibe" if model.is_v4 else "image"
    vibes = []
    for position, item in enumerate(entries):
        name = f"controlnet.references[{position}]"
        entry = read_mapping(item, name, provider=PROVIDER, keys={"vibe", "image", "strength", "information_extracted"})
        if key not in entry:
            other = "an encoded vibe (vibe=...)" if model.is_v4 else "an image (image=...)"
            raise options.refuse(f"{name}: {model.id} takes {other}")
        vibes.append(
            VibeReference(
                data=_vibe(entry[key], name) if model.is_v4 else load_image(entry[key], name).b64,
                strength=_fraction(entry.get("strength", 0.6), f"{name}.strength"),
                information_extracted=_fraction(entry.get("information_extracted", 1.0), f"{name}.information_extracted"),
            )
        )
    return tuple(vibes), strength
