"""The ``procedural`` provider: validate the request, then stream frames and the final.

Imported when the provider first runs (the plugin registers a
:class:`~imagestream.provider.LazyProvider`), so Pillow and asyncio are
imported here, at the top.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import secrets
import threading
import zlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import attrs
from PIL import Image

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
    PREVIEW_SIZE,
)

if TYPE_CHECKING:
    from ._scene import Scene

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


def _encode(image: Image.Image, fmt: str, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    if fmt == "PNG":
        # Level 1 is ~4x faster than the default and only slightly larger for art
        # like this; run-length matching is faster still, and smaller here.
        image.save(buffer, "PNG", compress_level=1, compress_type=zlib.Z_RLE)
    else:
        image.save(buffer, fmt, quality=quality)
    return buffer.getvalue()


def preview_size(width: int, height: int, longest: int) -> tuple[int, int]:
    """The size of the previews of a ``width`` x ``height`` picture: its longest side at most ``longest``.

    A side is never made shorter than 16 pixels (or the picture's, if that is
    shorter), so very narrow pictures get slightly wider previews.
    """
    from ._limits import MIN_SIDE

    scale = longest / max(width, height)
    if scale >= 1:
        return width, height
    return (
        max(min(width, MIN_SIDE), round(width * scale)),
        max(min(height, MIN_SIDE), round(height * scale)),
    )


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
        options.integer("preview_size", low=MIN_SIDE, high=MAX_SIDE)
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
        """Yield a description, then per sample the previews and the final image.

        Previews are made and encoded at preview size (``preview_size``, the
        longest side), from the final picture scaled down; the final is
        encoded at full size while they are made.
        """
        from ._art import parse_prompt

        width, height = request.dimensions or DEFAULT_SIZE
        steps = request.steps or DEFAULT_STEPS
        seed = request.seed or 0
        final_fmt, final_mime = FORMATS[request.output_format or "png"]
        # None means "not given", as validate read it.
        preview = request.option("preview_format") or PREVIEW_FORMAT
        preview_fmt, preview_mime = FORMATS[str(preview).strip().lower()]
        quality = request.option("preview_quality")
        quality = int(quality if quality is not None else PREVIEW_QUALITY)
        longest = request.option("preview_size")
        small = preview_size(width, height, int(longest if longest is not None else PREVIEW_SIZE))
        wanted = _preview_steps(steps, request.partial_images)

        scene = parse_prompt(request.prompt)
        description = scene.describe()
        yield TextDelta(description)
        plan = _Plan(width, height, steps, small, frozenset(wanted), preview_fmt, quality)
        loop = asyncio.get_running_loop()
        for sample in range(request.n):
            sample_seed = (seed + sample) % 2**32
            # One worker thread draws the picture, then makes and encodes each
            # preview, handing each on as it is ready; the final is encoded in
            # another at the same time (the encoders leave the interpreter free).
            made: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
            stop = threading.Event()

            def post(
                kind: str,
                value: Any,
                made: asyncio.Queue[tuple[str, Any]] = made,
                stop: threading.Event = stop,
            ) -> None:
                if stop.is_set():
                    return  # nobody is listening any more
                with contextlib.suppress(RuntimeError):  # nor is a closed loop
                    loop.call_soon_threadsafe(made.put_nowait, (kind, value))

            def ended(
                done: asyncio.Future[None], made: asyncio.Queue[tuple[str, Any]] = made
            ) -> None:
                if not done.cancelled():
                    done.exception()  # seen here, raised by the loop below if it still runs
                made.put_nowait(("done", done))  # after every post: they came first

            maker = loop.run_in_executor(None, _make_sample, scene, sample_seed, plan, post, stop)
            maker.add_done_callback(ended)
            final: asyncio.Future[bytes] | None = None
            try:
                index = 0
                while True:
                    kind, value = await made.get()
                    if kind == "picture":
                        final = loop.run_in_executor(None, _encode, value, final_fmt)
                    elif kind == "preview":
                        step, sigma, encoded = value
                        yield ImagePreview(
                            image=ImageData.from_bytes(encoded, preview_mime),
                            index=index,
                            sample=sample,
                            step=step,
                            total_steps=steps,
                            sigma=sigma,
                            mime_type=preview_mime,
                            width=small[0],
                            height=small[1],
                        )
                        index += 1
                    else:
                        value.result()  # the worker's exception, if it raised
                        break
                assert final is not None  # the worker posts the picture first
                data = await final
            finally:
                # Left early: the worker stops after the preview it is making.
                stop.set()
                if final is not None:
                    final.cancel()
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


@attrs.frozen
class _Plan:
    """What each sample of a run is made of, read from the request once."""

    width: int
    height: int
    steps: int
    preview_size: tuple[int, int]
    wanted: frozenset[int]
    preview_format: str
    preview_quality: int


def _make_sample(
    scene: Scene, seed: int, plan: _Plan, post: Callable[[str, Any], None], stop: threading.Event
) -> None:
    """Draw one sample and make its previews, in a worker thread, posting each as it is ready.

    Posts ``("picture", image)`` first, then ``("preview", (step, sigma,
    encoded))`` for each wanted step, unless ``stop`` is set.
    """
    from ._art import denoise_frames, render

    picture = render(scene, plan.width, plan.height, seed)
    post("picture", picture)
    if not plan.wanted:
        return
    picture = _shrink(picture, plan.preview_size)
    for step, sigma, frame in denoise_frames(picture, seed, plan.steps, only=plan.wanted):
        if stop.is_set():
            return
        post("preview", (step, sigma, _encode(frame, plan.preview_format, plan.preview_quality)))


def _shrink(picture: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``picture`` at ``size``: box-reduced by a whole factor, then resampled if need be."""
    factor = min(picture.width // size[0], picture.height // size[1])
    if factor >= 2:
        picture = picture.reduce(factor)
    if picture.size != size:
        picture = picture.resize(size, Image.Resampling.BILINEAR)
    return picture
