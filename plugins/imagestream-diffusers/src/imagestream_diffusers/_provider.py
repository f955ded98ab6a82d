"""The ``diffusers`` provider: a local diffusion model, streamed step by step.

``validate`` reads the request and finds the model without importing torch;
``stream`` starts a worker thread that runs the pipeline and hands chunks to
the event loop through a bounded queue. Closing the stream (leaving the
``async for``, cancelling its task) stops the sampler at its next step.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Final

from imagestream import Chunk, ImageRequest, Provider, RunContext
from imagestream.provider import Prepared

from ._meta import DEFAULT_MODEL, DESCRIPTION, MODELS, NAME
from ._settings import DTYPES, MAX_SIDE, MAX_STEPS, PREVIEW_MODES, Settings, read_settings

if TYPE_CHECKING:
    from imagestream.provider import OptionSpec

    from ._worker import PipelineCache

__all__ = ["OPTIONS", "DiffusersProvider"]

QUEUE_SIZE = 4
"""Chunks that may wait unread before the sampler pauses for the reader."""


OPTIONS: Final[Mapping[str, OptionSpec]] = {
    "guidance_scale": {
        "type": "number",
        "description": "classifier-free guidance (default: the pipeline's own)",
        "min": 0,
        "max": 100,
    },
    "negative_prompt": {
        "type": "text",
        "description": "what not to draw (the request's negative_prompt, from the command line)",
    },
    "scheduler": {
        "type": "text",
        "description": "sampler: a class among the model's compatibles (EulerDiscreteScheduler, ...) "
        "or euler, euler_a, heun, ddim, ddpm, pndm, lms, dpmpp_2m, dpmpp_2m_karras, unipc, deis, flow_euler",
    },
    "dtype": {
        "type": "choice",
        "description": "weights' precision (auto: float16 on CUDA and MPS, bfloat16 for SD3/Flux "
        "on CUDA where supported, float32 on the CPU)",
        "default": "auto",
        "choices": DTYPES,
    },
    "device": {
        "type": "text",
        "description": "auto, cpu, cuda, cuda:N or mps (auto: CUDA, else Apple's MPS, else the CPU)",
        "default": "auto",
    },
    "variant": {
        "type": "text",
        "description": "the weights' variant to load (fp16: the half-size files many models ship)",
    },
    "download": {
        "type": "flag",
        "description": "let a Hub id missing from the cache be downloaded (off: only the cache is read)",
        "default": False,
    },
    "preview": {
        "type": "choice",
        "description": "previews: latent (cheap, from the denoised estimate), vae (decoded) or none",
        "default": "latent",
        "choices": PREVIEW_MODES,
    },
    "vae_every": {
        "type": "integer",
        "description": "with preview vae: decode every Nth step and the last (latent previews between)",
        "default": 1,
        "min": 1,
        "max": MAX_STEPS,
    },
    "preview_size": {
        "type": "integer",
        "description": "longest side of a preview, in pixels (never more than the image's)",
        "default": 256,
        "min": 16,
        "max": MAX_SIDE,
    },
    "preview_quality": {
        "type": "integer",
        "description": "JPEG quality of the previews",
        "default": 70,
        "min": 1,
        "max": 100,
    },
    "pipeline_args": {
        "type": "mapping",
        "description": "more keyword arguments of the pipeline's call, checked against it "
        "(max_sequence_length, true_cfg_scale, clip_skip, eta, ...)",
    },
    "image": {
        "type": "input",
        "description": "image-to-image: the starting picture (PNG, JPEG or WebP)",
    },
    "strength": {
        "type": "number",
        "description": "image-to-image: how much of the starting picture is redrawn (default: the pipeline's)",
        "min": 0,
        "max": 1,
    },
}
"""The options it accepts, as ``imagestream models --options`` shows them."""


class DiffusersProvider(Provider):
    """Local diffusion models through diffusers, a real preview at every sampler step.

    Args:
        cache: Where loaded pipelines are kept; by default one cache shared by
            every instance in the process (one pipeline per model, device and
            dtype, at most ``IMAGESTREAM_DIFFUSERS_KEEP`` per device).
        queue_size: Chunks that may wait unread before the sampler waits for
            the reader (backpressure).
    """

    name = NAME
    description = DESCRIPTION
    models = MODELS
    default_model = DEFAULT_MODEL
    options = OPTIONS

    def __init__(self, *, cache: PipelineCache | None = None, queue_size: int = QUEUE_SIZE) -> None:
        self._cache = cache
        self.queue_size = max(1, queue_size)

    @property
    def cache(self) -> PipelineCache:
        """The loaded pipelines this provider uses (made on first use)."""
        if self._cache is None:
            from ._worker import shared_cache

            self._cache = shared_cache()
        return self._cache

    def validate(self, request: ImageRequest) -> Prepared:
        """Read the request and find the model, before any work; torch is not imported."""
        checked, settings = read_settings(request, self.options)
        return Prepared(checked, settings)

    async def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Chunk]:
        """Previews and finals as the worker thread makes them; closing stops it at the next step."""
        import asyncio
        import threading

        from ._channel import Channel, End
        from ._worker import run_generation

        settings = context.prepared_as(Settings) or self.validate(request).settings
        channel = Channel(asyncio.get_running_loop(), self.queue_size)
        worker = threading.Thread(
            target=run_generation,
            args=(settings, channel, self.cache),
            name="imagestream-diffusers",
            # A process that exits (Ctrl-C while a model loads) does not wait for it.
            daemon=True,
        )
        worker.start()
        try:
            while True:
                item = await channel.get()
                if isinstance(item, End):
                    if item.error is not None:
                        raise item.error
                    return
                yield item
        finally:
            # Leaving early (a break, an error, a cancelled task): the worker
            # sees this at its next step, stops sampling and ends.
            channel.cancel()
