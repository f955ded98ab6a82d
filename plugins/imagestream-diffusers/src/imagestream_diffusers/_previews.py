"""Previews from latents: the denoised estimate, turned into RGB cheaply or by the VAE.

At each sampler step the scheduler has the noisy latent and the model's
output. From them the *denoised estimate* x0 follows (what the model thinks
the finished latent is): far cleaner than the noisy latent itself, which at
the first steps is mostly noise. :class:`StepRecorder` wraps the scheduler's
``step`` to see them; :func:`denoised` computes x0 for the parametrisation the
scheduler works in.

A latent becomes a picture either by the VAE (``preview="vae"``: exact, a
full decode) or by a linear map of its channels to RGB (``preview="latent"``:
a matrix product on a latent 8x smaller than the image on each side). The
factors are the published per-format fits for SD 1.x/2.x, SDXL, SD3 and Flux;
a latent of another kind shows its first three channels, normalised.

torch is imported by the functions that use it, never by this module.
"""

from __future__ import annotations

import functools
import importlib
import io
import math
from collections.abc import Callable, Sequence
from typing import Any, Final

import attrs

__all__ = [
    "LATENT_FORMATS",
    "Captured",
    "LatentFormat",
    "StepRecorder",
    "denoised",
    "detect_format",
    "encode_image",
    "latent_to_rgb",
    "noise_level",
    "parametrization",
    "preview_dimensions",
    "unpack_latents",
    "vae_to_rgb",
]


def _torch() -> Any:
    return importlib.import_module("torch")


@attrs.frozen
class LatentFormat:
    """How one family's latents map to RGB: ``rgb = latent · factors + bias``, in [-1, 1].

    Attributes:
        name: ``sd1``, ``sdxl``, ``sd3`` or ``flux``.
        channels: Latent channels.
        factors: One ``(r, g, b)`` row per channel.
        bias: Added to each pixel's ``(r, g, b)``.
        packed: True when the pipeline keeps its latents as 2x2 patches (Flux).
    """

    name: str
    channels: int
    factors: tuple[tuple[float, float, float], ...]
    bias: tuple[float, float, float] = (0.0, 0.0, 0.0)
    packed: bool = False


# Linear latent-to-RGB fits (one row per latent channel), as published for
# each VAE; they apply to latents in the space the denoiser works in (scaled,
# and shifted where the VAE has a shift factor), which is what a pipeline's
# loop holds.
LATENT_FORMATS: Final[dict[str, LatentFormat]] = {
    "sd1": LatentFormat(
        "sd1",
        4,
        (
            (0.3512, 0.2297, 0.3227),
            (0.3250, 0.4974, 0.2350),
            (-0.2829, 0.1762, 0.2721),
            (-0.2120, -0.2616, -0.7177),
        ),
    ),
    "sdxl": LatentFormat(
        "sdxl",
        4,
        (
            (0.3651, 0.4232, 0.4341),
            (-0.2533, -0.0042, 0.1068),
            (0.1076, 0.1111, -0.0362),
            (-0.3165, -0.2492, -0.2188),
        ),
        (0.1084, -0.0175, -0.0011),
    ),
    "sd3": LatentFormat(
        "sd3",
        16,
        (
            (-0.0922, -0.0175, 0.0749),
            (0.0311, 0.0633, 0.0954),
            (0.1994, 0.0927, 0.0458),
            (0.0856, 0.0339, 0.0902),
            (0.0587, 0.0272, -0.0496),
            (-0.0006, 0.1104, 0.0309),
            (0.0978, 0.0306, 0.0427),
            (-0.0042, 0.1038, 0.1358),
            (-0.0194, 0.0020, 0.0669),
            (-0.0488, 0.0130, -0.0268),
            (0.0922, 0.0988, 0.0951),
            (-0.0278, 0.0524, -0.0542),
            (0.0332, 0.0456, 0.0895),
            (-0.0069, -0.0030, -0.0810),
            (-0.0596, -0.0465, -0.0293),
            (-0.1448, -0.1463, -0.1189),
        ),
        (0.2394, 0.2135, 0.1925),
    ),
    "flux": LatentFormat(
        "flux",
        16,
        (
            (-0.0346, 0.0244, 0.0681),
            (0.0034, 0.0210, 0.0687),
            (0.0275, -0.0668, -0.0433),
            (-0.0174, 0.0160, 0.0617),
            (0.0859, 0.0721, 0.0329),
            (0.0004, 0.0383, 0.0115),
            (0.0405, 0.0861, 0.0915),
            (-0.0236, -0.0185, -0.0259),
            (-0.0245, 0.0250, 0.1180),
            (0.1008, 0.0755, -0.0421),
            (-0.0515, 0.0201, 0.0011),
            (0.0428, -0.0012, -0.0036),
            (0.0817, 0.0765, 0.0749),
            (-0.1264, -0.0522, -0.1103),
            (-0.0280, -0.0881, -0.0499),
            (-0.1262, -0.0982, -0.0778),
        ),
        (-0.0329, -0.0718, -0.0851),
        packed=True,
    ),
}

# The VAEs' scaling factors tell the 4- and 16-channel families apart when the
# pipeline's class name does not.
_SDXL_SCALING = 0.13025
_SD3_SHIFT = 0.0609
_FLUX_SHIFT = 0.1159


def _close(value: object, target: float) -> bool:
    return isinstance(value, int | float) and abs(value - target) < 1e-4


def detect_format(pipeline_class: str, vae_config: Any) -> LatentFormat | None:
    """The latent format of a pipeline, from its class name and VAE; ``None`` if unknown."""
    channels = getattr(vae_config, "latent_channels", None)
    scaling = getattr(vae_config, "scaling_factor", None)
    shift = getattr(vae_config, "shift_factor", None)
    if channels == 4:
        if "XL" in pipeline_class or _close(scaling, _SDXL_SCALING):
            return LATENT_FORMATS["sdxl"]
        return LATENT_FORMATS["sd1"]
    if channels == 16:
        if pipeline_class.startswith("Flux") and "Flux2" not in pipeline_class:
            return LATENT_FORMATS["flux"]
        if pipeline_class.startswith("StableDiffusion3"):
            return LATENT_FORMATS["sd3"]
        if _close(shift, _FLUX_SHIFT):
            return LATENT_FORMATS["flux"]
        if _close(shift, _SD3_SHIFT):
            return LATENT_FORMATS["sd3"]
    return None


# -- the denoised estimate -----------------------------------------------------


@attrs.define
class Captured:
    """What the scheduler's last ``step`` saw: its input, the model's output, the noise level.

    Attributes:
        model_output: The (guided) model output the step was given.
        sample: The noisy latent the step was given.
        sigma: The noise level of ``sample``, in the scheduler's own units.
        predicted: The scheduler's own x0, when its output carried one.
    """

    model_output: Any
    sample: Any
    sigma: float | None
    predicted: Any = None


def noise_level(scheduler: Any, timestep: Any, index: int | None) -> float | None:
    """The noise level (sigma) a step started from, in the scheduler's units.

    ``sigmas[index]`` where the scheduler keeps sigmas (the Euler family,
    DPM-Solver, UniPC, flow matching); else ``sqrt((1 - a) / a)`` of its
    ``alphas_cumprod`` at the timestep (DDIM, DDPM, PNDM), which is the same
    scale.
    """
    sigmas = getattr(scheduler, "sigmas", None)
    if sigmas is not None and index is not None and 0 <= index < len(sigmas):
        return float(sigmas[index])
    alphas = getattr(scheduler, "alphas_cumprod", None)
    if alphas is not None:
        try:
            t = int(timestep)
        except (TypeError, ValueError, RuntimeError):
            return None
        if 0 <= t < len(alphas):
            alpha = float(alphas[t])
            if 0 < alpha <= 1:
                return math.sqrt((1 - alpha) / alpha)
    return None


def parametrization(scheduler: Any) -> str:
    """How a scheduler's latents relate to the clean one.

    ``flow``: ``x = (1 - s) x0 + s noise`` (SD3, Flux, flow-sigma solvers);
    ``edm``: the scheduler preconditions the model output itself;
    ``sigma``: ``x = x0 + s noise`` (the Euler/Heun/LMS family, whose first
    latent is scaled up by ``init_noise_sigma``); ``vp``: ``x = a x0 + b noise``
    with ``a^2 + b^2 = 1`` (DDIM, DDPM, PNDM, DPM-Solver, UniPC, DEIS).
    """
    config = getattr(scheduler, "config", {})
    name = type(scheduler).__name__
    if (
        "FlowMatch" in name
        or config.get("prediction_type") == "flow_prediction"
        or config.get("use_flow_sigmas")
    ):
        return "flow"
    if callable(getattr(scheduler, "precondition_outputs", None)):
        return "edm"
    try:
        initial = float(getattr(scheduler, "init_noise_sigma", 1.0))
    except (TypeError, ValueError):
        initial = 1.0
    return "sigma" if initial > 1.0 + 1e-6 else "vp"


def denoised(scheduler: Any, captured: Captured) -> Any:
    """The denoised estimate x0 of the last step, or ``None`` when it cannot be had.

    Clipped as the scheduler clips it (``clip_sample``), so it is the x0 the
    scheduler itself stepped with.
    """
    if captured.predicted is not None:
        return captured.predicted
    x0 = _estimate(scheduler, captured)
    config = getattr(scheduler, "config", {})
    if x0 is not None and config.get("clip_sample"):
        limit = float(config.get("clip_sample_range", 1.0))
        x0 = x0.clamp(-limit, limit)
    return x0


def _estimate(scheduler: Any, captured: Captured) -> Any:
    sigma = captured.sigma
    if sigma is None:
        return None
    x = captured.sample.float()
    out = captured.model_output.float()
    if out.shape != x.shape:
        return None
    kind = parametrization(scheduler)
    prediction = getattr(scheduler, "config", {}).get("prediction_type", "epsilon")
    if kind == "flow":
        return x - sigma * out
    if kind == "edm":
        return scheduler.precondition_outputs(x, out, sigma).float()
    if prediction == "sample":
        return out
    if kind == "sigma":
        if prediction == "v_prediction":
            return out * (-sigma / math.sqrt(sigma * sigma + 1)) + x / (sigma * sigma + 1)
        return x - sigma * out
    # Variance preserving: alpha = 1/sqrt(1 + s^2), beta = s * alpha.
    scale = math.sqrt(1 + sigma * sigma)
    if prediction == "v_prediction":
        return (x - sigma * out) / scale
    return x * scale - sigma * out


class StepRecorder:
    """Wraps a scheduler's ``step`` to keep what the last call saw (:class:`Captured`).

    The wrapper has the original's signature (pipelines inspect it for
    ``eta`` and ``generator``) and returns what it returns. :meth:`remove`
    puts the scheduler back as it was.
    """

    def __init__(self, scheduler: Any) -> None:
        self.scheduler = scheduler
        self.last: Captured | None = None
        original: Callable[..., Any] = scheduler.step

        @functools.wraps(original)
        def step(model_output: Any, timestep: Any, sample: Any, *args: Any, **kwargs: Any) -> Any:
            output = original(model_output, timestep, sample, *args, **kwargs)
            after = getattr(scheduler, "step_index", None)
            index = after - 1 if isinstance(after, int) else None
            self.last = Captured(
                model_output=model_output,
                sample=sample,
                sigma=noise_level(scheduler, timestep, index),
                predicted=getattr(output, "pred_original_sample", None),
            )
            return output

        scheduler.step = step

    def take(self) -> Captured | None:
        """What the last step saw, once (``None`` if no step ran since)."""
        last, self.last = self.last, None
        return last

    def remove(self) -> None:
        """Undo the wrapping."""
        self.scheduler.__dict__.pop("step", None)


# -- latents to pictures ---------------------------------------------------------


def unpack_latents(latents: Any, height: int, width: int, vae_scale_factor: int) -> Any:
    """Flux's packed latents ``(batch, tokens, channels * 4)`` as ``(batch, channels, h, w)``.

    Each token holds a 2x2 patch of latent pixels; ``height`` and ``width``
    are the image's.
    """
    batch, tokens, packed = latents.shape
    rows = 2 * (height // (vae_scale_factor * 2))
    cols = 2 * (width // (vae_scale_factor * 2))
    if packed % 4 or tokens != (rows // 2) * (cols // 2):
        raise ValueError(
            f"latents of shape {tuple(latents.shape)} are not {height}x{width} patches"
        )
    grid = latents.reshape(batch, rows // 2, cols // 2, packed // 4, 2, 2)
    return grid.permute(0, 3, 1, 4, 2, 5).reshape(batch, packed // 4, rows, cols)


@functools.lru_cache(maxsize=16)
def _factors(latent_format: LatentFormat, device: Any) -> tuple[Any, Any]:
    """The format's map straight to bytes, on ``device``: ``(channels, 3)`` factors, ``(3,)`` offset.

    ``byte = (latent · factors + bias + 1) / 2 * 255``, plus 0.5 so that
    truncating to a byte rounds to the nearest.
    """
    torch = _torch()
    factors = torch.tensor(latent_format.factors, dtype=torch.float32, device=device) * 127.5
    offset = (torch.tensor(latent_format.bias, dtype=torch.float32, device=device) + 1.0) * 127.5
    return factors, offset + 0.5


def latent_to_rgb(latent: Any, latent_format: LatentFormat | None) -> Any:
    """One latent ``(channels, h, w)`` as ``h x w x 3`` bytes (a uint8 array on the CPU).

    A handful of torch operations on a few thousand numbers: the sampler's
    own library, whose code is still in the processor's caches after a step
    (numpy's is not, and costs more here for that alone).
    """
    torch = _torch()
    x = latent.float()
    channels, height, width = x.shape
    if latent_format is not None and channels == latent_format.channels:
        factors, offset = _factors(latent_format, x.device)
        rgb = torch.addmm(offset, x.reshape(channels, height * width).t(), factors)
    else:
        # Unknown format: the first three channels, each stretched to 0..255.
        picked = x[:3] if channels >= 3 else x[:1].expand(3, -1, -1)
        low = picked.amin(dim=(1, 2), keepdim=True)
        high = picked.amax(dim=(1, 2), keepdim=True)
        rgb = ((picked - low) * (255.0 / (high - low).clamp_min(1e-6)) + 0.5).permute(1, 2, 0)
    # Truncating after the +0.5 rounds; the bytes come out as h x w x 3.
    return rgb.clamp_(0.0, 255.0).to(torch.uint8).reshape(height, width, 3).cpu().numpy()


def vae_to_rgb(image: Any) -> Any:
    """One decoded image ``(3, h, w)`` in [-1, 1] as ``h x w x 3`` bytes."""
    torch = _torch()
    rgb = ((image.float() + 1.0) * 0.5).clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)
    return rgb.permute(1, 2, 0).cpu().numpy()


def preview_dimensions(
    latent_size: tuple[int, int], image_size: tuple[int, int], longest: int
) -> tuple[int, int]:
    """``(width, height)`` of a preview: the image's shape, its longest side at most ``longest``.

    Never larger than the image itself, never smaller than 1 pixel a side.
    """
    width, height = image_size
    if width <= 0 or height <= 0:
        width, height = latent_size
    scale = min(1.0, longest / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def encode_image(
    pixels: Any, size: tuple[int, int] | None, fmt: str, quality: int = 90
) -> tuple[bytes, tuple[int, int]]:
    """Encode an ``h x w x 3`` uint8 array (or a Pillow image) as ``fmt``, resized to ``size``.

    Returns the bytes and the encoded ``(width, height)``.
    """
    from PIL import Image

    if isinstance(pixels, Image.Image):
        picture = pixels if pixels.mode == "RGB" else pixels.convert("RGB")
    else:
        if not pixels.flags.c_contiguous:
            pixels = pixels.copy(order="C")
        height, width = pixels.shape[:2]
        picture = Image.frombuffer("RGB", (width, height), pixels, "raw", "RGB", 0, 1)
    if size is not None and picture.size != size:
        picture = picture.resize(size, Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    if fmt == "png":
        picture.save(buffer, "PNG")
    elif fmt == "webp":
        picture.save(buffer, "WEBP", quality=quality)
    else:
        picture.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue(), picture.size


def preview_steps(total: int, wanted: int | None) -> Sequence[int]:
    """The steps that get a preview: all, or ``wanted`` spread evenly and ending on the last."""
    if wanted is None or wanted >= total:
        return range(total)
    if wanted <= 0:
        return ()
    return sorted({round((i + 1) * total / wanted) - 1 for i in range(wanted)})
