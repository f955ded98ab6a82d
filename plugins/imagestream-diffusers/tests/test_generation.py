"""The tiny pipeline, end to end through a Pipeline: previews, finals, seeds, modes, errors."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import imagestream
from imagestream import ImageFinal, ImagePreview

STEPS = 4
SIZE = "64x64"


async def run(pipeline: imagestream.Pipeline, model: Path, **params: Any) -> list[Any]:
    params.setdefault("steps", STEPS)
    params.setdefault("size", SIZE)
    chunks = []
    async with pipeline.stream("a red fox", model=str(model), **params) as stream:
        async for chunk in stream:
            chunks.append(chunk)
    return chunks


def previews(chunks: list[Any]) -> list[ImagePreview]:
    return [chunk for chunk in chunks if isinstance(chunk, ImagePreview)]


def finals(chunks: list[Any]) -> list[ImageFinal]:
    return [chunk for chunk in chunks if isinstance(chunk, ImageFinal)]


async def test_a_preview_at_every_step_with_falling_sigma_then_a_png(
    pipeline: imagestream.Pipeline, tiny_model: Path
) -> None:
    chunks = await run(pipeline, tiny_model, seed=3)

    shown = previews(chunks)
    assert [p.step for p in shown] == list(range(STEPS))
    assert [p.index for p in shown] == list(range(STEPS))
    assert {p.total_steps for p in shown} == {STEPS}
    sigmas = [p.sigma for p in shown]
    assert all(s is not None for s in sigmas)
    assert sigmas == sorted(sigmas, reverse=True) and len(set(sigmas)) == STEPS, sigmas
    assert sigmas[0] > 1.0  # Euler starts from the largest noise level
    for preview in shown:
        assert preview.mime_type == "image/jpeg"
        assert preview.image.data[:3] == b"\xff\xd8\xff"
        assert (preview.width, preview.height) == (64, 64)
        assert preview.extra["preview"] == "latent"
        with Image.open(io.BytesIO(preview.image.data)) as picture:
            assert picture.size == (64, 64)

    (final,) = finals(chunks)
    assert chunks[-1] is final
    assert final.mime_type == "image/png"
    assert final.image.data.startswith(b"\x89PNG\r\n\x1a\n")
    assert (final.width, final.height, final.seed) == (64, 64, 3)
    assert final.extra["scheduler"] == "EulerDiscreteScheduler"
    assert final.extra["steps"] == STEPS
    assert final.extra["device"] == "cpu"


async def test_the_same_seed_gives_the_same_bytes(
    pipeline: imagestream.Pipeline, tiny_model: Path
) -> None:
    def digest(chunks: list[Any]) -> str:
        (final,) = finals(chunks)
        return hashlib.sha256(final.image.data).hexdigest()

    first = await run(pipeline, tiny_model, seed=11)
    second = await run(pipeline, tiny_model, seed=11)
    other = await run(pipeline, tiny_model, seed=12)

    assert digest(first) == digest(second)
    assert [p.image.data for p in previews(first)] == [p.image.data for p in previews(second)]
    assert digest(first) != digest(other)


async def test_n_images_use_seed_plus_i(pipeline: imagestream.Pipeline, tiny_model: Path) -> None:
    two = await run(pipeline, tiny_model, seed=20, n=2)
    alone = await run(pipeline, tiny_model, seed=21)

    assert [f.seed for f in finals(two)] == [20, 21]
    assert [f.sample for f in finals(two)] == [0, 1]
    assert [p.sample for p in previews(two)] == [0] * STEPS + [1] * STEPS
    assert finals(two)[1].image.data == finals(alone)[0].image.data


async def test_a_random_seed_is_reported(pipeline: imagestream.Pipeline, tiny_model: Path) -> None:
    (final,) = finals(await run(pipeline, tiny_model))
    assert isinstance(final.seed, int)
    again = finals(await run(pipeline, tiny_model, seed=final.seed))[0]
    assert again.image.data == final.image.data


async def test_vae_previews_decode_every_kth_step(
    pipeline: imagestream.Pipeline, tiny_model: Path
) -> None:
    chunks = await run(pipeline, tiny_model, seed=1, steps=5, preview="vae", vae_every=2)

    kinds = [p.extra["preview"] for p in previews(chunks)]
    # Steps 2 and 4 (1-based) and the last are decoded; the others are latent previews.
    assert kinds == ["latent", "vae", "latent", "vae", "vae"]
    assert all((p.width, p.height) == (64, 64) for p in previews(chunks))


async def test_no_previews_and_partial_images(
    pipeline: imagestream.Pipeline, tiny_model: Path
) -> None:
    none = await run(pipeline, tiny_model, seed=1, preview="none")
    assert previews(none) == [] and len(finals(none)) == 1

    some = await run(pipeline, tiny_model, seed=1, steps=6, partial_images=2)
    assert [p.step for p in previews(some)] == [2, 5]
    assert [p.index for p in previews(some)] == [0, 1]


async def test_preview_size_and_quality(pipeline: imagestream.Pipeline, tiny_model: Path) -> None:
    small = await run(pipeline, tiny_model, seed=1, size="64x32", preview_size=32)
    assert {(p.width, p.height) for p in previews(small)} == {(32, 16)}
    assert (finals(small)[0].width, finals(small)[0].height) == (64, 32)

    low = await run(pipeline, tiny_model, seed=1, preview_quality=5)
    high = await run(pipeline, tiny_model, seed=1, preview_quality=95)
    assert len(previews(low)[-1].image.data) < len(previews(high)[-1].image.data)


async def test_another_scheduler_from_the_compatibles(
    pipeline: imagestream.Pipeline, tiny_model: Path
) -> None:
    for name, expected in (("ddim", "DDIMScheduler"), ("DPMSolverMultistepScheduler", None)):
        chunks = await run(pipeline, tiny_model, seed=1, scheduler=name)
        (final,) = finals(chunks)
        assert final.extra["scheduler"] == (expected or name)
        sigmas = [p.sigma for p in previews(chunks)]
        assert len(sigmas) == STEPS and sigmas == sorted(sigmas, reverse=True), sigmas

    # The loaded pipeline keeps its own scheduler for the next run.
    default = await run(pipeline, tiny_model, seed=1)
    assert finals(default)[0].extra["scheduler"] == "EulerDiscreteScheduler"


async def test_a_misspelt_scheduler_gets_did_you_mean(
    pipeline: imagestream.Pipeline, tiny_model: Path
) -> None:
    with pytest.raises(imagestream.ConfigurationError) as caught:
        await run(pipeline, tiny_model, scheduler="EulerDiscreteSchedular")
    assert "did you mean 'EulerDiscreteScheduler'" in str(caught.value)


async def test_image_to_image(pipeline: imagestream.Pipeline, tiny_model: Path) -> None:
    start = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 40, 40)).save(start, "PNG")

    chunks = await run(pipeline, tiny_model, seed=2, image=start.getvalue(), strength=0.5)

    shown = previews(chunks)
    # strength 0.5 of 4 steps: the sampler runs the last 2.
    assert [p.step for p in shown] == [0, 1]
    assert {p.total_steps for p in shown} == {2}
    (final,) = finals(chunks)
    assert (final.width, final.height) == (64, 64)
    assert final.extra["steps"] == 2


async def test_image_to_image_takes_the_input_size(
    pipeline: imagestream.Pipeline, tiny_model: Path
) -> None:
    start = io.BytesIO()
    Image.new("RGB", (70, 45), (10, 90, 200)).save(start, "PNG")

    chunks = await run(pipeline, tiny_model, size=None, seed=2, image=start.getvalue())

    (final,) = finals(chunks)
    assert (final.width, final.height) == (64, 40)  # rounded down to the VAE's 8 pixels


async def test_output_formats(pipeline: imagestream.Pipeline, tiny_model: Path) -> None:
    (jpeg,) = finals(await run(pipeline, tiny_model, seed=1, output_format="jpeg"))
    assert jpeg.mime_type == "image/jpeg" and jpeg.image.data[:3] == b"\xff\xd8\xff"
    (webp,) = finals(await run(pipeline, tiny_model, seed=1, output_format="webp"))
    assert webp.mime_type == "image/webp" and webp.image.data[8:12] == b"WEBP"


async def test_the_pipeline_is_loaded_once(
    pipeline: imagestream.Pipeline, tiny_model: Path, pipeline_cache: Any
) -> None:
    location = str(tiny_model)
    await run(pipeline, tiny_model, seed=1)
    loaded = pipeline_cache.find(location)

    await run(pipeline, tiny_model, seed=2, scheduler="ddim")

    assert loaded is not None and pipeline_cache.find(location) is loaded
    assert (location, "cpu", "float32", "") in pipeline_cache.entries()


async def test_the_default_model_comes_from_the_environment(
    pipeline: imagestream.Pipeline, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGESTREAM_DIFFUSERS_MODEL", str(tiny_model))
    chunks = []
    async with pipeline.stream("a fox", steps=2, size=SIZE, seed=1) as stream:
        async for chunk in stream:
            chunks.append(chunk)
    assert len(finals(chunks)) == 1


async def test_half_precision_with_vae_previews(
    pipeline: imagestream.Pipeline, tiny_model: Path, pipeline_cache: Any
) -> None:
    await run(pipeline, tiny_model, seed=1, dtype="float16", preview="none")
    loaded = pipeline_cache.get((str(tiny_model), "cpu", "float16", ""))
    assert loaded is not None
    decoded: list[str] = []
    decoder = loaded.pipe.vae.decoder
    handle = decoder.register_forward_pre_hook(
        lambda module, args: decoded.append(str(args[0].dtype))
    )
    try:
        chunks = await run(pipeline, tiny_model, seed=1, dtype="float16", preview="vae")
    finally:
        handle.remove()

    assert [p.extra["preview"] for p in previews(chunks)] == ["vae"] * STEPS
    (final,) = finals(chunks)
    assert final.extra["dtype"] == "float16"
    # The VAE asks for float32 (force_upcast, as SDXL's does): each preview was
    # decoded in it, and the VAE went back to float16.
    assert decoded[:STEPS] == ["torch.float32"] * STEPS
    assert str(loaded.pipe.vae.dtype) == "torch.float16"
