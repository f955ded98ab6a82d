"""Stamp a line of text into the corner of every final image."""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont

import imagestream
from imagestream import ImageFinal, ImageRequest


def watermark(image: ImageFinal, request: ImageRequest) -> Image.Image:
    """A postprocessor: the final image with "imagestream" in its lower right corner."""
    picture = image.image.to_pil()
    marked = picture.convert("RGBA")
    layer = Image.new("RGBA", marked.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    font = ImageFont.load_default(size=max(10, marked.height // 20))
    # The text's bounding box when drawn at (0, 0): its right and bottom edges.
    _, _, right, bottom = draw.textbbox((0, 0), "imagestream", font=font)
    margin = max(4, marked.height // 50)
    corner = (marked.width - right - margin, marked.height - bottom - margin)
    draw.text(corner, "imagestream", font=font, fill=(255, 255, 255, 170))
    marked = Image.alpha_composite(marked, layer)
    # Keep the original's mode: an RGB image stays RGB (and so can stay a JPEG).
    return marked if "A" in picture.mode else marked.convert("RGB")


def main() -> None:
    pipeline = imagestream.Pipeline("procedural", postprocessors=[watermark])
    result = pipeline.generate("a blue square on yellow", steps=8)
    print("saved", result.images[0].image.save("marked.png"))


if __name__ == "__main__":
    main()
