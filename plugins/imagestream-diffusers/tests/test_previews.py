"""The preview maths, checked against diffusers' own schedulers and pipelines."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from imagestream_diffusers._previews import (
    LATENT_FORMATS,
    StepRecorder,
    denoised,
    detect_format,
    latent_to_rgb,
    noise_level,
    parametrization,
    preview_dimensions,
    preview_steps,
    unpack_latents,
)

BETAS = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}


def twins(cls: Any, steps: int = 5, **config: Any) -> tuple[Any, Any]:
    """Two schedulers in the same state: one to record, one to ask for the truth."""
    first, second = cls(**config), cls(**config)
    first.set_timesteps(steps)
    second.set_timesteps(steps)
    return first, second


def assert_close(torch: Any, got: Any, expected: Any) -> None:
    assert got is not None
    assert torch.allclose(got.float(), expected.float(), rtol=1e-4, atol=1e-4), (
        (got - expected).abs().max()
    )


@pytest.mark.parametrize(
    ("name", "config"),
    [
        ("EulerDiscreteScheduler", {**BETAS}),
        ("EulerDiscreteScheduler", {**BETAS, "prediction_type": "v_prediction"}),
        ("EulerAncestralDiscreteScheduler", {**BETAS}),
        ("DDIMScheduler", {**BETAS}),
        ("DDIMScheduler", {**BETAS, "prediction_type": "v_prediction"}),
        ("HeunDiscreteScheduler", {**BETAS}),
        ("EDMEulerScheduler", {}),
    ],
)
def test_the_estimate_is_the_schedulers_own(torch: Any, name: str, config: dict[str, Any]) -> None:
    import diffusers

    cls = getattr(diffusers, name)
    recorded, truth = twins(cls, **config)
    recorder = StepRecorder(recorded)
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(1, 4, 8, 8, generator=generator) * float(recorded.init_noise_sigma)
    takes_generator = "generator" in inspect.signature(recorded.step).parameters
    for timestep in list(recorded.timesteps)[:3]:
        output = torch.randn(1, 4, 8, 8, generator=generator)
        extra = {"generator": torch.Generator().manual_seed(1)} if takes_generator else {}
        step = recorded.step(output, timestep, sample, **extra, return_dict=False)
        extra = {"generator": torch.Generator().manual_seed(1)} if takes_generator else {}
        expected = truth.step(output, timestep, sample, **extra, return_dict=True)
        captured = recorder.take()
        assert captured is not None and captured.predicted is None  # computed, not handed over
        assert_close(torch, denoised(recorded, captured), expected.pred_original_sample)
        assert_close(torch, step[0], expected.prev_sample)
        sample = step[0]
    recorder.remove()
    assert "step" not in vars(recorded)


@pytest.mark.parametrize("name", ["DPMSolverMultistepScheduler", "UniPCMultistepScheduler"])
@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_the_estimate_of_multistep_solvers(torch: Any, name: str, prediction: str) -> None:
    import diffusers

    scheduler = getattr(diffusers, name)(**BETAS, prediction_type=prediction)
    scheduler.set_timesteps(6)
    recorder = StepRecorder(scheduler)
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(1, 4, 8, 8, generator=generator)
    for timestep in list(scheduler.timesteps)[:3]:
        output = torch.randn(1, 4, 8, 8, generator=generator)
        sample = scheduler.step(output, timestep, sample, return_dict=False)[0]
        captured = recorder.take()
        assert captured is not None
        # Both keep the estimate (x0) they converted the model output to.
        assert_close(torch, denoised(scheduler, captured), scheduler.model_outputs[-1])


def test_the_estimate_under_flow_matching(torch: Any) -> None:
    import diffusers

    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0)
    scheduler.set_timesteps(4)
    recorder = StepRecorder(scheduler)
    assert parametrization(scheduler) == "flow"
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(1, 16, 8, 8, generator=generator)
    for index, timestep in enumerate(scheduler.timesteps):
        velocity = torch.randn(1, 16, 8, 8, generator=generator)
        after = scheduler.step(velocity, timestep, sample, return_dict=False)[0]
        captured = recorder.take()
        assert captured is not None
        assert captured.sigma == pytest.approx(float(scheduler.sigmas[index]))
        x0 = denoised(scheduler, captured)
        # An Euler step of the flow lands on x0 + sigma_next * velocity.
        assert_close(torch, after, x0 + float(scheduler.sigmas[index + 1]) * velocity)
        sample = after


def test_noise_levels_without_sigmas_come_from_alphas(torch: Any) -> None:
    import diffusers

    scheduler = diffusers.DDIMScheduler(**BETAS)
    scheduler.set_timesteps(4)
    levels = [noise_level(scheduler, t, None) for t in scheduler.timesteps]
    alphas = [float(scheduler.alphas_cumprod[int(t)]) for t in scheduler.timesteps]
    assert levels == pytest.approx([((1 - a) / a) ** 0.5 for a in alphas])
    assert levels == sorted(levels, reverse=True)
    assert parametrization(scheduler) == "vp"
    assert parametrization(diffusers.EulerDiscreteScheduler(**BETAS)) == "sigma"


def test_the_wrapped_step_keeps_its_signature(torch: Any) -> None:
    import diffusers

    scheduler = diffusers.DDIMScheduler(**BETAS)
    before = inspect.signature(scheduler.step)
    recorder = StepRecorder(scheduler)
    # Pipelines look for eta and generator in the signature of step.
    assert inspect.signature(scheduler.step) == before
    assert {"eta", "generator"} <= set(inspect.signature(scheduler.step).parameters)
    recorder.remove()
    assert inspect.signature(scheduler.step) == before


def test_flux_latents_unpack_as_the_pipeline_does(torch: Any) -> None:
    import diffusers

    packed = torch.randn(2, (96 // 16) * (64 // 16), 64)
    ours = unpack_latents(packed, 96, 64, 8)
    theirs = diffusers.FluxPipeline._unpack_latents(packed, 96, 64, 8)
    assert ours.shape == (2, 16, 12, 8)
    assert torch.equal(ours, theirs)
    with pytest.raises(ValueError, match="not 64x64 patches"):
        unpack_latents(packed, 64, 64, 8)


class Config:
    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


@pytest.mark.parametrize(
    ("pipeline", "config", "expected"),
    [
        ("StableDiffusionPipeline", Config(latent_channels=4, scaling_factor=0.18215), "sd1"),
        ("StableDiffusionXLPipeline", Config(latent_channels=4, scaling_factor=0.13025), "sdxl"),
        ("StableDiffusionXLImg2ImgPipeline", Config(latent_channels=4), "sdxl"),
        ("SomeCustomPipeline", Config(latent_channels=4, scaling_factor=0.13025), "sdxl"),
        ("StableDiffusion3Pipeline", Config(latent_channels=16, shift_factor=0.0609), "sd3"),
        ("FluxPipeline", Config(latent_channels=16, shift_factor=0.1159), "flux"),
        ("OtherPipeline", Config(latent_channels=16, shift_factor=0.1159), "flux"),
        ("Flux2Pipeline", Config(latent_channels=32), None),
        ("OtherPipeline", Config(latent_channels=16, shift_factor=0.5), None),
        ("OtherPipeline", None, None),
    ],
)
def test_latent_formats(pipeline: str, config: Any, expected: str | None) -> None:
    found = detect_format(pipeline, config)
    assert (found.name if found else None) == expected


def test_latent_to_rgb(torch: Any) -> None:
    for latent_format in LATENT_FORMATS.values():
        assert len(latent_format.factors) == latent_format.channels
        latent = torch.zeros(latent_format.channels, 6, 10)
        pixels = latent_to_rgb(latent, latent_format)
        assert pixels.shape == (6, 10, 3) and str(pixels.dtype) == "uint8"
        # A zero latent is the bias, mapped from [-1, 1] to bytes.
        expected = [round((b + 1) / 2 * 255) for b in latent_format.bias]
        assert pixels[0, 0].tolist() == expected
    # An unknown format: its first three channels, stretched.
    latent = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4).repeat(3, 1, 1)
    pixels = latent_to_rgb(latent[:5], None)
    assert pixels.shape == (3, 4, 3)
    assert pixels.min() == 0 and pixels.max() == 255


def test_preview_dimensions_and_steps() -> None:
    assert preview_dimensions((128, 128), (1024, 1024), 256) == (256, 256)
    assert preview_dimensions((96, 64), (768, 512), 256) == (256, 171)
    assert preview_dimensions((8, 8), (64, 64), 256) == (64, 64)  # never above the image
    assert preview_steps(4, None) == range(4)
    assert list(preview_steps(10, 3)) == [2, 6, 9]
    assert list(preview_steps(10, 0)) == []
