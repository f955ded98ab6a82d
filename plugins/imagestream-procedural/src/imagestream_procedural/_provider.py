"""The ``procedural`` provider: validate the request, then stream frames and the final."""

from __future__ import annotations

import io
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import attrs

from imagestream import (
    Chunk,
    ConfigurationError,
    ImageData,
    ImageFinal,
    ImagePreview,
    ImageRequest,
    Provider,
    RunContext,
    TextDelta,
    Usage,
    ValidationError,
)
from imagestream.provider import Options

from ._meta import (
    DEFAULT_MODEL,
    DESCRIPTION,
    MODELS,
    NAME,
    OPTIONS,
    PREVIEW_FORMAT,
    PREVIEW_QUALITY,
)

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = ["ProceduralProvider"]

DEFAULT_SIZE = (512, 512)
DEFAULT_STEPS = 20
MAX_N = 8
FORMATS = {
    "png": ("PNG", "image/png"),
    "jpeg": ("JPEG", "image/jpeg"),
    "jpg": ("JPEG", "image/jpeg"),
    "webp": ("WEBP", "image/webp"),
}


def _encode(image: Image, fmt: str, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    if fmt == "PNG":
        # Level 1 is ~4x faster than the default and only slightly larger for art like this.
        image.save(buffer, "PNG", compress_level=1)
    else:
        image.save(buffer, fmt, quality=quality)
    return buffer.getvalue()


def _preview_steps(steps: int, wanted: int | None) -> set[int]:
    """Which steps to send as previews: all of them, or ``wanted`` evenly spaced."""
    if wanted is None or wanted >= steps:
        return set(range(steps))
    if wanted <= 0:
        return set()
    # Spread them over the run, always ending on the last step.
    return {round((i + 1) * steps / wanted) - 1 for i in range(wanted)}


class ProceduralProvider(Provider):
    """Draws the prompt procedurally, offline, streaming every sampler step."""

    name = NAME
    description = DESCRIPTION
    models = MODELS
    default_model = DEFAULT_MODEL
    options = OPTIONS

    def validate(self, request: ImageRequest) -> ImageRequest:
        """Fill in defaults and refuse what this provider cannot do, before any work."""
        from ._limits import MAX_SIDE, MAX_STEPS, MIN_SIDE

        if request.model not in (None, DEFAULT_MODEL):
            raise ConfigurationError(
                f"procedural: unknown model {request.model!r}",
                hint="the only model is procedural-1",
            )
        # Unknown names are refused here, with "did you mean".
        options = Options(request.options, provider=self.name, known=self.options)
        options.choice("preview_format", ("png", "jpeg", "jpg", "webp"))
        options.integer("preview_quality", low=1, high=100)
        width, height = request.dimensions or DEFAULT_SIZE
        if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
            raise ConfigurationError(
                f"procedural: size {width}x{height} out of range",
                hint=f"each side must be {MIN_SIDE}..{MAX_SIDE}",
            )
        steps = request.steps if request.steps is not None else DEFAULT_STEPS
        if not 1 <= steps <= MAX_STEPS:
            raise ConfigurationError(f"procedural: steps must be 1..{MAX_STEPS}, not {steps}")
        if not 1 <= request.n <= MAX_N:
            raise ConfigurationError(f"procedural: n must be 1..{MAX_N}, not {request.n}")
        fmt = (request.output_format or "png").lower()
        if fmt not in FORMATS:
            raise ConfigurationError(
                f"procedural: output format {fmt!r} not supported", hint="use png, jpeg or webp"
            )
        if request.partial_images is not None and request.partial_images < 0:
            raise ConfigurationError("procedural: partial_images must be >= 0")
        if request.partial_images is not None and request.partial_images > steps:
            raise ValidationError(
                f"procedural: partial_images={request.partial_images} is more than "
                f"steps={steps}: there is one preview per step at most",
                hint=f"pass partial_images between 0 and {steps}, or more steps",
            )
        seed = request.seed if request.seed is not None else secrets.randbelow(2**32)
        return attrs.evolve(
            request,
            size=f"{width}x{height}",
            steps=steps,
            seed=seed,
            output_format=fmt,
            model=request.model or self.default_model,
        )

    async def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Chunk]:
        """Yield a description, then per sample the previews and the final image."""
        # Imported here, not at the top: the plugin manager imports this module
        # at start-up, and asyncio alone would cost ``imagestream --help`` 20 ms.
        import asyncio

        from ._art import denoise_frames, parse_prompt, render

        width, height = request.dimensions or DEFAULT_SIZE
        steps = request.steps or DEFAULT_STEPS
        seed = request.seed or 0
        final_fmt, final_mime = FORMATS[request.output_format or "png"]
        # None means "not given", as validate read it.
        preview = request.option("preview_format") or PREVIEW_FORMAT
        preview_fmt, preview_mime = FORMATS[str(preview).strip().lower()]
        quality = request.option("preview_quality")
        quality = int(quality if quality is not None else PREVIEW_QUALITY)
        wanted = _preview_steps(steps, request.partial_images)

        scene = parse_prompt(request.prompt)
        description = scene.describe()
        yield TextDelta(description)
        for sample in range(request.n):
            sample_seed = (seed + sample) % 2**32
            target = await asyncio.to_thread(render, scene, width, height, sample_seed)
            frames = denoise_frames(target, sample_seed, steps)
            index = 0
            while True:
                # Each frame is made and encoded off the event loop, one at a time,
                # so previews stream while the next one is computed.
                item = await asyncio.to_thread(_next_frame, frames, wanted, preview_fmt, quality)
                if item is None:
                    break
                step, sigma, encoded = item
                yield ImagePreview(
                    image=ImageData.from_bytes(encoded, preview_mime),
                    index=index,
                    sample=sample,
                    step=step,
                    total_steps=steps,
                    sigma=sigma,
                    mime_type=preview_mime,
                    width=width,
                    height=height,
                )
                index += 1
            data = await asyncio.to_thread(_encode, target, final_fmt)
            yield ImageFinal(
                image=ImageData.from_bytes(data, final_mime),
                sample=sample,
                mime_type=final_mime,
                width=width,
                height=height,
                revised_prompt=description,
                seed=sample_seed,
            )
        words = len(request.prompt.split())
        yield Usage(input_tokens=words, output_tokens=0, total_tokens=words, cost_usd=0.0)


def _next_frame(
    frames: Iterator[tuple[int, float, Image]], wanted: set[int], fmt: str, quality: int
) -> tuple[int, float, bytes] | None:
    for step, sigma, frame in frames:
        if step in wanted:
            return step, sigma, _encode(frame, fmt, quality)
    return None
