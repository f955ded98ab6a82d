"""Preview frames that go from noise to the finished picture, like a sampler's.

A diffusion sampler's intermediate previews show its current estimate of the
image: early on a blurred guess buried in noise, later a sharper, cleaner one.
These frames fake exactly that from the finished picture: for each step, the
picture blurred in proportion to the noise level still left after the step,
blended with one fixed field of seeded noise in proportion to the same level.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Final

from PIL import Image, ImageFilter

from ._limits import check_size, check_steps
from ._schedule import sigma_schedule

Frame = tuple[int, float, Image.Image]
"""``(step_index, sigma, frame)`` as yielded by :func:`denoise_frames`."""

_BLUR_PER_SIGMA: Final = 1.6
"""Blur radius in pixels per unit of sigma, on a 512-pixel canvas."""

_BLOTCH: Final = 8
"""Latent pixels are 8x8 image pixels: the noise gets blotches of that size."""

_NOISE_CONTRAST: Final = 1.5
"""Averaging two noise fields flattens them towards grey; this restores contrast."""

_NOISE_SIDE: Final = 1024
"""Largest side of the noise field before it is scaled up to the canvas."""


def denoise_frames(target: Image.Image, seed: int, steps: int) -> Iterator[Frame]:
    """Return a lazy iterator of ``steps`` frames ``(step_index, sigma, frame)``.

    ``step_index`` counts from 0 and ``sigma`` is the noise level the step
    starts from (see :func:`sigma_schedule`); ``frame`` is a new RGB image of
    the picture as it stands after the step. The first frame is mostly noise
    with a blurred hint of the picture, each later one is sharper and cleaner,
    and the last is a copy of ``target`` itself.

    Frames are made lazily, one per iteration, so a caller can send each one
    on before the next is computed. Arguments are checked immediately:
    :class:`ValueError` for ``steps`` outside 1..200 or a ``target`` whose
    sides are outside 16..4096 pixels.
    """
    check_steps(steps)
    check_size(*target.size)
    # Snapshot the target now: the caller may reuse the image while we iterate.
    picture = target.convert("RGB") if target.mode != "RGB" else target.copy()
    return _frames(picture, seed, sigma_schedule(steps))


def _frames(picture: Image.Image, seed: int, sigmas: list[float]) -> Iterator[Frame]:
    noise = _noise(seed, picture.size)
    scale = min(picture.size) / 512
    pyramid = _Pyramid(picture)
    for index, sigma in enumerate(sigmas):
        remaining = sigmas[index + 1] if index + 1 < len(sigmas) else 0.0
        if remaining == 0.0:
            yield index, sigma, picture.copy()
            continue
        estimate = pyramid.blurred(remaining * _BLUR_PER_SIGMA * scale)
        # A true variance-preserving mix, sigma / sqrt(1 + sigma**2), keeps the
        # picture invisible until the last third of the run; sigma / (1 + sigma)
        # lets it surface gradually, which is what a preview is for.
        weight = remaining / (1.0 + remaining)
        yield index, sigma, Image.blend(estimate, noise, weight)


class _Pyramid:
    """Blurred versions of the picture, made cheaply.

    A Gaussian blur in Pillow costs the same at any radius, so its cost is
    all in the pixel count: blurring a reduced copy by a proportionally
    smaller radius and scaling it back up looks the same and is up to a
    thousand times cheaper. Radii too small for that are faked by mixing the
    sharp picture with one fixed fine blur.
    """

    _FACTORS: Final = (32, 16, 8, 4, 2)
    _FINE: Final = 2.0
    """Radius of the fine blur; at least 1 pixel at half size, so never full size."""

    def __init__(self, picture: Image.Image) -> None:
        self.picture = picture
        self.levels: dict[int, Image.Image] = {}
        self.fine: Image.Image | None = None

    def blurred(self, radius: float) -> Image.Image:
        """The picture blurred by about ``radius`` pixels."""
        if radius <= 0:
            return self.picture
        if radius < self._FINE:
            # A narrow blur at full size costs as much as a wide one. Under the
            # noise, part sharp and part slightly soft looks the same as a
            # slight blur, and costs one blend.
            if self.fine is None:
                self.fine = self._reduced_blur(self._FINE)
            return Image.blend(self.picture, self.fine, radius / self._FINE)
        return self._reduced_blur(radius)

    def _reduced_blur(self, radius: float) -> Image.Image:
        side = min(self.picture.size)
        for factor in self._FACTORS:
            # Keep at least a pixel of blur at the reduced size, which hides
            # the blockiness scaling up would otherwise show.
            if radius / factor >= 1.0 and side // factor >= 8:
                small = self._level(factor).filter(ImageFilter.GaussianBlur(radius / factor))
                return small.resize(self.picture.size, Image.Resampling.BICUBIC)
        return self.picture.filter(ImageFilter.GaussianBlur(radius))

    def _level(self, factor: int) -> Image.Image:
        if factor not in self.levels:
            self.levels[factor] = self.picture.reduce(factor)
        return self.levels[factor]


def _noise(seed: int, size: tuple[int, int]) -> Image.Image:
    """One field of coloured noise: fine grain over latent-sized blotches.

    The field is made at most :data:`_NOISE_SIDE` pixels wide and scaled up
    without smoothing, so the grain stays crisp while a 4096-pixel canvas
    does not pay for 50 MB of random bytes.
    """
    width, height = size
    step = -(-max(width, height) // _NOISE_SIDE)
    field = (-(-width // step), -(-height // step))
    rng = random.Random(seed)
    grain = Image.frombytes("RGB", field, rng.randbytes(field[0] * field[1] * 3))
    blotch = max(1, _BLOTCH // step)
    small = (-(-field[0] // blotch), -(-field[1] // blotch))
    blotches = Image.frombytes("RGB", small, rng.randbytes(small[0] * small[1] * 3))
    blotches = blotches.resize(field, Image.Resampling.BICUBIC)
    lut = [min(255, max(0, round(128 + (v - 128) * _NOISE_CONTRAST))) for v in range(256)]
    noise = Image.blend(grain, blotches, 0.5).point(lut * 3)
    return noise if field == size else noise.resize(size, Image.Resampling.NEAREST)
