"""SD3 and Flux (tiny, random weights): 16-channel latents, flow matching, Flux's packed latents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import imagestream
from imagestream import ImageFinal, ImagePreview

STEPS = 4


async def run(pipeline: imagestream.Pipeline, model: Path, **params: Any) -> list[Any]:
    params.setdefault("steps", STEPS)
    params.setdefault("size", "64x64")
    async with pipeline.stream("a red fox", model=str(model), **params) as stream:
        return [chunk async for chunk in stream]


@pytest.mark.parametrize("kind", ["sd3", "flux"])
async def test_previews_at_every_step_of_a_flow_matching_model(
    pipeline: imagestream.Pipeline, family_model: Any, pipeline_cache: Any, kind: str
) -> None:
    model = family_model(kind)
    extra = {"pipeline_args": {"max_sequence_length": 32}} if kind == "flux" else {}

    chunks = await run(pipeline, model, seed=3, preview="vae", vae_every=2, **extra)

    previews = [c for c in chunks if isinstance(c, ImagePreview)]
    assert [p.step for p in previews] == list(range(STEPS))
    sigmas = [p.sigma for p in previews]
    # Flow matching: the noise level falls from 1 towards 0.
    assert sigmas[0] == pytest.approx(1.0)
    assert all(s is not None and 0 < s <= 1 for s in sigmas)
    assert sigmas == sorted(sigmas, reverse=True) and len(set(sigmas)) == STEPS
    assert [p.extra["preview"] for p in previews] == ["latent", "vae", "latent", "vae"]
    assert {(p.width, p.height) for p in previews} == {(64, 64)}
    (final,) = [c for c in chunks if isinstance(c, ImageFinal)]
    assert (final.width, final.height, final.seed) == (64, 64, 3)
    assert final.extra["scheduler"] == "FlowMatchEulerDiscreteScheduler"

    loaded = pipeline_cache.find(str(model))
    assert loaded is not None and loaded.latent_format.name == kind
    assert loaded.latent_format.packed is (kind == "flux")

    again = await run(pipeline, model, seed=3, preview="vae", vae_every=2, **extra)
    assert again[-1].image.data == final.image.data


async def test_flux_latent_previews_of_a_wide_image(
    pipeline: imagestream.Pipeline, family_model: Any
) -> None:
    chunks = await run(
        pipeline,
        family_model("flux"),
        size="96x64",
        seed=1,
        pipeline_args={"max_sequence_length": 32},
    )
    previews = [c for c in chunks if isinstance(c, ImagePreview)]
    assert len(previews) == STEPS
    assert {(p.width, p.height) for p in previews} == {(96, 64)}
    assert (chunks[-1].width, chunks[-1].height) == (96, 64)


async def test_flux_sizes_are_multiples_of_16(
    pipeline: imagestream.Pipeline, family_model: Any
) -> None:
    with pytest.raises(imagestream.ValidationError, match="multiples of 16, not 72x64"):
        await run(pipeline, family_model("flux"), size="72x64")


async def test_pipeline_args_reach_the_call_and_are_checked(
    pipeline: imagestream.Pipeline, tiny_model: Path
) -> None:
    ddim = {"scheduler": "ddim", "seed": 2}
    plain = await run(pipeline, tiny_model, **ddim)
    eta = await run(pipeline, tiny_model, **ddim, pipeline_args={"eta": 1.0})
    assert eta[-1].image.data != plain[-1].image.data  # DDIM with eta 1 adds noise

    with pytest.raises(imagestream.ConfigurationError) as caught:
        await run(pipeline, tiny_model, pipeline_args={"guidance_rescal": 0.5})
    assert "takes no guidance_rescal (did you mean 'guidance_rescale'?)" in str(caught.value)

    with pytest.raises(imagestream.ConfigurationError) as caught:
        await run(pipeline, tiny_model, pipeline_args={"num_inference_steps": 3})
    assert "may not set num_inference_steps" in str(caught.value)
    assert "--steps" in (caught.value.hint or "")
