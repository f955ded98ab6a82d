"""List prices, in US dollars, used by imagestream's analytics middleware.

Image models are billed per token, with separate rates for text and image
tokens, so the analytics cost each kind at its own rate. ``None`` means "not
billed that way, or not published where we could check". The DALL·E models
are billed per image, at a price set by size and quality, and report no
usage, so their cost is computed here per request.

Sources: OpenAI's published price list as quoted by several independent price
trackers (checked for this release); re-check before relying on a bill.
gpt-image-2.5 and gpt-image-2.6 (sunburst, flare) have no entry: neither the
official SDK nor a published OpenAI page we could reach gives their prices,
so their usage is counted but not costed. The DALL·E models and gpt-image-1
are retired; their prices are kept for gateways that still serve them.
"""

from __future__ import annotations

from imagestream import Pricing

__all__ = ["IMAGE_MODEL_PRICES", "TEXT_MODEL_PRICES", "dalle_image_price", "text_model_price"]

IMAGE_MODEL_PRICES: dict[str, Pricing] = {
    "gpt-image-1": Pricing(
        input_text=5.00, input_image=10.00, output_text=None, output_image=40.00
    ),
    "gpt-image-1-mini": Pricing(
        input_text=2.00, input_image=2.50, output_text=None, output_image=8.00
    ),
    "gpt-image-1.5": Pricing(
        input_text=5.00, input_image=8.00, output_text=10.00, output_image=32.00
    ),
    "chatgpt-image-latest": Pricing(
        input_text=5.00, input_image=8.00, output_text=10.00, output_image=32.00
    ),
    "gpt-image-2": Pricing(
        input_text=5.00, input_image=8.00, output_text=10.00, output_image=30.00
    ),
}
"""Per 1M tokens, by image model."""

TEXT_MODEL_PRICES: dict[str, tuple[float, float]] = {
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "o3": (2.00, 8.00),
}
"""(input, output) per 1M tokens of the models that drive the Responses API tool."""

# Per image, by (model, quality, size). DALL·E 3 wide and tall sizes cost double.
_DALLE_PRICES: dict[tuple[str, str, str], float] = {
    ("dall-e-2", "standard", "256x256"): 0.016,
    ("dall-e-2", "standard", "512x512"): 0.018,
    ("dall-e-2", "standard", "1024x1024"): 0.020,
    ("dall-e-3", "standard", "1024x1024"): 0.040,
    ("dall-e-3", "standard", "1792x1024"): 0.080,
    ("dall-e-3", "standard", "1024x1792"): 0.080,
    ("dall-e-3", "hd", "1024x1024"): 0.080,
    ("dall-e-3", "hd", "1792x1024"): 0.120,
    ("dall-e-3", "hd", "1024x1792"): 0.120,
}


def dalle_image_price(model: str, quality: str | None, size: str | None) -> float | None:
    """The price of one DALL·E image (defaults: standard quality, 1024x1024)."""
    return _DALLE_PRICES.get((model, quality or "standard", size or "1024x1024"))


def text_model_price(model: str) -> tuple[float, float] | None:
    """(input, output) per 1M tokens of a Responses API model, dated snapshots included."""
    if model in TEXT_MODEL_PRICES:
        return TEXT_MODEL_PRICES[model]
    # "gpt-5-2025-08-07" is priced like "gpt-5": strip a trailing date.
    base = model.rsplit("-", 3)[0] if model[-10:-6].isdigit() else model
    return TEXT_MODEL_PRICES.get(base)
