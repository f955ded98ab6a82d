"""Rendering scenes: simple scenes as asked, abstract ones deterministic and varied."""

from __future__ import annotations

import concurrent.futures
import multiprocessing as mp
import os

import pytest
from PIL import Image, ImageChops, ImageStat

from imagestream_procedural._art import MAX_SIDE, MIN_SIDE, parse_prompt, render
from imagestream_procedural._palette import COLOURS, RGB


def _close(pixel: object, colour: RGB, tolerance: int = 12) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(int(a) - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


def _mean_difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel, 0..255."""
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


def _corners(image: Image.Image) -> list[object]:
    w, h = image.size
    return [image.getpixel(p) for p in ((0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1))]


def test_red_circle() -> None:
    image = render(parse_prompt("a simple red circle"), 64, 64, seed=1)
    assert image.mode == "RGB"
    assert image.size == (64, 64)
    assert _close(image.getpixel((32, 32)), COLOURS["red"])
    assert all(_close(c, COLOURS["white"], 2) for c in _corners(image))


def test_blue_square_on_yellow() -> None:
    image = render(parse_prompt("a blue square on yellow"), 64, 64, seed=1)
    assert _close(image.getpixel((32, 32)), COLOURS["blue"])
    assert all(_close(c, COLOURS["yellow"], 2) for c in _corners(image))


def test_edges_are_antialiased() -> None:
    image = render(parse_prompt("a black circle"), 64, 64, seed=1)
    # A hard-edged circle only has the two colours; a smooth one has ramps.
    assert len(image.getcolors(64 * 64) or []) > 10


def test_positions_land_where_asked() -> None:
    image = render(parse_prompt("a green circle on the left"), 64, 64, seed=1)
    assert _close(image.getpixel((16, 32)), COLOURS["green"])
    assert _close(image.getpixel((48, 32)), COLOURS["white"], 2)


def test_stacked_shapes() -> None:
    image = render(parse_prompt("a red circle on a blue square"), 96, 96, seed=1)
    assert _close(image.getpixel((48, 48)), COLOURS["red"])
    assert _close(image.getpixel((48, 28)), COLOURS["blue"])  # square shows around the circle


@pytest.mark.parametrize("size", [(64, 32), (32, 64), (16, 16), (MAX_SIDE, MIN_SIDE)])
def test_any_shape_of_canvas(size: tuple[int, int]) -> None:
    for prompt in ("a red circle", "a lighthouse at dusk"):
        image = render(parse_prompt(prompt), *size, seed=3)
        assert image.size == size
        assert image.mode == "RGB"


def test_simple_scene_on_wide_canvas_keeps_centre() -> None:
    image = render(parse_prompt("a red circle"), 128, 48, seed=1)
    assert _close(image.getpixel((64, 24)), COLOURS["red"])
    assert all(_close(c, COLOURS["white"], 2) for c in _corners(image))


def test_same_inputs_same_pixels() -> None:
    for prompt in ("a simple red circle", "a lighthouse at dusk", "three pink hearts"):
        a = render(parse_prompt(prompt), 64, 64, seed=5)
        b = render(parse_prompt(prompt), 64, 64, seed=5)
        assert a.tobytes() == b.tobytes()


def test_a_picture_drawn_again_at_a_size_seen_before_is_the_same() -> None:
    # The vignette's mask is kept per size and tone: a picture drawn with the
    # kept mask (after others of both tones) equals one drawn with a new one.
    from imagestream_procedural._abstract import _kept_mask

    scene = parse_prompt("a lighthouse at dusk")
    _kept_mask.cache_clear()
    first = render(scene, 96, 64, seed=3).tobytes()
    for seed in range(4, 10):
        render(parse_prompt("a bright meadow" if seed % 2 else "a dark storm"), 96, 64, seed)
    assert _kept_mask.cache_info().hits > 0
    assert render(scene, 96, 64, seed=3).tobytes() == first


def test_pictures_drawn_at_once_in_many_threads_are_each_their_own() -> None:
    # Every picture's glow and light spots are made by a shared pool of
    # helper threads: pictures drawn at once must not get each other's layers.
    jobs = [(parse_prompt(p), s) for p in ("a lighthouse at dusk", "neon rain") for s in range(4)]
    alone = [render(scene, 80, 48, seed).tobytes() for scene, seed in jobs]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda job: render(job[0], 80, 48, job[1]).tobytes(), jobs))
    assert together == alone and len(set(alone)) == len(alone)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_process_forked_after_drawing_draws_too() -> None:
    # The parent's helper thread is not in a forked child: the child must
    # make its own, not wait for one that is not there.
    expected = _draw_lighthouse()
    context = mp.get_context("fork")
    reader, writer = context.Pipe(duplex=False)
    child = context.Process(target=lambda: writer.send_bytes(_draw_lighthouse()))
    child.start()
    writer.close()
    try:
        assert reader.poll(30), "the forked process never finished its picture"
        assert reader.recv_bytes() == expected
    finally:
        child.kill()
        child.join()


def _draw_lighthouse() -> bytes:
    return render(parse_prompt("a lighthouse at dusk"), 64, 64, seed=9).tobytes()


def test_seed_changes_abstract_art() -> None:
    scene = parse_prompt("a lighthouse at dusk")
    a = render(scene, 64, 64, seed=1)
    b = render(scene, 64, 64, seed=2)
    assert _mean_difference(a, b) > 5


def test_seed_nudges_simple_scenes_but_keeps_what_was_asked() -> None:
    """n=3 of "a blue square on yellow" gives three takes: same colours, shapes nudged."""
    scene = parse_prompt("a blue square on yellow")
    one, again, other = (render(scene, 64, 64, seed=seed) for seed in (1, 1, 2))
    assert one.tobytes() == again.tobytes()
    assert one.tobytes() != other.tobytes()
    assert 0 < _mean_difference(one, other) < 20  # a nudge, not another picture

    def main_colours(picture: Image.Image) -> set[object]:
        counted = sorted(picture.getcolors(64 * 64) or [], key=lambda pair: pair[0])
        return {colour for _, colour in counted[-2:]}  # the background and the square

    assert main_colours(one) == main_colours(other)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("a lighthouse at dusk", "a bowl of fruit"),
        ("quantum physics", "hello world"),
        ("a cat", "a dog"),
    ],
)
def test_different_prompts_look_different(first: str, second: str) -> None:
    a = render(parse_prompt(first), 64, 64, seed=0)
    b = render(parse_prompt(second), 64, 64, seed=0)
    assert _mean_difference(a, b) > 15


def test_mood_words_colour_the_picture() -> None:
    def mean_rgb(prompt: str) -> list[float]:
        return ImageStat.Stat(render(parse_prompt(prompt), 64, 64, seed=0)).mean

    forest = mean_rgb("a forest in spring")
    assert forest[1] > forest[0]  # green leads
    assert forest[1] > forest[2]
    ocean = mean_rgb("the deep ocean")
    assert ocean[2] > ocean[0]  # more blue than red


@pytest.mark.parametrize(
    ("width", "height"),
    [(15, 64), (64, 15), (0, 64), (-1, 64), (MAX_SIDE + 1, 64), (64, 10_000)],
)
def test_bad_sizes_raise(width: int, height: int) -> None:
    with pytest.raises(ValueError, match="between 16 and 4096"):
        render(parse_prompt("a red circle"), width, height, seed=0)


def test_non_integer_size_raises() -> None:
    with pytest.raises(ValueError, match="integer"):
        render(parse_prompt("a red circle"), 64.0, 64, seed=0)  # type: ignore[arg-type]
