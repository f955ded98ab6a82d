"""Tiny pipelines with random weights, for tests and benchmarks: no download.

:func:`save_tiny_pipeline` builds one from the real classes and saves it
with ``save_pretrained``, so that it loads through
``DiffusionPipeline.from_pretrained`` like any downloaded model. ``kind="sd"``
(the default): a ``UNet2DConditionModel``, an ``AutoencoderKL``, a
``CLIPTextModel`` from a ``CLIPTextConfig``, a ``CLIPTokenizer`` over a
vocabulary written here and an Euler scheduler. ``"sd3"`` and ``"flux"``:
their transformers, 16-channel VAEs with the families' scaling and shift,
flow-matching schedulers (Flux with packed latents and a tiny T5 encoder).
Each VAE has four blocks and scales by 8 like the real ones (a 64x64 image
is an 8x8 latent); the pictures are noise, but every step, preview and
decode is the real code path. A few hundred kilobytes; 4 steps at 64x64 take
a fraction of a second on one CPU thread.

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

__all__ = ["KINDS", "save_tiny_pipeline", "tiny_pipeline"]


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


KINDS = ("sd", "sd3", "flux")
"""The families :func:`tiny_pipeline` builds: Stable Diffusion 1.x, SD3 (without its T5), Flux."""

_CLIP = {
    "vocab_size": 64,
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "max_position_embeddings": 77,
    "bos_token_id": 0,
    "eos_token_id": 1,
    "pad_token_id": 1,
}


def _vae(diffusers: Any, channels: int, **factors: float) -> Any:
    """A four-block VAE (8x, like the real ones) with ``channels`` latent channels."""
    flow = bool(factors)  # SD3's and Flux's VAEs have no quant convolutions
    return diffusers.AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=channels,
        block_out_channels=(8, 8, 8, 8),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1,
        norm_num_groups=4,
        sample_size=64,
        use_quant_conv=not flow,
        use_post_quant_conv=not flow,
        **factors,
    )


def _clip_tokenizer(transformers: Any) -> Any:
    with tempfile.TemporaryDirectory() as scratch:
        vocab_file, merges_file = _write_tokenizer_files(Path(scratch))
        return transformers.CLIPTokenizer(str(vocab_file), str(merges_file), model_max_length=77)


def _t5(transformers: Any) -> tuple[Any, Any]:
    """A tiny T5 encoder and its tokenizer: a unigram model over the letters."""
    tokenizers: Any = importlib.import_module("tokenizers")
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [(letter, -1.0) for letter in string.ascii_lowercase + "\u2581"]
    unigram = tokenizers.Tokenizer(tokenizers.models.Unigram(pieces, unk_id=2))
    unigram.pre_tokenizer = tokenizers.pre_tokenizers.Metaspace()
    tokenizer = transformers.T5TokenizerFast(
        tokenizer_object=unigram,
        model_max_length=32,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        extra_ids=0,
    )
    encoder = transformers.T5EncoderModel(
        transformers.T5Config(
            vocab_size=64,
            d_model=32,
            d_kv=8,
            d_ff=32,
            num_layers=1,
            num_heads=2,
            decoder_start_token_id=0,
            pad_token_id=0,
            eos_token_id=1,
        )
    )
    return encoder, tokenizer


def tiny_pipeline(seed: int = 0, kind: str = "sd") -> Any:
    """A tiny pipeline of the family ``kind`` (see :data:`KINDS`), its weights drawn from ``seed``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    torch: Any = importlib.import_module("torch")
    diffusers: Any = importlib.import_module("diffusers")
    transformers: Any = importlib.import_module("transformers")

    torch.manual_seed(seed)
    if kind == "sd3":
        clip = transformers.CLIPTextConfig(**_CLIP, projection_dim=16)
        return diffusers.StableDiffusion3Pipeline(
            transformer=diffusers.SD3Transformer2DModel(
                sample_size=8,
                patch_size=1,
                in_channels=16,
                out_channels=16,
                num_layers=1,
                attention_head_dim=8,
                num_attention_heads=2,
                joint_attention_dim=32,
                caption_projection_dim=16,
                pooled_projection_dim=32,
            ),
            vae=_vae(diffusers, 16, scaling_factor=1.5305, shift_factor=0.0609),
            text_encoder=transformers.CLIPTextModelWithProjection(clip),
            tokenizer=_clip_tokenizer(transformers),
            text_encoder_2=transformers.CLIPTextModelWithProjection(clip),
            tokenizer_2=_clip_tokenizer(transformers),
            text_encoder_3=None,  # SD3 runs without its T5 encoder
            tokenizer_3=None,
            scheduler=diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0),
        )
    if kind == "flux":
        t5, t5_tokenizer = _t5(transformers)
        return diffusers.FluxPipeline(
            transformer=diffusers.FluxTransformer2DModel(
                patch_size=1,
                in_channels=64,  # 16 latent channels in 2x2 patches
                num_layers=1,
                num_single_layers=1,
                attention_head_dim=16,
                num_attention_heads=2,
                joint_attention_dim=32,
                pooled_projection_dim=16,
                axes_dims_rope=(4, 4, 8),
            ),
            vae=_vae(diffusers, 16, scaling_factor=0.3611, shift_factor=0.1159),
            text_encoder=transformers.CLIPTextModel(transformers.CLIPTextConfig(**_CLIP)),
            tokenizer=_clip_tokenizer(transformers),
            text_encoder_2=t5,
            tokenizer_2=t5_tokenizer,
            scheduler=diffusers.FlowMatchEulerDiscreteScheduler(),
        )
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
    return diffusers.StableDiffusionPipeline(
        unet=unet,
        vae=_vae(diffusers, 4),
        text_encoder=transformers.CLIPTextModel(transformers.CLIPTextConfig(**_CLIP)),
        tokenizer=_clip_tokenizer(transformers),
        scheduler=diffusers.EulerDiscreteScheduler(
            beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1
        ),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def save_tiny_pipeline(folder: str | Path, seed: int = 0, kind: str = "sd") -> Path:
    """Build a tiny pipeline and ``save_pretrained`` it to ``folder``; returns the folder."""
    path = Path(folder)
    tiny_pipeline(seed, kind).save_pretrained(str(path))
    return path
