"""Turn the previews of a run into an animated GIF that ends on the final image."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from PIL import Image

import imagestream
from imagestream import ImageFinal, ImagePreview


async def previews_to_gif(
    prompt: str,
    path: str | Path,
    *,
    frame_ms: int = 80,
    hold_ms: int = 1500,
    **params: Any,
) -> Path:
    """Stream ``prompt``; save its first image's previews and final as a GIF."""
    frames: list[Image.Image] = []
    async with imagestream.stream(prompt, **params) as chunks:
        async for chunk in chunks:
            if isinstance(chunk, ImagePreview | ImageFinal) and chunk.sample == 0:
                frames.append(chunk.image.to_pil().convert("RGB"))
    if not frames:
        raise ValueError(f"the run of {prompt!r} produced no image")
    # Previews may be smaller than the final image: scale every frame to its size.
    size = frames[-1].size
    frames = [frame if frame.size == size else frame.resize(size) for frame in frames]
    first, *rest = frames
    first.save(
        path,
        format="GIF",
        save_all=True,
        append_images=rest,
        duration=[frame_ms] * (len(frames) - 1) + [hold_ms],
        loop=0,
    )
    return Path(path)


if __name__ == "__main__":
    gif = asyncio.run(
        previews_to_gif("a simple red circle", "circle.gif", steps=20, seed=1)
    )
    print("saved", gif)
