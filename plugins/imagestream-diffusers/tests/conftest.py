"""Fixtures around a tiny Stable Diffusion pipeline with random weights: nothing is downloaded.

:func:`imagestream_diffusers.tiny.save_tiny_pipeline` builds it from the real
classes (a ``UNet2DConditionModel``, an ``AutoencoderKL``, a ``CLIPTextModel``
from a ``CLIPTextConfig``, a ``CLIPTokenizer`` over a vocabulary it writes,
an Euler scheduler); it is saved once per session and loaded by the provider
through ``DiffusionPipeline.from_pretrained``, the path users take. Its VAE
scales by 8 like the real ones: a 64x64 image is an 8x8 latent, and 4 steps
take well under a second on one CPU thread.

Without torch and diffusers these tests skip, except under CI (``CI`` set),
where a missing install must fail rather than pass silently.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import imagestream


def _require(module: str) -> Any:
    if os.environ.get("CI"):  # CI installs them: their absence is a failure there
        return importlib.import_module(module)
    return pytest.importorskip(module, reason=f"imagestream-diffusers' tests need {module}")


@pytest.fixture(scope="session")
def torch() -> Any:
    """torch, on one thread: small tensors gain nothing from more, and CI has two cores."""
    module = _require("torch")
    _require("diffusers")
    _require("transformers")
    module.set_num_threads(1)
    return module


@pytest.fixture(scope="session")
def tiny_model(torch: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the tiny pipeline, as ``save_pretrained`` writes it."""
    from imagestream_diffusers.tiny import save_tiny_pipeline

    return save_tiny_pipeline(tmp_path_factory.mktemp("tiny-sd") / "tiny-sd").resolve()


@pytest.fixture(scope="session")
def family_model(torch: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``family_model("sd3")``, ``family_model("flux")``: a folder holding that tiny pipeline."""
    from imagestream_diffusers.tiny import save_tiny_pipeline

    made: dict[str, Path] = {}

    def folder(kind: str) -> Path:
        if kind not in made:
            target = tmp_path_factory.mktemp(f"tiny-{kind}") / f"tiny-{kind}"
            made[kind] = save_tiny_pipeline(target, kind=kind).resolve()
        return made[kind]

    return folder


@pytest.fixture(scope="session")
def unconditional_model(torch: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding a pipeline that draws without a prompt (DDPM): not supported."""
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    torch.manual_seed(0)
    unet = UNet2DModel(
        sample_size=8,
        in_channels=3,
        out_channels=3,
        block_out_channels=(8, 8),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
    )
    folder = tmp_path_factory.mktemp("ddpm") / "ddpm"
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler()).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def pipeline_cache(torch: Any) -> Iterator[Any]:
    """One cache for the session: the tiny pipeline loads once, as it would in an app."""
    from imagestream_diffusers import PipelineCache

    cache = PipelineCache(keep=2)
    yield cache
    cache.clear()


@pytest.fixture
def loaded_pipeline(pipeline_cache: Any, tiny_model: Path) -> Any:
    """The tiny pipeline as loaded (call it after a run has loaded it)."""
    location = str(tiny_model)

    def find() -> Any:
        loaded = pipeline_cache.find(location)
        assert loaded is not None, "the tiny pipeline is not loaded yet"
        return loaded.pipe

    return find


@pytest.fixture
def loaded_unet(loaded_pipeline: Any) -> Any:
    """The UNet of the tiny pipeline as loaded (call it after a run has loaded it)."""
    return lambda: loaded_pipeline().unet


@pytest.fixture
def provider(pipeline_cache: Any) -> Any:
    from imagestream_diffusers import DiffusersProvider

    return DiffusersProvider(cache=pipeline_cache)


@pytest.fixture
def pipeline(provider: Any) -> imagestream.Pipeline:
    """A pipeline with the provider and the core's validation of every image."""
    return imagestream.Pipeline(provider, middleware=[imagestream.Validation()])
