"""Analytics middleware and pricing: cost per token kind, timings present."""

from __future__ import annotations

from imagestream import ImageData, ImageFinal, ModelInfo, Pipeline, Pricing, Usage
from imagestream.testing import ScriptedProvider, make_png


def test_cost_uses_image_rates_for_image_tokens() -> None:
    pricing = Pricing(input_text=5.0, input_image=10.0, output_image=40.0)
    usage = Usage(
        input_text_tokens=1_000_000, input_image_tokens=500_000, output_image_tokens=250_000
    )
    assert pricing.cost(usage) == 5.0 + 5.0 + 10.0


def test_cost_from_totals_counts_output_at_the_image_rate() -> None:
    pricing = Pricing(input_text=5.0, output_text=1.0, output_image=40.0)
    assert pricing.cost(Usage(input_tokens=100_000, output_tokens=100_000)) == 0.5 + 4.0


def test_unknown_prices_give_no_cost() -> None:
    assert Pricing().cost(Usage(input_tokens=10)) is None
    assert Pricing(per_image=0.04).cost(Usage(), images=3) == 0.12


class Priced(ScriptedProvider):
    models = (ModelInfo("m", pricing=Pricing(input_text=5.0, output_image=40.0)),)
    default_model = "m"


async def test_analytics_cost_from_provider_price_table() -> None:
    from imagestream import AnalyticsMiddleware

    chunks = [
        ImageFinal(ImageData.from_bytes(make_png(4, 4))),
        Usage(input_text_tokens=20, output_image_tokens=1000),
    ]
    result = await Pipeline(Priced("p", chunks), middleware=[AnalyticsMiddleware()]).agenerate(
        "x", model="m"
    )
    analytics = result.analytics
    assert analytics is not None
    assert analytics.cost_usd is not None
    assert abs(analytics.cost_usd - (20 * 5.0 + 1000 * 40.0) / 1e6) < 1e-12
    assert analytics.first_chunk_s is not None and analytics.total_s >= analytics.first_chunk_s
    assert analytics.first_preview_s is None
