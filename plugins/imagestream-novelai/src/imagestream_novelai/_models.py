"""What the plugin knows about NovelAI's image models, samplers, sizes and presets.

Everything here is data: no imports beyond the standard library, so that the
plugin module stays cheap to import.

The prompt presets deserve a word. The NovelAI web app does not send a
"quality" or "undesired content" setting that the server expands: it appends
the quality tags to the prompt and prepends the preset's tags to the negative
prompt itself, and sends ``qualityToggle`` / ``ucPreset`` along as plain
metadata. Independent clients all do the same, and both recorded request
bodies (see the README) show the expanded text. So the plugin expands them
too, from the tables below; what differs between clients is noted next to
the entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

import attrs

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "NAMED_SIZES",
    "NOISE_SCHEDULES",
    "SAMPLERS",
    "UC_PRESET_NUMBERS",
    "Family",
    "ModelSpec",
]

Family = Literal["v3", "v4", "v4.5"]
"""Model generations that need different request bodies."""


@attrs.frozen
class ModelSpec:
    """One NovelAI image model and what its requests look like.

    Attributes:
        id: The model id sent as ``model``.
        family: Which body layout it takes (V4 and V4.5 share the ``v4_prompt`` layout).
        description: One line for ``imagestream providers``.
        quality_tags: Appended to the prompt when the quality toggle is on.
        uc_presets: Preset name -> tags put before the negative prompt.
        streams_by_default: Whether requests go to the streaming endpoint
            unless the ``stream`` option says otherwise.
        max_pixels: Largest ``width * height`` accepted locally.
    """

    id: str
    family: Family
    description: str
    quality_tags: str
    uc_presets: Mapping[str, str]
    streams_by_default: bool = True
    max_pixels: int = 2048 * 1536

    @property
    def is_v4(self) -> bool:
        """True for the V4 and V4.5 models (``v4_prompt`` captions, characters)."""
        return self.family in ("v4", "v4.5")

    @property
    def inpainting_id(self) -> str:
        """The model id used for ``action="infill"``: every model has an inpainting twin."""
        return f"{self.id}-inpainting"


# The numbers the web app sends as ``ucPreset`` for the V4.5 generation. Older
# models used other numberings that clients disagree about; the server only
# records the number (the tags do the work), so one numbering is used for all.
UC_PRESET_NUMBERS: Final[Mapping[str, int]] = {
    "heavy": 0,
    "light": 1,
    "furry_focus": 2,
    "human_focus": 3,
    "none": 4,
}

# Shared tag runs, so each preset below reads as "what is added".
_V45_FULL_HEAVY = (
    "nsfw, lowres, artistic error, film grain, scan artifacts, worst quality, bad quality, "
    "jpeg artifacts, very displeasing, chromatic aberration, dithering, halftone, screentone, "
    "multiple views, logo, too many watermarks, negative space, blank page"
)
_V45_CURATED_HEAVY = (
    "blurry, lowres, upscaled, artistic error, film grain, scan artifacts, worst quality, "
    "bad quality, jpeg artifacts, very displeasing, chromatic aberration, halftone, multiple views, "
    "logo, too many watermarks, negative space, blank page"
)
_V3_HEAVY = (
    "nsfw, lowres, {bad}, error, fewer, extra, missing, worst quality, jpeg artifacts, bad quality, "
    "watermark, unfinished, displeasing, chromatic aberration, signature, extra digits, "
    "artistic error, username, scan, [abstract]"
)

_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        id="nai-diffusion-4-5-full",
        family="v4.5",
        description="NovelAI Diffusion V4.5 Full: streams a preview at every step",
        # Matches the third-party payload fixture; some captures also carry "location".
        quality_tags=", very aesthetic, masterpiece, no text",
        uc_presets={
            "heavy": _V45_FULL_HEAVY,
            "light": (
                "nsfw, lowres, artistic error, scan artifacts, worst quality, bad quality, "
                "jpeg artifacts, multiple views, very displeasing, too many watermarks, "
                "negative space, blank page"
            ),
            "furry_focus": (
                "nsfw, {worst quality}, distracting watermark, unfinished, bad quality, "
                "{widescreen}, upscale, {sequence}, {{grandfathered content}}, blurred foreground, "
                "chromatic aberration, sketch, everyone, [sketch background], simple, [flat colors], "
                "ych (character), outline, multiple scenes, [[horror (theme)]], comic"
            ),
            "human_focus": _V45_FULL_HEAVY + ", @_@, mismatched pupils, glowing eyes, bad anatomy",
            "none": "",
        },
    ),
    ModelSpec(
        id="nai-diffusion-4-5-curated",
        family="v4.5",
        description="NovelAI Diffusion V4.5 Curated: streams a preview at every step",
        # As in the browser-captured request (other clients omit "location").
        quality_tags=", very aesthetic, location, masterpiece, no text, -0.8::feet::, rating:general",
        uc_presets={
            "heavy": _V45_CURATED_HEAVY,
            "light": (
                "blurry, lowres, upscaled, artistic error, scan artifacts, jpeg artifacts, logo, "
                "too many watermarks, negative space, blank page"
            ),
            "human_focus": (
                "blurry, lowres, upscaled, artistic error, film grain, scan artifacts, bad anatomy, "
                "bad hands, worst quality, bad quality, jpeg artifacts, very displeasing, "
                "chromatic aberration, halftone, multiple views, logo, too many watermarks, @_@, "
                "mismatched pupils, glowing eyes, negative space, blank page"
            ),
            "none": "",
        },
    ),
    ModelSpec(
        id="nai-diffusion-4-full",
        family="v4",
        description="NovelAI Diffusion V4 Full: streams a preview at every step",
        quality_tags=", no text, best quality, very aesthetic, absurdres",
        uc_presets={
            "heavy": (
                "nsfw, blurry, lowres, error, film grain, scan artifacts, worst quality, bad quality, "
                "jpeg artifacts, very displeasing, chromatic aberration, multiple views, logo, "
                "too many watermarks, white blank page, blank page"
            ),
            "light": (
                "nsfw, blurry, lowres, error, worst quality, bad quality, jpeg artifacts, "
                "very displeasing, white blank page, blank page"
            ),
            "none": "",
        },
    ),
    ModelSpec(
        id="nai-diffusion-4-curated-preview",
        family="v4",
        description="NovelAI Diffusion V4 Curated (preview): streams a preview at every step",
        quality_tags=", rating:general, best quality, very aesthetic, absurdres",
        uc_presets={
            "heavy": (
                "blurry, lowres, error, film grain, scan artifacts, worst quality, bad quality, "
                "jpeg artifacts, very displeasing, chromatic aberration, logo, dated, signature, "
                "multiple views, gigantic breasts, white blank page, blank page"
            ),
            "light": (
                "blurry, lowres, error, worst quality, bad quality, jpeg artifacts, very displeasing, "
                "logo, dated, signature, white blank page, blank page"
            ),
            "none": "",
        },
    ),
    ModelSpec(
        id="nai-diffusion-3",
        family="v3",
        description="NovelAI Diffusion V3 (anime): whole images from the ZIP endpoint by default",
        quality_tags=", best quality, amazing quality, very aesthetic, absurdres",
        uc_presets={
            "heavy": _V3_HEAVY,
            "light": "nsfw, lowres, jpeg artifacts, worst quality, watermark, blurry, very displeasing",
            "human_focus": (
                _V3_HEAVY + ", bad anatomy, bad hands, @_@, mismatched pupils, heart-shaped pupils, "
                "glowing eyes"
            ),
            "none": "",
        },
        # Clients that stream V4 models still use the ZIP endpoint for V3.
        streams_by_default=False,
    ),
)

MODELS: Final[Mapping[str, ModelSpec]] = {spec.id: spec for spec in _MODELS}
"""Every known model, by id, newest first."""

DEFAULT_MODEL: Final = "nai-diffusion-4-5-full"
"""The model used when the request names none."""

SAMPLERS: Final[frozenset[str]] = frozenset(
    {
        "k_euler",
        "k_euler_ancestral",
        "k_dpmpp_2s_ancestral",
        "k_dpmpp_2m",
        "k_dpmpp_2m_sde",
        "k_dpmpp_sde",
        "ddim_v3",
    }
)
"""Sampler names the API takes."""

NOISE_SCHEDULES: Final[frozenset[str]] = frozenset({"native", "karras", "exponential", "polyexponential"})
"""Noise schedules the API takes (``native`` is V3 only)."""

NAMED_SIZES: Final[Mapping[str, tuple[int, int]]] = {
    "portrait": (832, 1216),
    "landscape": (1216, 832),
    "square": (1024, 1024),
}
"""The web app's "normal" sizes, by name."""
