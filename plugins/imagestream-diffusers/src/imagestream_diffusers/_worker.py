"""The generation itself, in a worker thread: load (or reuse) the pipeline, sample, report.

One run, in order:

1. resolve the device (``auto``: CUDA, else MPS, else the CPU) and the dtype;
2. wait for the device: one generation per device at a time, process-wide
   (a second one would only run both out of memory), cancellable while it waits;
3. take the loaded pipeline from :class:`PipelineCache`, or load it with
   ``DiffusionPipeline.from_pretrained`` (never downloading unless the
   request allowed it) and keep it;
4. for each image: a fresh ``torch.Generator`` seeded with ``seed + i``, the
   pipeline called with ``callback_on_step_end``, which turns each step into
   an :class:`~imagestream.ImagePreview` and checks for a cancel; then the
   :class:`~imagestream.ImageFinal`.

Chunks go to the event loop through a :class:`~._channel.Channel`. A cancel
is seen at the next step's callback, which sets the pipeline's ``_interrupt``
and stops the call there: no further step, no final decode.
torch and diffusers are imported here, in the worker, on the first run.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import importlib.util
import inspect
import io
import os
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any, Final, NoReturn

import attrs

from imagestream import (
    ConfigurationError,
    ImageData,
    ImageFinal,
    ImagePreview,
    ImagestreamError,
    ProviderError,
    ValidationError,
)

from ._channel import Channel
from ._models import PROVIDER, ModelSource
from ._previews import (
    LatentFormat,
    StepRecorder,
    denoised,
    detect_format,
    encode_image,
    latent_to_rgb,
    preview_dimensions,
    preview_steps,
    unpack_latents,
    vae_to_rgb,
)
from ._settings import Settings

__all__ = [
    "KEEP_ENV",
    "Loaded",
    "OutOfMemoryError",
    "PipelineCache",
    "SCHEDULER_ALIASES",
    "resolve_device",
    "resolve_dtype",
    "run_generation",
    "shared_cache",
]

KEEP_ENV: Final = "IMAGESTREAM_DIFFUSERS_KEEP"
"""How many loaded pipelines a device keeps (default 1: a new model replaces the last)."""

MIME: Final = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}

# Short names for the usual samplers: (class, config changes).
SCHEDULER_ALIASES: Final[dict[str, tuple[str, dict[str, Any]]]] = {
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "ddim": ("DDIMScheduler", {}),
    "ddpm": ("DDPMScheduler", {}),
    "pndm": ("PNDMScheduler", {}),
    "lms": ("LMSDiscreteScheduler", {}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {}),
    "dpmpp_2m_karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "deis": ("DEISMultistepScheduler", {}),
    "flow_euler": ("FlowMatchEulerDiscreteScheduler", {}),
}


class OutOfMemoryError(ProviderError):
    """The device ran out of memory (CUDA or MPS); the hint says what to lower."""


class _Cancelled(Exception):
    """The stream was closed: stop, quietly."""


def _import(name: str) -> Any:
    return importlib.import_module(name)


# -- devices -----------------------------------------------------------------------


def resolve_device(name: str) -> str:
    """``auto`` → ``cuda:N``, ``mps`` or ``cpu``; refuses a device this torch cannot use."""
    torch = _import("torch")
    cuda = bool(torch.cuda.is_available())
    mps_backend = getattr(torch.backends, "mps", None)
    mps = bool(mps_backend is not None and mps_backend.is_available())
    if name == "auto":
        name = "cuda" if cuda else "mps" if mps else "cpu"
    if name.startswith("cuda"):
        if not cuda:
            build = (
                "a CPU-only build"
                if torch.version.cuda is None
                else "a CUDA build that sees no GPU"
            )
            raise ConfigurationError(
                f"{PROVIDER}: device {name} asked for, but this torch ({torch.__version__}) is {build}",
                hint="install torch for CUDA (see imagestream-diffusers' README), or pass -o device cpu",
            )
        index = int(name.partition(":")[2] or torch.cuda.current_device())
        count = int(torch.cuda.device_count())
        if index >= count:
            raise ConfigurationError(
                f"{PROVIDER}: no device {name}: this machine has {count} CUDA device(s)",
                hint=f"use cuda:0 to cuda:{count - 1}",
            )
        return f"cuda:{index}"
    if name == "mps" and not mps:
        raise ConfigurationError(
            f"{PROVIDER}: device mps asked for, but Apple's MPS is not available here",
            hint="it needs Apple silicon and a macOS build of torch; or pass -o device cpu",
        )
    return name


def resolve_dtype(name: str, device: str, class_name: str | None) -> str:
    """``auto`` → float16 on a GPU (bfloat16 for SD3/Flux on CUDA that has it), float32 on the CPU."""
    if name != "auto":
        return name
    if device.startswith("cuda"):
        torch = _import("torch")
        modern = bool(class_name and class_name.startswith(("Flux", "StableDiffusion3")))
        return "bfloat16" if modern and torch.cuda.is_bf16_supported() else "float16"
    if device == "mps":
        return "float16"
    return "float32"


_device_locks: dict[str, threading.Lock] = {}
_device_locks_guard = threading.Lock()


def device_lock(device: str) -> threading.Lock:
    """The one lock of ``device``: a generation holds it from loading to its last image."""
    with _device_locks_guard:
        return _device_locks.setdefault(device, threading.Lock())


def _free_memory(device: str) -> None:
    gc.collect()
    torch = _import("torch")
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    elif device == "mps":
        torch.mps.empty_cache()


# -- loaded pipelines ---------------------------------------------------------------


@attrs.define
class Loaded:
    """A pipeline on its device, with what the runs need to know about it.

    Attributes:
        pipe: The text-to-image pipeline.
        scheduler: The scheduler it came with (runs that pick another put it back).
        latent_format: How its latents map to RGB, when known.
        image_to_image: Its image-to-image sibling (same weights), made on first use.
    """

    pipe: Any
    scheduler: Any
    latent_format: LatentFormat | None
    image_to_image: Any = None


CacheKey = tuple[str, str, str, str]


class PipelineCache:
    """Loaded pipelines by (model, device, dtype, variant), at most ``keep`` per device.

    A pipeline is only used and replaced under its device's lock, so a
    pipeline is never dropped while it runs.
    """

    def __init__(self, keep: int | None = None) -> None:
        if keep is None:
            keep = int(os.environ.get(KEEP_ENV) or 1)
        self.keep = max(1, keep)
        self._entries: OrderedDict[CacheKey, Loaded] = OrderedDict()
        self._guard = threading.Lock()

    def get(self, key: CacheKey) -> Loaded | None:
        """The pipeline loaded for ``key``, if any (and mark it most recently used)."""
        with self._guard:
            loaded = self._entries.get(key)
            if loaded is not None:
                self._entries.move_to_end(key)
            return loaded

    def put(self, key: CacheKey, loaded: Loaded) -> None:
        """Keep ``loaded``; drop the least recently used of its device beyond ``keep``."""
        device = key[1]
        with self._guard:
            self._entries[key] = loaded
            same_device = [k for k in self._entries if k[1] == device]
            dropped = same_device[: max(0, len(same_device) - self.keep)]
            for old in dropped:
                del self._entries[old]
        if dropped:
            _free_memory(device)

    def make_room(self, device: str) -> None:
        """Before loading a new model on ``device``: drop what it would push out anyway."""
        with self._guard:
            same_device = [k for k in self._entries if k[1] == device]
            dropped = same_device[: max(0, len(same_device) - self.keep + 1)]
            for old in dropped:
                del self._entries[old]
        if dropped:
            _free_memory(device)

    def entries(self) -> list[CacheKey]:
        """What is loaded, least recently used first."""
        with self._guard:
            return list(self._entries)

    def find(self, location: str) -> Loaded | None:
        """The most recently used pipeline loaded from ``location`` (a folder or Hub id), if any."""
        with self._guard:
            for key in reversed(self._entries):
                if key[0] == location or key[0].startswith(f"{location}@"):
                    return self._entries[key]
        return None

    def clear(self) -> None:
        """Drop every pipeline."""
        with self._guard:
            devices = {key[1] for key in self._entries}
            self._entries.clear()
        for device in devices:
            _free_memory(device)


_shared: PipelineCache | None = None
_shared_guard = threading.Lock()


def shared_cache() -> PipelineCache:
    """The process's one :class:`PipelineCache`, shared by every provider made without one."""
    global _shared
    with _shared_guard:
        if _shared is None:
            _shared = PipelineCache()
        return _shared


def _how_to_get(source: ModelSource) -> str:
    if source.cache_dir is None:
        return (
            "check that the folder holds a whole pipeline (model_index.json and each part's folder)"
        )
    return (
        f"download it once with 'hf download {source.name}', or pass -o download true; "
        "set HF_HOME or HF_HUB_CACHE if your cache is elsewhere"
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _requires(pipe: Any, name: str) -> bool:
    parameter = inspect.signature(pipe.__call__).parameters.get(name)
    return parameter is not None and parameter.default is inspect.Parameter.empty


def _check_pipeline(pipe: Any, source: ModelSource) -> None:
    parameters = inspect.signature(pipe.__call__).parameters
    cls = type(pipe).__name__
    if "prompt" not in parameters:
        raise ConfigurationError(
            f"{PROVIDER}: {source.name} is a {cls}, which does not draw from a prompt",
            hint="use a text-to-image model: Stable Diffusion 1.x/2.x, SDXL, SD3 or Flux",
        )
    if "callback_on_step_end" not in parameters:
        raise ConfigurationError(
            f"{PROVIDER}: {source.name} is a {cls}, which cannot report its steps (no "
            "callback_on_step_end): no previews, no cancelling",
            hint="use a pipeline of diffusers 0.25 or later: Stable Diffusion, SDXL, SD3 or Flux",
        )


def _dtype_keyword(version: str) -> str:
    """``dtype`` from diffusers 0.42 on (where ``torch_dtype`` is deprecated), else ``torch_dtype``."""
    numbers = re.findall(r"\d+", version)[:2]
    release = tuple(int(number) for number in numbers)
    return "dtype" if release >= (0, 42) else "torch_dtype"


@contextlib.contextmanager
def _quiet_loading(quiet: bool) -> Iterator[None]:
    """diffusers' and transformers' loading bars off while ``quiet`` (imagestream shows progress).

    Only for loads from disk: a download keeps its progress bars.
    """
    silenced: list[Any] = []
    if quiet:
        for name in ("diffusers.utils.logging", "transformers.utils.logging"):
            try:
                module = _import(name)
                if module.is_progress_bar_enabled():
                    module.disable_progress_bar()
                    silenced.append(module)
            except (ImportError, AttributeError):  # pragma: no cover - other versions
                continue
    try:
        yield
    finally:
        for module in silenced:
            module.enable_progress_bar()


def load_pipeline(settings: Settings, device: str, dtype: str) -> Loaded:
    """Load the model with ``from_pretrained`` (the path users take) and move it to ``device``."""
    torch = _import("torch")
    diffusers = _import("diffusers")
    source = settings.source
    try:
        with _quiet_loading(source.local_files_only):
            pipe = diffusers.DiffusionPipeline.from_pretrained(
                source.location,
                **{_dtype_keyword(diffusers.__version__): getattr(torch, dtype)},
                local_files_only=source.local_files_only,
                cache_dir=source.cache_dir,
                variant=settings.variant,
                **dict.fromkeys(source.absent),
                # Without accelerate diffusers loads the plain way anyway; saying
                # so spares every first run its warning.
                **({} if importlib.util.find_spec("accelerate") else {"low_cpu_mem_usage": False}),
            )
    except ImportError as exc:
        raise ConfigurationError(
            f"{PROVIDER}: {source.name} needs a package that is not installed: {_first_line(exc)}",
            hint="pip install the package the message names",
        ) from exc
    except OSError as exc:
        raise ConfigurationError(
            f"{PROVIDER}: cannot load {source.name}: {_first_line(exc)}", hint=_how_to_get(source)
        ) from exc
    except (ValueError, AttributeError, TypeError, KeyError) as exc:
        raise ConfigurationError(
            f"{PROVIDER}: cannot load {source.name} as a diffusers pipeline: {_first_line(exc)}",
            hint="give a text-to-image pipeline (Stable Diffusion 1.x/2.x, SDXL, SD3, Flux)"
            + (f", or drop -o variant {settings.variant}" if settings.variant else ""),
        ) from exc
    if not isinstance(pipe, diffusers.DiffusionPipeline):
        raise ConfigurationError(f"{PROVIDER}: {source.name} did not load as a pipeline")
    if _requires(pipe, "image"):
        # An image-to-image (or inpainting) folder: draw with its text-to-image sibling.
        try:
            pipe = diffusers.AutoPipelineForText2Image.from_pipe(pipe)
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(
                f"{PROVIDER}: {source.name} is a {type(pipe).__name__}, which needs an input image "
                "and has no text-to-image sibling",
                hint="use a text-to-image model: Stable Diffusion 1.x/2.x, SDXL, SD3 or Flux",
            ) from exc
    _check_pipeline(pipe, source)
    pipe.set_progress_bar_config(disable=True)
    pipe = pipe.to(device)
    vae = getattr(pipe, "vae", None)
    latent_format = detect_format(type(pipe).__name__, getattr(vae, "config", None))
    return Loaded(pipe=pipe, scheduler=pipe.scheduler, latent_format=latent_format)


def image_to_image(loaded: Loaded, source: ModelSource) -> Any:
    """The image-to-image pipeline that shares ``loaded``'s weights."""
    if loaded.image_to_image is None:
        diffusers = _import("diffusers")
        try:
            pipe = diffusers.AutoPipelineForImage2Image.from_pipe(loaded.pipe)
        except (ValueError, KeyError, TypeError) as exc:
            raise ValidationError(
                f"{PROVIDER}: {source.name} ({type(loaded.pipe).__name__}) cannot do image-to-image",
                hint="drop -o image, or use a model diffusers has an image-to-image pipeline for",
            ) from exc
        pipe.set_progress_bar_config(disable=True)
        loaded.image_to_image = pipe
    return loaded.image_to_image


def pick_scheduler(current: Any, name: str | None) -> Any:
    """A fresh scheduler of the class ``name`` names, from ``current``'s config; ``current`` if none."""
    if name is None:
        return current
    from imagestream.provider import read_choice

    usable: dict[str, Any] = {}
    missing: dict[str, str] = {}
    for cls in (type(current), *getattr(current, "compatibles", ())):
        module = getattr(cls, "__module__", "")
        if ".dummy_" in module:  # a stand-in for a class whose extra package is absent
            missing[cls.__name__] = module.rpartition("dummy_")[2].removesuffix("_objects")
        else:
            usable[cls.__name__] = cls
    aliases = {alias: spec for alias, spec in SCHEDULER_ALIASES.items() if spec[0] in usable}
    wanted = name.strip()
    target = SCHEDULER_ALIASES.get(wanted.lower(), (wanted, {}))[0]
    if target in missing:
        needs = missing[target].replace("torch_and_", "").replace("_and_", " and ")
        raise ConfigurationError(
            f"{PROVIDER}: scheduler {target} needs {needs}", hint=f"pip install {needs}"
        )
    chosen = read_choice(wanted, "scheduler", sorted(usable) + sorted(aliases), provider=PROVIDER)
    class_name, changes = aliases.get(chosen, (chosen, {}))
    return usable[class_name].from_config(current.config, **changes)


# -- one run ------------------------------------------------------------------------


@attrs.define
class _Progress:
    """How far a run got: a ValueError before the first step is the request's fault."""

    stepped: bool = False


@attrs.define
class _Run:
    """What the step callback of one image needs, and what it counts."""

    progress: _Progress
    settings: Settings
    channel: Channel
    pipe: Any
    recorder: StepRecorder
    latent_format: LatentFormat | None
    size: tuple[int, int] | None
    sample: int
    index: int = 0
    steps: int = 0
    wanted: frozenset[int] | None = None

    def on_step_end(
        self, pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]
    ) -> dict[str, Any]:
        """``callback_on_step_end``: a preview of this step, unless cancelled."""
        if self.channel.abandoned():
            self.stop(pipe)
        self.steps += 1
        self.progress.stepped = True
        captured = self.recorder.take()
        total = int(getattr(pipe, "num_timesteps", 0) or self.settings.steps or step + 1)
        if self.wanted is None:
            self.wanted = frozenset(preview_steps(total, self.settings.partial_images))
        if self.settings.preview == "none" or step not in self.wanted:
            return {}
        latents = None
        if captured is not None:
            latents = denoised(pipe.scheduler, captured)
        if latents is None:
            latents = tensors.get("latents")
        decode = self.settings.preview == "vae" and (
            (step + 1) % self.settings.vae_every == 0 or step + 1 >= total
        )
        chunk = self.preview(latents, decode, step, total, captured.sigma if captured else None)
        if chunk is not None and not self.channel.put(chunk):
            self.stop(pipe)
        return {}

    @staticmethod
    def stop(pipe: Any) -> NoReturn:
        """Stop sampling now: no further step, and no decode of a picture nobody will see.

        The pipeline's own interrupt flag is set too (its loop would skip the
        remaining steps, then still decode); the exception ends the call here.
        """
        pipe._interrupt = True
        raise _Cancelled

    def preview(
        self, latents: Any, decode: bool, step: int, total: int, sigma: float | None
    ) -> ImagePreview | None:
        """The preview of one step, or ``None`` if its latents cannot be shown."""
        if latents is None:
            return None
        pipe = self.pipe
        scale = int(getattr(pipe, "vae_scale_factor", 8) or 8)
        if latents.ndim == 3:
            if self.size is None:
                return None
            try:
                latents = unpack_latents(latents, self.size[1], self.size[0], scale)
            except ValueError:
                return None
        if latents.ndim != 4:
            return None
        latent = latents[:1]
        image_size = self.size or (latent.shape[-1] * scale, latent.shape[-2] * scale)
        if decode and getattr(pipe, "vae", None) is not None:
            pixels = vae_to_rgb(_decode(pipe.vae, latent))
        else:
            decode = False
            pixels = latent_to_rgb(latent[0], self.latent_format)
        dimensions = preview_dimensions(
            (latent.shape[-1], latent.shape[-2]), image_size, self.settings.preview_size
        )
        data, (width, height) = encode_image(
            pixels, dimensions, "jpeg", self.settings.preview_quality
        )
        chunk = ImagePreview(
            ImageData.from_bytes(data, "image/jpeg"),
            index=self.index,
            sample=self.sample,
            step=step,
            total_steps=total,
            sigma=sigma,
            mime_type="image/jpeg",
            width=width,
            height=height,
            extra={"preview": "vae" if decode else "latent"},
        )
        self.index += 1
        return chunk


def _decode(vae: Any, latent: Any) -> Any:
    """The VAE's picture ``(3, h, w)`` of one latent ``(1, c, h, w)`` in the denoiser's space.

    A VAE that overflows in float16 (SDXL's: ``force_upcast``) decodes in
    float32, as the pipelines do for their final image.
    """
    torch = _import("torch")
    config = vae.config
    z = latent / config.scaling_factor + (getattr(config, "shift_factor", None) or 0.0)
    upcast = vae.dtype == torch.float16 and bool(getattr(config, "force_upcast", False))
    if upcast:
        vae.to(torch.float32)
    try:
        return vae.decode(z.to(vae.dtype), return_dict=False)[0][0]
    finally:
        if upcast:
            vae.to(torch.float16)


def _pil_image(settings: Settings, size: tuple[int, int] | None) -> Any:
    from PIL import Image

    assert settings.image is not None
    picture = Image.open(io.BytesIO(settings.image.data)).convert("RGB")
    if size is not None and picture.size != size:
        picture = picture.resize(size, Image.Resampling.LANCZOS)
    return picture


# The pipeline's arguments the provider sets itself, with the setting to use instead.
_MANAGED: Final[dict[str, str | None]] = {
    "prompt": "the request's prompt",
    "negative_prompt": "the request's negative_prompt, or -o negative_prompt",
    "num_inference_steps": "the request's steps (--steps)",
    "guidance_scale": "-o guidance_scale",
    "strength": "-o strength",
    "image": "-o image",
    "height": "the request's size (--size)",
    "width": "the request's size (--size)",
    "generator": "the request's seed (--seed)",
    "num_images_per_prompt": "the request's n (-n)",
    "output_type": None,
    "return_dict": None,
    "callback": None,
    "callback_steps": None,
    "callback_on_step_end": None,
    "callback_on_step_end_tensor_inputs": None,
}


def _call_arguments(
    pipe: Any, settings: Settings, loaded: Loaded
) -> tuple[dict[str, Any], tuple[int, int] | None]:
    """The keyword arguments of the pipeline call, and the image size when it is known."""
    parameters = inspect.signature(pipe.__call__).parameters
    cls = type(pipe).__name__
    arguments: dict[str, Any] = {"prompt": settings.prompt}

    def give(name: str, value: object, what: str) -> None:
        if value is None:
            return
        if name not in parameters:
            raise ValidationError(f"{PROVIDER}: {cls} takes no {what}")
        arguments[name] = value

    for name, value in settings.pipeline_args.items():
        if name in _MANAGED:
            raise ConfigurationError(
                f"{PROVIDER}: pipeline_args may not set {name}",
                hint=_MANAGED[name] or "the provider sets it",
            )
        if name not in parameters:
            from imagestream.provider import did_you_mean

            guess = did_you_mean(name, [p for p in parameters if p not in _MANAGED])
            raise ConfigurationError(
                f"{PROVIDER}: {cls} takes no {name}"
                + (f" (did you mean {guess!r}?)" if guess else ""),
                hint="pipeline_args are passed to the pipeline's call as they are",
            )
        arguments[name] = value
    give("negative_prompt", settings.negative_prompt, "negative prompt")
    give("num_inference_steps", settings.steps, "steps")
    give("guidance_scale", settings.guidance_scale, "guidance_scale")
    give("strength", settings.strength, "strength")
    size: tuple[int, int] | None = None
    if settings.width is not None and settings.height is not None:
        size = (settings.width, settings.height)
    multiple = int(getattr(pipe, "vae_scale_factor", 8) or 8)
    if loaded.latent_format is not None and loaded.latent_format.packed:
        multiple *= 2
    if settings.image is not None:
        if size is None and settings.image.size is not None:
            width, height = settings.image.size
            size = (
                max(multiple, width - width % multiple),
                max(multiple, height - height % multiple),
            )
        arguments["image"] = _pil_image(settings, size)
    if size is None:
        sample_size = getattr(pipe, "default_sample_size", None)
        if sample_size is None:
            unet = getattr(pipe, "unet", None)
            sample_size = getattr(getattr(unet, "config", None), "sample_size", None)
        if isinstance(sample_size, int):
            size = (sample_size * int(getattr(pipe, "vae_scale_factor", 8) or 8),) * 2
    if size is not None and "height" in parameters and "width" in parameters:
        if size[0] % multiple or size[1] % multiple:
            raise ValidationError(
                f"{PROVIDER}: {cls} needs a size in multiples of {multiple}, not {size[0]}x{size[1]}"
            )
        arguments["width"], arguments["height"] = size
    elif settings.width is not None and settings.image is None:
        raise ValidationError(f"{PROVIDER}: {cls} takes no size")
    return arguments, size


def _translate(error: BaseException, stepped: bool) -> BaseException:
    """The typed error for what a run raised."""
    if isinstance(error, ImagestreamError):
        return error
    torch = sys.modules.get("torch")
    oom = tuple(
        kind
        for kind in (
            getattr(torch, "OutOfMemoryError", None),
            getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None),
        )
        if isinstance(kind, type)
    )
    text = _first_line(error)
    if isinstance(error, oom) or (
        isinstance(error, RuntimeError) and "out of memory" in text.lower()
    ):
        return OutOfMemoryError(
            f"the device ran out of memory: {text}",
            provider=PROVIDER,
            code="out_of_memory",
            hint="ask for a smaller size or fewer images (n), use -o dtype float16 (bfloat16 "
            "for SD3/Flux) or -o variant fp16, close other programs using the GPU, "
            f"or run on the CPU with -o device cpu; {KEEP_ENV}=1 keeps one model loaded",
        )
    if isinstance(error, ValueError) and not stepped:
        # The pipeline's own checks (check_inputs) run before the first step.
        return ValidationError(f"{PROVIDER}: {text}")
    return ProviderError(f"generation failed: {type(error).__name__}: {text}", provider=PROVIDER)


def run_generation(settings: Settings, channel: Channel, cache: PipelineCache) -> None:
    """The worker thread's body: generate, send every chunk, then :meth:`Channel.close`."""
    progress = _Progress()
    try:
        _generate(settings, channel, cache, progress)
    except _Cancelled:
        channel.close()
    except BaseException as exc:
        try:
            error = _translate(exc, progress.stepped)
        except BaseException as failure:  # never leave the loop waiting
            error = failure
        if error is not exc:
            error.__cause__ = exc
        channel.close(error)
    else:
        channel.close()


def _libraries() -> Any:
    """torch (diffusers and transformers checked too), or a ConfigurationError saying what to install."""
    try:
        torch = _import("torch")
        _import("diffusers")
        _import("transformers")
    except ImportError as exc:
        raise ConfigurationError(
            f"{PROVIDER}: {exc.name or 'a library'} is not installed ({_first_line(exc)})",
            hint="install torch for your machine first (CPU, CUDA or Apple silicon: see "
            "imagestream-diffusers' README), then pip install diffusers transformers",
        ) from exc
    return torch


def _generate(
    settings: Settings, channel: Channel, cache: PipelineCache, progress: _Progress
) -> None:
    torch = _libraries()
    device = resolve_device(settings.device)
    dtype = resolve_dtype(settings.dtype, device, settings.source.class_name)
    lock = device_lock(device)
    if not channel.wait(lock):
        raise _Cancelled
    try:
        key: CacheKey = (settings.source.key, device, dtype, settings.variant or "")
        loaded = cache.get(key)
        if loaded is None:
            cache.make_room(device)
            loaded = load_pipeline(settings, device, dtype)
            cache.put(key, loaded)
        if channel.abandoned():
            raise _Cancelled
        pipe = loaded.pipe if settings.image is None else image_to_image(loaded, settings.source)
        original = pipe.scheduler
        scheduler = pick_scheduler(loaded.scheduler, settings.scheduler)
        arguments, size = _call_arguments(pipe, settings, loaded)
        pipe.scheduler = scheduler
        recorder = StepRecorder(scheduler)
        try:
            for sample in range(settings.n):
                seed = settings.seed_of(sample)
                run = _Run(
                    progress=progress,
                    settings=settings,
                    channel=channel,
                    pipe=pipe,
                    recorder=recorder,
                    latent_format=loaded.latent_format,
                    size=size,
                    sample=sample,
                )
                result = pipe(
                    **arguments,
                    generator=torch.Generator("cpu").manual_seed(seed),
                    callback_on_step_end=run.on_step_end,
                    output_type="pil",
                )
                if channel.abandoned():
                    raise _Cancelled
                data, (width, height) = encode_image(result.images[0], None, settings.output_format)
                final = ImageFinal(
                    ImageData.from_bytes(data, MIME[settings.output_format]),
                    sample=sample,
                    mime_type=MIME[settings.output_format],
                    width=width,
                    height=height,
                    seed=seed,
                    extra={
                        "scheduler": type(scheduler).__name__,
                        "steps": run.steps,
                        "device": device,
                        "dtype": dtype,
                    },
                )
                if not channel.put(final):
                    raise _Cancelled
        finally:
            recorder.remove()
            pipe.scheduler = original
    except BaseException:
        if device != "cpu":
            with contextlib.suppress(Exception):  # freeing is best effort
                _free_memory(device)
        raise
    finally:
        lock.release()
