"""Preview frames that go from noise to the finished picture, like a sampler's.

A diffusion sampler's intermediate previews show its current estimate of the
image: early on a blurred guess buried in noise, later a sharper, cleaner one.
These frames fake exactly that from the finished picture: for each step, the
picture blurred in proportion to the noise level still left after the step,
blended with one fixed field of seeded noise in proportion to the same level.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Collection, Iterator
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


def denoise_frames(
    target: Image.Image, seed: int, steps: int, *, only: Collection[int] | None = None
) -> Iterator[Frame]:
    """Return a lazy iterator of ``steps`` frames ``(step_index, sigma, frame)``.

    ``step_index`` counts from 0 and ``sigma`` is the noise level the step
    starts from (see :func:`sigma_schedule`); ``frame`` is a new RGB image of
    the picture as it stands after the step. The first frame is mostly noise
    with a blurred hint of the picture, each later one is sharper and cleaner,
    and the last is a copy of ``target`` itself.

    Frames are made lazily, one per iteration, so a caller can send each one
    on before the next is computed; with ``only``, just the frames of those
    step indices are made and yielded. Arguments are checked immediately:
    :class:`ValueError` for ``steps`` outside 1..200 or a ``target`` whose
    sides are outside 16..4096 pixels.
    """
    check_steps(steps)
    check_size(*target.size)
    # Snapshot the target now: the caller may reuse the image while we iterate.
    picture = target.convert("RGB") if target.mode != "RGB" else target.copy()
    return _frames(picture, seed, sigma_schedule(steps), only)


def _frames(
    picture: Image.Image, seed: int, sigmas: list[float], only: Collection[int] | None
) -> Iterator[Frame]:
    noise = _noise(seed, picture.size)
    scale = min(picture.size) / 512
    pyramid = _Pyramid(picture)
    for index, sigma in enumerate(sigmas):
        if only is not None and index not in only:
            continue
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
    all in the pixel count: the picture is blurred at a ladder of radii (2,
    4, 8, ... pixels), each on a reduced copy by a proportionally smaller
    radius, scaled back up once. A radius between two rungs is a mix of the
    two (below 2 pixels, of the sharp picture and the first rung), which
    under the noise looks the same as that blur, and costs one blend.
    """

    _FACTORS: Final = (32, 16, 8, 4, 2)
    _FIRST: Final = 2.0
    """The first rung: at least 1 pixel of blur at half size, so never made at full size."""

    def __init__(self, picture: Image.Image) -> None:
        self.picture = picture
        self.rungs: dict[float, Image.Image] = {0.0: picture}

    def blurred(self, radius: float) -> Image.Image:
        """The picture blurred by about ``radius`` pixels."""
        if radius <= 0:
            return self.picture
        low = 0.0 if radius < self._FIRST else 2.0 ** math.floor(math.log2(radius))
        high = max(self._FIRST, 2 * low)
        return Image.blend(self._rung(low), self._rung(high), (radius - low) / (high - low))

    def _rung(self, radius: float) -> Image.Image:
        if radius not in self.rungs:
            self.rungs[radius] = self._reduced_blur(radius)
        return self.rungs[radius]

    def _reduced_blur(self, radius: float) -> Image.Image:
        side = min(self.picture.size)
        for factor in self._FACTORS:
            # Keep at least a pixel of blur at the reduced size, which hides
            # the blockiness scaling up would otherwise show.
            if radius / factor >= 1.0 and side // factor >= 8:
                small = self.picture.reduce(factor).filter(
                    ImageFilter.GaussianBlur(radius / factor)
                )
                # Bilinear: the small picture is blurred by a pixel or more, which
                # leaves nothing for a wider filter to keep, at half the cost.
                return small.resize(self.picture.size, Image.Resampling.BILINEAR)
        return self.picture.filter(ImageFilter.GaussianBlur(radius))


def _noise(seed: int, size: tuple[int, int]) -> Image.Image:
    """One field of coloured noise: fine grain over latent-sized blotches.

    The field is made at most :data:`_NOISE_SIDE` pixels wide and scaled up
    without smoothing, so the grain stays crisp while a 4096-pixel canvas
    does not pay for 50 MB of random bytes. The bytes come from SHAKE-128
    keyed by the seed: the same seed, the same noise, on any machine.
    """
    width, height = size
    step = -(-max(width, height) // _NOISE_SIDE)
    field = (-(-width // step), -(-height // step))
    blotch = max(1, _BLOTCH // step)
    small = (-(-field[0] // blotch), -(-field[1] // blotch))
    grain_bytes = field[0] * field[1] * 3
    stream = hashlib.shake_128(f"procedural noise {seed}".encode()).digest(
        grain_bytes + small[0] * small[1] * 3
    )
    grain = Image.frombytes("RGB", field, stream[:grain_bytes])
    blotches = Image.frombytes("RGB", small, stream[grain_bytes:])
    blotches = blotches.resize(field, Image.Resampling.BILINEAR)
    lut = [min(255, max(0, round(128 + (v - 128) * _NOISE_CONTRAST))) for v in range(256)]
    noise = Image.blend(grain, blotches, 0.5).point(lut * 3)
    return noise if field == size else noise.resize(size, Image.Resampling.NEAREST)
