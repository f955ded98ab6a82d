"""The official ``openai`` package judges the local server: every event must parse into its types.

If the SDK reads the server's bytes as the typed events it knows, the server
speaks the real protocol, and the provider's tests against it mean something.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from _openai_server import OpenAIServer, make_image

openai = pytest.importorskip("openai")


def client(server: OpenAIServer) -> Any:
    return openai.AsyncOpenAI(
        api_key=server.key, base_url=server.base_url, max_retries=0, timeout=10
    )


async def test_images_generate_stream(server: OpenAIServer) -> None:
    from openai.types import ImageGenCompletedEvent, ImageGenPartialImageEvent

    async with client(server) as sdk:
        stream = await sdk.images.generate(
            model="gpt-image-1",
            prompt="an otter",
            stream=True,
            partial_images=2,
            output_format="webp",
            quality="low",
            size="1024x1024",
        )
        events = [event async for event in stream]
    assert [type(event) for event in events] == [
        ImageGenPartialImageEvent,
        ImageGenPartialImageEvent,
        ImageGenCompletedEvent,
    ]
    first, second, done = events
    assert (first.partial_image_index, second.partial_image_index) == (0, 1)
    assert first.output_format == "webp" and first.size == "1024x1024" and first.quality == "low"
    assert base64.b64decode(done.b64_json) == make_image("webp", 10)
    assert done.usage.input_tokens_details.text_tokens == 16 and done.usage.total_tokens == 1072
    assert server.requests[0].json["stream"] is True


async def test_images_edit_stream_is_multipart_the_sdk_way(server: OpenAIServer) -> None:
    from openai.types import ImageEditCompletedEvent, ImageEditPartialImageEvent

    async with client(server) as sdk:
        stream = await sdk.images.edit(
            model="gpt-image-1",
            prompt="add a hat",
            image=[
                ("a.png", make_image("png", 1), "image/png"),
                ("b.png", make_image("png", 2), "image/png"),
            ],
            stream=True,
            partial_images=1,
        )
        events = [event async for event in stream]
    assert [type(event) for event in events] == [
        ImageEditPartialImageEvent,
        ImageEditCompletedEvent,
    ]
    sent = server.requests[0]
    assert [name for name, *_ in sent.files] == ["image[]", "image[]"]
    assert sent.form["stream"] == ["true"] and sent.form["partial_images"] == ["1"]


async def test_images_generate_whole(server: OpenAIServer) -> None:
    async with client(server) as sdk:
        result = await sdk.images.generate(model="gpt-image-1", prompt="an otter", n=2)
    assert len(result.data) == 2
    assert base64.b64decode(result.data[1].b64_json) == make_image("png", 21)
    assert result.usage is not None and result.usage.output_tokens == 272


async def test_responses_stream_with_the_image_tool(server: OpenAIServer) -> None:
    from openai.types.responses import (
        ResponseCompletedEvent,
        ResponseImageGenCallPartialImageEvent,
        ResponseOutputItemDoneEvent,
        ResponseTextDeltaEvent,
    )
    from openai.types.responses.response_output_item import ImageGenerationCall

    async with client(server) as sdk:
        stream = await sdk.responses.create(
            model="gpt-5",
            input="draw an echidna",
            stream=True,
            tools=[{"type": "image_generation", "partial_images": 2, "output_format": "png"}],
        )
        events = [event async for event in stream]
    names = [event.type for event in events]
    assert names[:2] == ["response.created", "response.in_progress"]
    assert names[-1] == "response.completed"
    assert [event.sequence_number for event in events] == list(range(len(events)))
    partials = [
        event for event in events if isinstance(event, ResponseImageGenCallPartialImageEvent)
    ]
    assert [event.partial_image_index for event in partials] == [0, 1]
    assert base64.b64decode(partials[0].partial_image_b64) == make_image("png", 1)
    done = [event for event in events if isinstance(event, ResponseOutputItemDoneEvent)]
    assert isinstance(done[0].item, ImageGenerationCall)
    assert base64.b64decode(done[0].item.result or "") == make_image("png", 30)
    deltas = "".join(event.delta for event in events if isinstance(event, ResponseTextDeltaEvent))
    assert deltas == server.text
    completed = events[-1]
    assert isinstance(completed, ResponseCompletedEvent)
    assert completed.response.usage is not None and completed.response.usage.input_tokens == 2941
    assert completed.response.status == "completed"
    # Every event was typed; none fell back to a plain object.
    assert all(type(event).__module__.startswith("openai.types") for event in events)


async def test_responses_whole(server: OpenAIServer) -> None:
    async with client(server) as sdk:
        response = await sdk.responses.create(
            model="gpt-5", input="draw", tools=[{"type": "image_generation"}]
        )
    assert response.output_text == server.text
    image = response.output[0]
    assert image.type == "image_generation_call"
    assert base64.b64decode(image.result) == make_image("png", 30)


async def test_error_bodies_are_what_the_sdk_expects(server: OpenAIServer) -> None:
    async with openai.AsyncOpenAI(
        api_key="sk-wrong", base_url=server.base_url, max_retries=0
    ) as sdk:
        with pytest.raises(openai.AuthenticationError) as caught:
            await sdk.images.generate(model="gpt-image-1", prompt="x")
    assert caught.value.code == "invalid_api_key"
