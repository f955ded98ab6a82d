"""The Responses API with the image_generation tool, against the local server."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from _openai_server import OpenAIServer, Script, b64_image, make_image
from _support import kinds

from imagestream import ImageFinal, TextDelta, Usage


async def test_stream_previews_image_text_and_usage(run: Any, server: OpenAIServer) -> None:
    chunks = await run(
        model="gpt-image-1",
        partial_images=2,
        api="responses",
        output_format="webp",
        quality="low",
        size="1536x1024",
        responses_model="gpt-5",
    )
    assert kinds(chunks) == ["ImagePreview", "ImagePreview", "ImageFinal"] + ["TextDelta"] * 7 + [
        "Usage"
    ]
    final = chunks[2]
    # The image arrives twice (output_item.done and response.completed); it is emitted once.
    assert sum(isinstance(chunk, ImageFinal) for chunk in chunks) == 1
    assert final.image.data == make_image("webp", 30)
    assert final.revised_prompt == server.revised_prompt
    assert final.mime_type == "image/webp" and final.extra["id"] == "ig_test"
    assert [chunks[0].index, chunks[1].index] == [0, 1]
    assert chunks[0].extra["item_id"] == "ig_test"
    assert "".join(chunk.text for chunk in chunks if isinstance(chunk, TextDelta)) == server.text
    usage = chunks[-1]
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (2941, 49, 2990)
    # Priced at the controlling model's text rates (gpt-5: $1.25 in, $10 out per 1M).
    assert usage.cost_usd == pytest.approx((2941 * 1.25 + 49 * 10.00) / 1_000_000)

    (sent,) = server.requests
    assert sent.path == "/v1/responses"
    assert sent.json == {
        "model": "gpt-5",
        "input": "a lighthouse at dusk",
        "tools": [
            {
                "type": "image_generation",
                "model": "gpt-image-1",
                "size": "1536x1024",
                "quality": "low",
                "output_format": "webp",
                "partial_images": 2,
            }
        ],
        "stream": True,
        "tool_choice": {"type": "image_generation"},
    }


async def test_whole_response(run: Any, server: OpenAIServer) -> None:
    chunks = await run(
        model="gpt-image-1-mini",
        api="responses",
        stream=False,
        instructions="be brief",
        tool_choice="auto",
        user="user-7",
    )
    assert kinds(chunks) == ["TextDelta", "ImageFinal", "Usage"]
    assert all(chunk.synthetic for chunk in chunks)
    assert chunks[0].text == server.text
    assert chunks[1].image.data == make_image("png", 30)
    (sent,) = server.requests
    assert sent.json["stream"] is False and sent.json["tool_choice"] == "auto"
    assert sent.json["instructions"] == "be brief" and sent.json["user"] == "user-7"
    assert sent.json["model"] == "gpt-4.1-mini"


def _azure_events(partial: str, final: str) -> list[tuple[str, Any]]:
    item_id = "ig_azure"
    done_item = {
        "id": item_id,
        "type": "image_generation_call",
        "status": "generating",
        "background": "opaque",
        "output_format": "png",
        "quality": "medium",
        "result": final,
        "revised_prompt": "a raccoon waving",
        "size": "1024x1024",
    }
    events = [
        {
            "type": "response.created",
            "sequence_number": 0,
            "response": {
                "id": "resp_a",
                "status": "in_progress",
                "content_filters": None,
                "output": [],
            },
        },
        {
            "type": "response.output_item.added",
            "sequence_number": 1,
            "output_index": 0,
            "item": {"id": item_id, "type": "image_generation_call", "status": "in_progress"},
        },
        {
            "type": "response.image_generation_call.partial_image",
            "sequence_number": 2,
            "output_index": 0,
            "item_id": item_id,
            "partial_image_index": 0,
            "partial_image_b64": partial,
            "output_format": "png",
        },
        # No response.image_generation_call.completed, and the item stays "generating".
        {
            "type": "response.output_item.done",
            "sequence_number": 3,
            "output_index": 0,
            "item": done_item,
        },
        {
            "type": "response.output_text.delta",
            "sequence_number": 4,
            "item_id": "msg",
            "output_index": 1,
            "content_index": 0,
            "delta": "Here",
            "obfuscation": "0akkkhrq",
        },
        {
            "type": "response.completed",
            "sequence_number": 5,
            "response": {
                "id": "resp_a",
                "status": "completed",
                "content_filters": None,
                "model": "gpt-4.1-mini",
                "output": [done_item],
                "usage": {"input_tokens": 10, "output_tokens": 2, "total_tokens": 12},
            },
        },
    ]
    return [(event["type"], event) for event in events]


async def test_azure_variant_still_yields_the_final_image(run: Any, server: OpenAIServer) -> None:
    server.script(Script(events=_azure_events(b64_image("png", 1), b64_image("png", 30))))
    chunks = await run(model="gpt-image-1", api="responses", partial_images=1)
    assert kinds(chunks) == ["ImagePreview", "ImageFinal", "TextDelta", "Usage"]
    assert chunks[1].extra["status"] == "generating"
    assert chunks[1].revised_prompt == "a raccoon waving"


async def test_final_only_in_response_completed(run: Any, server: OpenAIServer) -> None:
    events = [
        event
        for event in _azure_events(b64_image("png", 1), b64_image("png", 30))
        if event[0] != "response.output_item.done"
    ]
    server.script(Script(events=events))
    chunks = await run(model="gpt-image-1", api="responses", partial_images=1)
    assert kinds(chunks) == ["ImagePreview", "TextDelta", "ImageFinal", "Usage"]


async def test_two_image_calls_are_two_samples(run: Any, server: OpenAIServer) -> None:
    def item(item_id: str, variant: int) -> dict[str, Any]:
        return {
            "id": item_id,
            "type": "image_generation_call",
            "status": "completed",
            "result": b64_image("png", variant),
            "output_format": "png",
        }

    events = [
        {
            "type": "response.image_generation_call.partial_image",
            "item_id": "ig_1",
            "partial_image_index": 0,
            "partial_image_b64": b64_image("png", 1),
            "output_format": "png",
        },
        {
            "type": "response.image_generation_call.partial_image",
            "item_id": "ig_2",
            "partial_image_index": 0,
            "partial_image_b64": b64_image("png", 2),
            "output_format": "png",
        },
        {"type": "response.output_item.done", "item": item("ig_2", 32)},
        {"type": "response.output_item.done", "item": item("ig_1", 31)},
        {
            "type": "response.completed",
            "response": {"status": "completed", "output": [item("ig_1", 31), item("ig_2", 32)]},
        },
    ]
    server.script(Script(events=[(event["type"], event) for event in events]))
    chunks = await run(model="gpt-image-1", api="responses", partial_images=1)
    assert kinds(chunks) == ["ImagePreview", "ImagePreview", "ImageFinal", "ImageFinal"]
    assert [(c.sample, c.image.data) for c in chunks[2:]] == [
        (1, make_image("png", 32)),
        (0, make_image("png", 31)),
    ]


async def test_edit_inputs_travel_as_data_urls(run: Any, server: OpenAIServer) -> None:
    await run(
        "make it night",
        model="gpt-image-1",
        api="responses",
        image=[make_image("jpeg", 1)],
        mask=make_image("png", 2),
        action="edit",
        input_fidelity="low",
    )
    (sent,) = server.requests
    (message,) = sent.json["input"]
    assert message["role"] == "user"
    text, image = message["content"]
    assert text == {"type": "input_text", "text": "make it night"}
    assert image["type"] == "input_image"
    prefix = "data:image/jpeg;base64,"
    assert image["image_url"].startswith(prefix)
    assert base64.b64decode(image["image_url"][len(prefix) :]) == make_image("jpeg", 1)
    tool = sent.json["tools"][0]
    assert tool["action"] == "edit" and tool["input_fidelity"] == "low"
    assert tool["input_image_mask"]["image_url"].startswith("data:image/png;base64,")


async def test_tool_usage_is_priced_per_image_token(run: Any, server: OpenAIServer) -> None:
    body = server.responses_body({"model": "gpt-5"}, {"output_format": "png"})
    body["tool_usage"] = {
        "image_gen": {
            "input_tokens": 20,
            "output_tokens": 1000,
            "total_tokens": 1020,
            "input_tokens_details": {"text_tokens": 20, "image_tokens": 0},
            "output_tokens_details": {"image_tokens": 1000, "text_tokens": 0},
        },
        "web_search": {"num_requests": 0},
    }
    server.script(Script(body=body))
    chunks = await run(model="gpt-image-1", api="responses", stream=False, responses_model="gpt-5")
    usage = chunks[-1]
    assert isinstance(usage, Usage)
    assert (usage.input_text_tokens, usage.output_image_tokens) == (20, 1000)
    image_cost = (20 * 5.00 + 1000 * 40.00) / 1_000_000
    text_cost = (2941 * 1.25 + 49 * 10.00) / 1_000_000
    assert usage.cost_usd == pytest.approx(image_cost + text_cost)
    assert set(usage.raw) == {"usage", "tool_usage"}
