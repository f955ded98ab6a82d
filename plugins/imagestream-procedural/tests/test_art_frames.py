"""The sigma schedule and the preview frames that go from noise to the picture."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from PIL import Image, ImageChops, ImageStat

from imagestream_procedural._art import denoise_frames, parse_prompt, render, sigma_schedule


def _mean_difference(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


@pytest.fixture(scope="module")
def target() -> Image.Image:
    return render(parse_prompt("a lighthouse at dusk"), 64, 64, seed=9)


@pytest.mark.parametrize("steps", [1, 2, 3, 20, 50, 200])
def test_schedule_shape(steps: int) -> None:
    sigmas = sigma_schedule(steps)
    assert len(sigmas) == steps
    assert sigmas[0] == 14.6
    assert all(a > b for a, b in itertools.pairwise(sigmas))
    if steps > 1:
        assert sigmas[-1] == 0.03


def test_schedule_spends_most_steps_at_low_noise() -> None:
    sigmas = sigma_schedule(20)
    assert sum(s < 1.0 for s in sigmas) > sum(s > 5.0 for s in sigmas)


def test_schedule_custom_range() -> None:
    sigmas = sigma_schedule(5, sigma_max=2.0, sigma_min=0.5, rho=1.0)
    assert sigmas == pytest.approx([2.0, 1.625, 1.25, 0.875, 0.5])


@pytest.mark.parametrize("steps", [0, 201])
def test_schedule_rejects_steps(steps: int) -> None:
    with pytest.raises(ValueError, match="steps must be between 1 and 200"):
        sigma_schedule(steps)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sigma_min": 0.0},
        {"sigma_max": 0.01},
        {"rho": 0.0},
        {"sigma_max": float("inf")},
        {"sigma_min": float("nan")},
    ],
)
def test_schedule_rejects_sigmas(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="sigma_min < sigma_max"):
        sigma_schedule(5, **kwargs)


def test_frames_follow_the_schedule(target: Image.Image) -> None:
    frames = list(denoise_frames(target, seed=1, steps=20))
    assert [index for index, _, _ in frames] == list(range(20))
    assert [sigma for _, sigma, _ in frames] == sigma_schedule(20)
    for _, _, frame in frames:
        assert frame.size == target.size
        assert frame.mode == "RGB"
        assert frame is not target


def test_frames_go_from_noise_to_the_picture(target: Image.Image) -> None:
    distances = [_mean_difference(f, target) for _, _, f in denoise_frames(target, 1, 20)]
    assert distances[0] > 40  # the first frame is mostly noise
    assert distances[-1] == 0  # the last is the picture itself
    assert distances[-2] < 3  # and the one before nearly so
    assert all(a > b for a, b in itertools.pairwise(distances))


def test_midway_frame_shows_the_picture(target: Image.Image) -> None:
    frames = list(denoise_frames(target, 1, 20))
    noise_only = list(denoise_frames(Image.new("RGB", target.size), 1, 20))
    # Halfway the picture is visible: frames of different pictures differ.
    assert _mean_difference(frames[10][2], noise_only[10][2]) > 15


def test_frames_are_deterministic_and_seeded(target: Image.Image) -> None:
    def first(seed: int) -> bytes:
        return next(denoise_frames(target, seed, 10))[2].tobytes()

    assert first(1) == first(1)
    assert first(1) != first(2)


def test_single_step_is_the_picture(target: Image.Image) -> None:
    [(index, sigma, frame)] = list(denoise_frames(target, 0, 1))
    assert (index, sigma) == (0, 14.6)
    assert frame.tobytes() == target.tobytes()


def test_frames_are_lazy(target: Image.Image) -> None:
    frames = denoise_frames(target, 0, 200)
    assert isinstance(frames, Iterator)
    index, _, _ = next(frames)
    assert index == 0


def test_target_is_snapshotted() -> None:
    picture = Image.new("RGB", (32, 32), (10, 200, 30))
    frames = denoise_frames(picture, 0, 3)
    picture.paste((0, 0, 0), (0, 0, 32, 32))
    *_, (_, _, last) = frames
    assert last.getpixel((5, 5)) == (10, 200, 30)


def test_other_modes_are_converted() -> None:
    picture = Image.new("RGBA", (32, 32), (10, 200, 30, 255))
    *_, (_, _, last) = denoise_frames(picture, 0, 4)
    assert last.mode == "RGB"
    assert last.getpixel((0, 0)) == (10, 200, 30)


@pytest.mark.parametrize("steps", [0, -1, 201])
def test_bad_steps_raise_immediately(target: Image.Image, steps: int) -> None:
    with pytest.raises(ValueError, match="steps"):
        denoise_frames(target, 0, steps)  # raises before any iteration


def test_bad_target_size_raises() -> None:
    with pytest.raises(ValueError, match="between 16 and 4096"):
        denoise_frames(Image.new("RGB", (8, 64)), 0, 5)
