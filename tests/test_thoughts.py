"""A model's reasoning travels as thought text, apart from its answer, and is priced as output text."""

from __future__ import annotations

from imagestream import GenerationResult, Pricing, TextDelta, Usage, chunk_from_dict, chunk_to_dict


def test_thought_text_is_kept_apart_from_the_answer() -> None:
    result = GenerationResult(provider="p")
    for chunk in (
        TextDelta("Planning the fox. ", thought=True),
        TextDelta("Here is "),
        TextDelta("a fox.", thought=False),
        TextDelta("Check the tail.", thought=True),
    ):
        result.add(chunk)
    assert result.text == "Here is a fox."
    assert result.thoughts == "Planning the fox. Check the tail."


def test_thought_survives_a_round_trip() -> None:
    chunk = TextDelta("hmm", thought=True)
    assert chunk_from_dict(chunk_to_dict(chunk)) == chunk
    assert chunk_from_dict({"type": "text_delta", "text": "old"}) == TextDelta("old")


def test_thought_tokens_cost_output_text() -> None:
    price = Pricing(input_text=1.0, output_text=10.0, output_image=100.0)
    usage = Usage(input_text_tokens=1_000_000, output_image_tokens=10_000, thought_tokens=100_000)
    assert price.cost(usage) == 1.0 + 1.0 + 1.0
    # Thoughts alone do not make a usage itemised: totals are still priced.
    totals = Usage(input_tokens=1_000_000, output_tokens=10_000, thought_tokens=0)
    assert price.cost(totals) == 1.0 + 1.0
