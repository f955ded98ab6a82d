"""The procedural provider through imagestream's pipeline and plugin system."""

from __future__ import annotations

import asyncio
import io
import itertools
import threading
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageStat

import imagestream
from imagestream import ImageFinal, ImagePreview, Pipeline, TextDelta, Usage
from imagestream.provider import LazyProvider
from imagestream_procedural import ProceduralProvider, _plugin
from imagestream_procedural._provider import preview_size


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
    sigmas = [p.sigma or 0.0 for p in previews]
    assert all(p.sigma is not None for p in previews)
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
        ({"preview_size": "big"}, "preview_size"),
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


def _decoded(chunk: ImagePreview | ImageFinal) -> Image.Image:
    return Image.open(io.BytesIO(chunk.image.data)).convert("RGB")


@pytest.mark.parametrize(
    ("size", "longest", "expected"),
    [
        ((512, 512), 256, (256, 256)),
        ((2048, 1024), 256, (256, 128)),
        ((768, 512), 256, (256, 171)),
        ((200, 100), 256, (200, 100)),  # never bigger than the picture
        ((17, 4096), 256, (16, 256)),  # a side never under 16 pixels
        ((4096, 4096), 4096, (4096, 4096)),
    ],
)
def test_preview_size(size: tuple[int, int], longest: int, expected: tuple[int, int]) -> None:
    assert preview_size(*size, longest) == expected


async def test_previews_are_made_at_preview_size_and_the_final_at_full_size() -> None:
    chunks = await _chunks(prompt="a lighthouse at dusk", size="1024x512", steps=4, seed=3)
    previews = [c for c in chunks if isinstance(c, ImagePreview)]
    (final,) = [c for c in chunks if isinstance(c, ImageFinal)]
    assert {(p.width, p.height) for p in previews} == {(256, 128)}
    assert all(_decoded(p).size == (256, 128) for p in previews)
    assert (final.width, final.height) == _decoded(final).size == (1024, 512)
    # The last preview is the final picture, scaled down.
    small = _decoded(final).resize((256, 128), Image.Resampling.BOX)
    difference = ImageChops.difference(_decoded(previews[-1]), small)
    assert max(ImageStat.Stat(difference).mean) < 4


async def test_preview_size_is_an_option() -> None:
    chunks = await _chunks(size="300x200", steps=2, preview_size=100)
    assert {(c.width, c.height) for c in chunks if isinstance(c, ImagePreview)} == {(100, 67)}
    chunks = await _chunks(size="300x200", steps=2, preview_size=4096)
    assert {(c.width, c.height) for c in chunks if isinstance(c, ImagePreview)} == {(300, 200)}


async def test_the_final_does_not_depend_on_the_previews() -> None:
    def final(chunks: list[Any]) -> bytes:
        (found,) = [c for c in chunks if isinstance(c, ImageFinal)]
        return found.image.data

    params: dict[str, Any] = {"prompt": "stained glass", "size": "96x64", "steps": 5, "seed": 2}
    alone = final(await _chunks(**params, partial_images=0))
    assert final(await _chunks(**params, preview_size=32, preview_format="png")) == alone
    assert final(await _chunks(**params, partial_images=2)) == alone


async def test_a_preview_size_out_of_range_is_refused() -> None:
    with pytest.raises(imagestream.ValidationError, match="preview_size must be between 16"):
        await _chunks(preview_size=8)


async def test_leaving_early_stops_making_previews(monkeypatch: pytest.MonkeyPatch) -> None:
    from imagestream_procedural import _provider

    encoded: list[str] = []
    left, finished = threading.Event(), threading.Event()
    encode, make_sample = _provider._encode, _provider._make_sample

    def encoding(image: Image.Image, fmt: str, quality: int = 90) -> bytes:
        if fmt == "JPEG":
            encoded.append(fmt)
            if len(encoded) > 1:
                left.wait(10)  # the second preview waits until the consumer has left
        return encode(image, fmt, quality)

    def making(*args: Any) -> None:
        try:
            make_sample(*args)
        finally:
            finished.set()

    monkeypatch.setattr(_provider, "_encode", encoding)
    monkeypatch.setattr(_provider, "_make_sample", making)
    pipe = Pipeline(ProceduralProvider())
    async with pipe.stream("a lighthouse at dusk", size="64x64", steps=200, seed=1) as chunks:
        async for chunk in chunks:
            if isinstance(chunk, ImagePreview):
                break
    left.set()
    assert await asyncio.to_thread(finished.wait, 10)
    # The one sent, and the one being made when the consumer left, if any: no more.
    assert len(encoded) <= 2


def test_registers_a_lazy_provider_that_says_what_the_class_says() -> None:
    lazy = _plugin.provider()
    assert isinstance(lazy, LazyProvider)
    assert not lazy.loaded
    lazy.check()
    assert isinstance(lazy.load(), ProceduralProvider)
