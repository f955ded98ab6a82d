"""Reading prompts as scenes: what is understood, and what falls back to abstract."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagestream_procedural._art import Scene, parse_prompt
from imagestream_procedural._palette import COLOURS, resolve


@pytest.mark.parametrize(
    ("prompt", "description"),
    [
        ("a simple red circle", "a red circle on a white background"),
        ("A blue square on yellow.", "a blue square on a yellow background"),
        ("two green triangles", "two green triangles on a white background"),
        (
            "dark blue star on light grey background",
            "a dark blue star on a light grey background",
        ),
        ("3 squares", "three black squares on a white background"),
        ("a small red circle on the left", "a small red circle on the left, on a white background"),
        ("a red circle on a blue square", "a red circle on a blue square, on a white background"),
        ("an orange oval, purple background", "an orange ellipse on a purple background"),
        ("a white star", "a white star on a black background"),
        ("a navy background", "a navy background"),
        ("a yellow heart on a dark background", "a yellow heart on a dark grey background"),
        ("light-blue diamonds", "three light blue diamonds on a white background"),
        (
            "the cyan ring in the top-left corner",
            "a cyan ring at the top left, on a white background",
        ),
        ("a lighthouse at dusk", "abstract composition from 'lighthouse', 'dusk'"),
        ("", "abstract composition"),
    ],
)
def test_describe(prompt: str, description: str) -> None:
    assert parse_prompt(prompt).describe() == description


def test_red_circle_fields() -> None:
    scene = parse_prompt("a simple red circle")
    assert not scene.abstract
    assert scene.background == COLOURS["white"]
    [shape] = scene.shapes
    assert shape.kind == "circle"
    assert shape.colour == COLOURS["red"]
    assert (shape.x, shape.y) == (0.5, 0.5)
    assert 0.3 < shape.size < 0.9


def test_background_after_on() -> None:
    scene = parse_prompt("a blue square on yellow")
    assert scene.background == COLOURS["yellow"]
    assert [s.kind for s in scene.shapes] == ["square"]
    assert scene.shapes[0].colour == COLOURS["blue"]


def test_counts_make_separate_non_overlapping_shapes() -> None:
    scene = parse_prompt("two green triangles")
    assert [s.kind for s in scene.shapes] == ["triangle", "triangle"]
    assert all(s.colour == COLOURS["green"] for s in scene.shapes)
    left, right = scene.shapes
    assert right.x - left.x >= (left.size + right.size) / 2


def test_modifiers() -> None:
    scene = parse_prompt("dark blue star on light grey background")
    assert scene.shapes[0].colour == resolve("blue", "dark")
    assert scene.shapes[0].colour_name == "dark blue"
    assert scene.background == resolve("grey", "light")
    assert scene.background_name == "light grey"


def test_abstract_keeps_the_meaningful_words() -> None:
    scene = parse_prompt("a lighthouse at dusk")
    assert scene.abstract
    assert scene.words == ("lighthouse", "dusk")
    assert scene.shapes == ()


@pytest.mark.parametrize(
    "prompt",
    [
        "a red circle and a dog",  # one unknown word spoils the literal reading
        "red",  # a colour with nothing to colour
        "two red",
        "a circle at dusk",
        "a red and blue circle",
        "1000 circles",
        "a beam of light",
        "a circle on",
    ],
)
def test_not_understood_is_abstract(prompt: str) -> None:
    assert parse_prompt(prompt).abstract


def test_case_punctuation_and_fillers_are_ignored() -> None:
    plain = parse_prompt("a red circle")
    assert parse_prompt("  A RED Circle!!!  ") == plain
    assert parse_prompt("Please draw a simple, plain red circle.") == plain
    assert parse_prompt("a picture of the red circle") == plain


def test_grey_spellings_agree() -> None:
    assert parse_prompt("a gray square") == parse_prompt("a grey square")


@pytest.mark.parametrize(
    ("prompt", "where"),
    [
        ("a circle on the left", (0.0, 0.5, 0.0, 1.0)),
        ("a circle on the right", (0.5, 1.0, 0.0, 1.0)),
        ("a circle at the top", (0.0, 1.0, 0.0, 0.5)),
        ("a circle at the bottom right", (0.5, 1.0, 0.5, 1.0)),
        ("upper left: a circle", (0.0, 0.5, 0.0, 0.5)),
        ("a circle in the center", (0.25, 0.75, 0.25, 0.75)),
    ],
)
def test_positions(prompt: str, where: tuple[float, float, float, float]) -> None:
    [shape] = parse_prompt(prompt).shapes
    x0, x1, y0, y1 = where
    assert x0 < shape.x < x1
    assert y0 < shape.y < y1


def test_sizes() -> None:
    def size(prompt: str) -> float:
        return parse_prompt(prompt).shapes[0].size

    assert size("a small star") < size("a star") < size("a big star")
    assert size("a tiny star") == size("a small star")
    assert size("a huge star") == size("a large star")


@pytest.mark.parametrize(
    ("noun", "kind"),
    [
        ("circle", "circle"),
        ("square", "square"),
        ("rectangle", "rectangle"),
        ("triangle", "triangle"),
        ("star", "star"),
        ("ellipse", "ellipse"),
        ("oval", "ellipse"),
        ("line", "line"),
        ("ring", "ring"),
        ("heart", "heart"),
        ("diamond", "diamond"),
        ("hexagon", "hexagon"),
    ],
)
def test_shape_nouns(noun: str, kind: str) -> None:
    assert [s.kind for s in parse_prompt(f"a pink {noun}").shapes] == [kind]
    assert [s.kind for s in parse_prompt(f"two pink {noun}s").shapes] == [kind, kind]


@pytest.mark.parametrize("colour", sorted(COLOURS))
def test_every_colour_word(colour: str) -> None:
    scene = parse_prompt(f"a {colour} square on a {colour} background")
    assert scene.background == COLOURS[colour]
    assert scene.shapes[0].colour == COLOURS[colour]


def test_stacked_shapes_draw_the_base_first() -> None:
    top, base = parse_prompt("a red circle on a blue square").shapes[::-1]
    assert (base.kind, top.kind) == ("square", "circle")
    assert (base.x, base.y) == (top.x, top.y)
    assert top.size < base.size


def test_several_groups_share_the_canvas() -> None:
    scene = parse_prompt("a red circle, a blue square and a green triangle")
    assert [s.kind for s in scene.shapes] == ["circle", "square", "triangle"]
    assert scene.shapes[0].x < scene.shapes[1].x  # read left to right
    centres = {(s.x, s.y) for s in scene.shapes}
    assert len(centres) == 3


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_any_text_parses(prompt: str) -> None:
    scene = parse_prompt(prompt)
    assert isinstance(scene, Scene)
    assert isinstance(scene.describe(), str)
    for shape in scene.shapes:
        assert 0 <= shape.x <= 1
        assert 0 <= shape.y <= 1
        assert 0 < shape.size <= 1


_VOCABULARY = [
    "a", "two", "3", "small", "big", "red", "dark", "light", "blue", "circle",
    "squares", "star", "on", "the", "left", "right", "top", "background",
    "yellow", "and", "with", "grey",
]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(_VOCABULARY), max_size=10))
def test_vocabulary_soup_parses(words: list[str]) -> None:
    # Any mix of known words either makes a scene or falls back; never raises.
    assert parse_prompt(" ".join(words)).describe()
