"""Read a request once into :class:`Settings`, refusing what cannot run, before any work.

Light on purpose: no torch, no diffusers. What can only be checked with the
pipeline loaded (a scheduler among the model's compatibles, a size its VAE
divides, image-to-image support) is checked by the worker, with the same
readers, so the errors are the same kind.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Collection, Mapping
from typing import Any, Final

import attrs

from imagestream import ImageRequest, ValidationError
from imagestream.provider import (
    InputImage,
    Options,
    load_input_image,
    read_choice,
    read_integer,
)

from ._models import PROVIDER, ModelSource, locate_model

__all__ = [
    "DEFAULT_MODEL_ENV",
    "PREVIEW_MODES",
    "Settings",
    "read_settings",
]

DEFAULT_MODEL_ENV: Final = "IMAGESTREAM_DIFFUSERS_MODEL"
"""The model used when a request names none."""

PREVIEW_MODES: Final = ("latent", "vae", "none")
DTYPES: Final = ("auto", "float32", "float16", "bfloat16")
OUTPUT_FORMATS: Final = ("png", "jpeg", "webp")
MAX_SIDE: Final = 4096
MAX_N: Final = 16
MAX_STEPS: Final = 1000
_DEVICE = re.compile(r"auto|cpu|mps|cuda(?::\d+)?")


@attrs.frozen
class Settings:
    """Everything a run needs, read from the request by :func:`read_settings`.

    ``None`` means "the pipeline's own default" (steps, guidance, size, strength).
    """

    source: ModelSource
    prompt: str
    negative_prompt: str | None
    width: int | None
    height: int | None
    steps: int | None
    guidance_scale: float | None
    scheduler: str | None
    seed: int
    n: int
    device: str
    dtype: str
    variant: str | None
    preview: str
    vae_every: int
    preview_size: int
    preview_quality: int
    partial_images: int | None
    image: InputImage | None
    strength: float | None
    output_format: str
    pipeline_args: Mapping[str, Any] = attrs.field(factory=dict)

    def seed_of(self, sample: int) -> int:
        """The seed of image ``sample`` of the batch: the request's seed plus ``sample``."""
        return (self.seed + sample) % 2**64


def read_settings(request: ImageRequest, known: Collection[str]) -> tuple[ImageRequest, Settings]:
    """The request with its defaults filled in, and its settings; ``known``: the option names.

    Raises:
        ConfigurationError: What cannot be read (an unknown option, a model
            that is not there, a device name that is none).
        ValidationError: What is read but refused (numbers out of range,
            ``strength`` without an ``image``).
    """
    options = Options(request.options, provider=PROVIDER, known=known)
    model = request.model or os.environ.get(DEFAULT_MODEL_ENV, "").strip()
    if not model:
        raise options.unreadable(
            "no model named",
            hint=f"pass -m with a diffusers folder or a Hub id in your cache "
            f"(stabilityai/stable-diffusion-xl-base-1.0, ...), or set {DEFAULT_MODEL_ENV}",
        )
    download = options.flag("download", False)
    device = options.text("device", "auto").lower()
    if not _DEVICE.fullmatch(device):
        raise options.unreadable(
            f"unknown device {device!r}", hint="use auto, cpu, cuda, cuda:N or mps"
        )
    dtype = options.choice("dtype", DTYPES, "auto")
    variant = options.text("variant")
    scheduler = options.text("scheduler")
    guidance = options.number("guidance_scale", low=0, high=100)
    preview = options.choice("preview", PREVIEW_MODES, "latent")
    vae_every = options.integer("vae_every", 1, low=1, high=MAX_STEPS)
    preview_size = options.integer("preview_size", 256, low=16, high=MAX_SIDE)
    quality = options.integer("preview_quality", 70, low=1, high=100)
    strength = options.number("strength", low=0, high=1)
    negative = options.text("negative_prompt")
    if negative is not None and request.negative_prompt not in (None, negative):
        raise options.refuse(
            "negative prompt given twice, differently", hint="give negative_prompt once"
        )
    negative = request.negative_prompt or negative
    pipeline_args = dict(options.mapping("pipeline_args") or {})
    raw_image = options.raw("image")
    image = None if raw_image is None else load_input_image(raw_image, "image", provider=PROVIDER)
    if strength is not None and image is None:
        raise options.refuse(
            "strength needs an image", hint="pass -o image FILE for image-to-image"
        )
    if strength == 0:
        raise options.refuse("strength 0 redraws nothing", hint="use a strength above 0, up to 1")

    width = height = None
    if request.dimensions is not None:
        width, height = request.dimensions
        for side, value in (("width", width), ("height", height)):
            read_integer(value, side, provider=PROVIDER, low=8, high=MAX_SIDE)
            if value % 8:
                raise ValidationError(
                    f"{PROVIDER}: {side} {value} is not a multiple of 8",
                    hint="the VAE works on 8-pixel blocks: use 512, 768, 1024, ...",
                )
    steps = request.steps
    if steps is not None:
        read_integer(steps, "steps", provider=PROVIDER, low=1, high=MAX_STEPS)
    read_integer(request.n, "n", provider=PROVIDER, low=1, high=MAX_N)
    partial = request.partial_images
    if partial is not None:
        read_integer(partial, "partial_images", provider=PROVIDER, low=0)
    output_format = read_choice(
        request.output_format or "png", "output_format", (*OUTPUT_FORMATS, "jpg"), provider=PROVIDER
    )
    output_format = "jpeg" if output_format == "jpg" else output_format
    seed = request.seed if request.seed is not None else secrets.randbelow(2**32)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
        raise ValidationError(
            f"{PROVIDER}: seed must be a whole number from 0 to 2**64 - 1, not {seed!r}"
        )
    # Last: the only check that touches the disk.
    source = locate_model(model, download=download)

    settings = Settings(
        source=source,
        prompt=request.prompt,
        negative_prompt=negative,
        width=width,
        height=height,
        steps=steps,
        guidance_scale=guidance,
        scheduler=scheduler,
        seed=seed,
        n=request.n,
        device=device,
        dtype=dtype,
        variant=variant,
        preview=preview,
        vae_every=vae_every,
        preview_size=preview_size,
        preview_quality=quality,
        partial_images=partial,
        image=image,
        strength=strength,
        output_format=output_format,
        pipeline_args=pipeline_args,
    )
    request = attrs.evolve(
        request, model=model, seed=seed, output_format=output_format, negative_prompt=negative
    )
    return request, settings
