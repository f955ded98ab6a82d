"""A tiny Stable Diffusion pipeline with random weights, for tests and benchmarks: no download.

:func:`save_tiny_pipeline` builds it from the real classes (a
``UNet2DConditionModel``, an ``AutoencoderKL``, a ``CLIPTextModel`` from a
``CLIPTextConfig``, a ``CLIPTokenizer`` over a vocabulary written here, an
Euler scheduler) and saves it with ``save_pretrained``, so that it loads
through ``DiffusionPipeline.from_pretrained`` like any downloaded model. Its
VAE has four blocks and scales by 8 like the real ones (a 64x64 image is an
8x8 latent); its pictures are noise, but every step, preview and decode is
the real code path. A few hundred kilobytes; 4 steps at 64x64 take a
fraction of a second on one CPU thread.

    from imagestream_diffusers.tiny import save_tiny_pipeline
    folder = save_tiny_pipeline(tmp_path / "tiny-sd")      # then model=str(folder)
"""

from __future__ import annotations

import importlib
import json
import string
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["save_tiny_pipeline", "tiny_pipeline"]


def _write_tokenizer_files(folder: Path) -> tuple[Path, Path]:
    """A CLIP BPE vocabulary of single letters (each also as a word's end), no merges."""
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "!": 2}
    for letter in string.ascii_lowercase:
        vocab[letter] = len(vocab)
        vocab[f"{letter}</w>"] = len(vocab)
    vocab_file = folder / "vocab.json"
    merges_file = folder / "merges.txt"
    vocab_file.write_text(json.dumps(vocab), encoding="utf-8")
    merges_file.write_text("#version: 0.2\n", encoding="utf-8")
    return vocab_file, merges_file


def tiny_pipeline(seed: int = 0) -> Any:
    """The tiny ``StableDiffusionPipeline``, its weights drawn from ``seed``."""
    torch: Any = importlib.import_module("torch")
    diffusers: Any = importlib.import_module("diffusers")
    transformers: Any = importlib.import_module("transformers")

    torch.manual_seed(seed)
    unet = diffusers.UNet2DConditionModel(
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
    vae = diffusers.AutoencoderKL(
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
    text_encoder = transformers.CLIPTextModel(
        transformers.CLIPTextConfig(
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
    with tempfile.TemporaryDirectory() as scratch:
        vocab_file, merges_file = _write_tokenizer_files(Path(scratch))
        tokenizer = transformers.CLIPTokenizer(
            str(vocab_file), str(merges_file), model_max_length=77
        )
    scheduler = diffusers.EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1
    )
    return diffusers.StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def save_tiny_pipeline(folder: str | Path, seed: int = 0) -> Path:
    """Build the tiny pipeline and ``save_pretrained`` it to ``folder``; returns the folder."""
    path = Path(folder)
    tiny_pipeline(seed).save_pretrained(str(path))
    return path
