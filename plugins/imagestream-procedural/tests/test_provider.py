"""The procedural provider through imagestream's pipeline and plugin system."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

import imagestream
from imagestream import ImageFinal, ImagePreview, Pipeline, TextDelta, Usage
from imagestream_procedural import ProceduralProvider, _plugin


async def _chunks(**params: Any) -> list[Any]:
    pipe = Pipeline(ProceduralProvider(), middleware=[imagestream.Validation()])
    params.setdefault("size", "64x64")
    return [
        chunk async for chunk in pipe.stream(params.pop("prompt", "a simple red circle"), **params)
    ]


async def test_streams_text_previews_final_and_usage_in_order() -> None:
    chunks = await _chunks(steps=6, seed=5)
    assert isinstance(chunks[0], TextDelta)
    previews = [c for c in chunks if isinstance(c, ImagePreview)]
    assert [p.step for p in previews] == list(range(6))
    assert all(p.total_steps == 6 and p.mime_type == "image/jpeg" for p in previews)
    sigmas = [p.sigma for p in previews]
    assert all(a > b for a, b in itertools.pairwise(sigmas)), "sigma must fall"
    (final,) = [c for c in chunks if isinstance(c, ImageFinal)]
    assert final.seed == 5
    assert (final.width, final.height, final.mime_type) == (64, 64, "image/png")
    assert final.image.data.startswith(b"\x89PNG")
    assert isinstance(chunks[-1], Usage)
    assert not any(c.synthetic for c in chunks)


async def test_same_seed_same_pixels_other_seed_other_pixels() -> None:
    prompt = "a lighthouse at dusk"
    first = [c for c in await _chunks(prompt=prompt, seed=1, steps=2) if isinstance(c, ImageFinal)]
    again = [c for c in await _chunks(prompt=prompt, seed=1, steps=2) if isinstance(c, ImageFinal)]
    other = [c for c in await _chunks(prompt=prompt, seed=2, steps=2) if isinstance(c, ImageFinal)]
    assert first[0].image.data == again[0].image.data
    assert first[0].image.data != other[0].image.data


async def test_random_seed_is_reported_back() -> None:
    (final,) = [c for c in await _chunks(steps=1) if isinstance(c, ImageFinal)]
    assert isinstance(final.seed, int)


async def test_partial_images_spreads_previews_and_ends_on_the_last_step() -> None:
    previews = [c for c in await _chunks(steps=10, partial_images=3) if isinstance(c, ImagePreview)]
    steps = [p.step for p in previews]
    assert len(steps) == 3 and steps[-1] == 9
    assert [p.index for p in previews] == [0, 1, 2]


async def test_batches_keep_samples_apart() -> None:
    chunks = await _chunks(steps=2, n=2, seed=10)
    finals = [c for c in chunks if isinstance(c, ImageFinal)]
    assert [(f.sample, f.seed) for f in finals] == [(0, 10), (1, 11)]
    previews = [c for c in chunks if isinstance(c, ImagePreview)]
    assert [(p.sample, p.index) for p in previews] == [(0, 0), (0, 1), (1, 0), (1, 1)]


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
async def test_output_formats(fmt: str) -> None:
    (final,) = [c for c in await _chunks(steps=1, output_format=fmt) if isinstance(c, ImageFinal)]
    assert final.mime_type == f"image/{fmt}"
    assert final.image.mime_type == f"image/{fmt}"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"size": "8x8"}, "out of range"),
        ({"steps": 0}, "steps must be"),
        ({"n": 9}, "n must be"),
        ({"output_format": "bmp"}, "not supported"),
        ({"model": "sdxl"}, "unknown model"),
        ({"colour": "red"}, "unknown option"),
    ],
)
async def test_bad_settings_are_refused_before_any_work(
    params: dict[str, Any], message: str
) -> None:
    with pytest.raises(imagestream.ConfigurationError, match=message):
        await _chunks(**params)


def test_registers_through_the_hook(imagestream_plugins: Any) -> None:
    imagestream_plugins.register(_plugin, "procedural-test")
    provider = imagestream.get_provider("procedural")
    assert isinstance(provider, ProceduralProvider)
    assert provider.streams_previews
    chunks = imagestream_plugins.run("a blue square on yellow", size="32x32", steps=2)
    assert sum(isinstance(c, ImagePreview) for c in chunks) == 2


def test_is_the_default_provider(imagestream_plugins: Any) -> None:
    imagestream_plugins.register(_plugin, "procedural-test")
    result = imagestream.generate("a red circle", size="32x32", steps=1)
    assert result.provider == "procedural"
