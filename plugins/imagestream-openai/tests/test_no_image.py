"""A Responses API answer without an image is a NoImageError that says why, never a success."""

from __future__ import annotations

from typing import Any

import pytest
from _openai_server import OpenAIServer, Script

from imagestream import NoImageError

REFUSAL = "I'm sorry, but I can't help with that request."


def _message(part: dict[str, Any]) -> dict[str, Any]:
    return {"id": "msg_1", "type": "message", "role": "assistant", "content": [part]}


def _failed_call(error: Any = None) -> dict[str, Any]:
    item: dict[str, Any] = {"id": "ig_1", "type": "image_generation_call", "status": "failed"}
    if error is not None:
        item["error"] = error
    item["result"] = None
    return item


def _events(*events: dict[str, Any]) -> Script:
    return Script(events=[(event["type"], event) for event in events])


def _completed(*output: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "response.completed",
        "response": {"status": "completed", "output": list(output)},
    }


async def test_a_streamed_refusal_is_a_no_image_error_with_its_text(
    run: Any, server: OpenAIServer
) -> None:
    server.script(
        _events(
            {"type": "response.refusal.delta", "item_id": "msg_1", "content_index": 0,
             "delta": "I'm sorry, but I can't "},
            {"type": "response.refusal.delta", "item_id": "msg_1", "content_index": 0,
             "delta": "help with that request."},
            {"type": "response.refusal.done", "item_id": "msg_1", "content_index": 0,
             "refusal": REFUSAL},
            _completed(_message({"type": "refusal", "refusal": REFUSAL})),
        )
    )  # fmt: skip
    with pytest.raises(NoImageError) as info:
        await run(model="gpt-image-1", api="responses")
    error = info.value
    assert error.text == REFUSAL and error.finish_reason == "refusal"
    assert error.code == "refusal" and error.provider == "openai"
    assert REFUSAL in str(error)
    assert error.partial is not None and error.partial.text == REFUSAL  # said once, not twice
    assert error.partial.images == []


async def test_a_refusal_only_in_response_completed_still_counts(
    run: Any, server: OpenAIServer
) -> None:
    server.script(_events(_completed(_message({"type": "refusal", "refusal": REFUSAL}))))
    with pytest.raises(NoImageError, match="refused") as info:
        await run(model="gpt-image-1", api="responses")
    assert info.value.text == REFUSAL


async def test_a_failed_image_call_names_its_reason(run: Any, server: OpenAIServer) -> None:
    failed = _failed_call({"code": "moderation_blocked", "message": "the image was blocked"})
    server.script(
        _events(
            {"type": "response.output_item.done", "item": failed},
            {"type": "response.output_text.delta", "item_id": "msg_1", "content_index": 0,
             "delta": "Here is your image."},
            _completed(failed),
        )
    )  # fmt: skip
    with pytest.raises(NoImageError) as info:
        await run(model="gpt-image-1", api="responses")
    error = info.value
    assert "image_generation_call failed: the image was blocked" in str(error)
    assert error.code == "moderation_blocked" and error.finish_reason == "failed"
    assert error.text == "Here is your image."


async def test_a_failed_image_call_without_a_reason_says_so(run: Any, server: OpenAIServer) -> None:
    server.script(_events(_completed(_failed_call())))
    with pytest.raises(NoImageError, match="failed: the server gave no reason"):
        await run(model="gpt-image-1", api="responses")


async def test_text_only_is_the_pipelines_no_image_error(run: Any, server: OpenAIServer) -> None:
    said = "Which lighthouse do you mean?"
    server.script(
        _events(
            {"type": "response.output_text.delta", "item_id": "msg_1", "content_index": 0,
             "delta": said},
            _completed(_message({"type": "output_text", "text": said})),
        )
    )  # fmt: skip
    with pytest.raises(NoImageError) as info:
        await run(model="gpt-image-1", api="responses", tool_choice="auto")
    assert info.value.text == said and said in str(info.value)


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ([_message({"type": "refusal", "refusal": REFUSAL})], "refused to draw"),
        ([_failed_call("content_filter")], "failed: content_filter"),
        ([_message({"type": "output_text", "text": "Sure!"})], "without an image"),
    ],
)
async def test_whole_responses_without_an_image(
    run: Any, server: OpenAIServer, output: list[dict[str, Any]], expected: str
) -> None:
    server.script(Script(body={"id": "resp_1", "status": "completed", "output": output}))
    with pytest.raises(NoImageError, match=expected):
        await run(model="gpt-image-1", api="responses", stream=False)
