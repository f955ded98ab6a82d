"""A tiny Stable Diffusion pipeline with random weights, built here: nothing is downloaded.

The pipeline is made of the real classes (a ``UNet2DConditionModel``, an
``AutoencoderKL``, a ``CLIPTextModel`` from a ``CLIPTextConfig``, a
``CLIPTokenizer`` from a vocabulary and merges written below, an Euler
scheduler), saved with ``save_pretrained`` once per session and loaded by
the provider through ``DiffusionPipeline.from_pretrained``, the path users
take. Its VAE has four blocks, so it scales by 8 like the real ones: a
64x64 image is an 8x8 latent, and 4 steps take well under a second on one
CPU thread.

Without torch and diffusers these tests skip, except under CI (``CI`` set),
where a missing install must fail rather than pass silently.
"""

from __future__ import annotations

import importlib
import json
import os
import string
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


def _tokenizer_files(folder: Path) -> tuple[Path, Path]:
    """A CLIP BPE vocabulary of single letters (each also as a word end), and no merges."""
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "!": 2}
    for letter in string.ascii_lowercase:
        vocab[letter] = len(vocab)
        vocab[f"{letter}</w>"] = len(vocab)
    vocab_file = folder / "vocab.json"
    merges_file = folder / "merges.txt"
    vocab_file.write_text(json.dumps(vocab), encoding="utf-8")
    merges_file.write_text("#version: 0.2\n", encoding="utf-8")
    return vocab_file, merges_file


def build_tiny_pipeline(torch: Any, folder: Path) -> Any:
    """The tiny text-to-image pipeline, with fixed random weights."""
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16,
        attention_head_dim=2,
        norm_num_groups=4,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(8, 8, 8, 8),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1,
        norm_num_groups=4,
        sample_size=64,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=64,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=77,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )
    vocab_file, merges_file = _tokenizer_files(folder)
    tokenizer = CLIPTokenizer(str(vocab_file), str(merges_file), model_max_length=77)
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1
    )
    return StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


@pytest.fixture(scope="session")
def tiny_model(torch: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the tiny pipeline, as ``save_pretrained`` writes it."""
    work = tmp_path_factory.mktemp("tiny-sd")
    folder = work / "tiny-sd"
    build_tiny_pipeline(torch, work).save_pretrained(str(folder))
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
def provider(pipeline_cache: Any) -> Any:
    from imagestream_diffusers import DiffusersProvider

    return DiffusersProvider(cache=pipeline_cache)


@pytest.fixture
def pipeline(provider: Any) -> imagestream.Pipeline:
    """A pipeline with the provider and the core's validation of every image."""
    return imagestream.Pipeline(provider, middleware=[imagestream.Validation()])
