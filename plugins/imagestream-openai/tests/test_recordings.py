"""Every recording of real OpenAI traffic in the shared fixtures, replayed through the provider.

The vercel/ai ``.chunks.txt`` files keep only each event's ``data`` JSON, one
per line: they are framed again as OpenAI frames them (``event: <type>`` then
``data: <json>``) and served in random-size pieces. Their base64 images were
shortened with a literal ``...``; those strings are replaced by real images of
the recorded format, and every other byte is kept. The pydantic-ai cassettes
are YAML: JSON bodies are stored parsed, the one event-stream body verbatim.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from _openai_server import OpenAIServer, Script, b64_image, make_image
from _support import kinds

from imagestream import ImageFinal, TextDelta, Usage
from imagestream.errors import NoImageError, QuotaExceededError

# A JSON string holding an image as base64, and its field name.
_IMAGE_FIELD = re.compile(r'"(partial_image_b64|result|b64_json)":(\s*)"([A-Za-z0-9+/=.]*)"')
_VARIANTS = {"partial_image_b64": 1, "result": 30, "b64_json": 20}


def is_whole_image(b64: str) -> bool:
    """True if ``b64`` decodes to a complete PNG, JPEG or WebP file (not a shortened one)."""
    try:
        data = base64.b64decode(b64, validate=True)
    except ValueError:
        return False
    if data.startswith(b"\x89PNG"):
        return data.endswith(b"IEND\xaeB`\x82")
    if data.startswith(b"\xff\xd8"):
        return data.endswith(b"\xff\xd9")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return int.from_bytes(data[4:8], "little") + 8 == len(data)
    return False


def restore_images(text: str, fmt: str) -> str:
    """``text`` with each shortened base64 image replaced by a real ``fmt`` image.

    The recorders shortened images either with a literal ``...`` in the middle
    or by cutting them; complete images (the Azure recording's 1x1 PNG) stay.
    """

    def real(match: re.Match[str]) -> str:
        if is_whole_image(match[3]):
            return match[0]
        return f'"{match[1]}":{match[2]}"{b64_image(fmt, _VARIANTS[match[1]])}"'

    return _IMAGE_FIELD.sub(real, text)


def reframe(path: Path, fmt: str) -> bytes:
    """A ``.chunks.txt`` recording as the SSE body it was cut from."""
    out = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        kind = json.loads(line)["type"]
        out.append(f"event: {kind}\ndata: {restore_images(line, fmt)}\n\n")
    return "".join(out).encode()


def load_yaml(path: Path) -> Any:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load(path.read_text())


async def test_responses_stream_with_image_tool(
    run: Any, server: OpenAIServer, recordings: Path
) -> None:
    body = reframe(
        recordings / "vercel-ai_responses-image-generation-tool.stream.chunks.txt", "webp"
    )
    server.script(Script(raw=body))
    chunks = await run(
        model="gpt-image-1",
        api="responses",
        responses_model="gpt-5",
        partial_images=1,
        output_format="webp",
        quality="low",
    )
    assert kinds(chunks) == ["ImagePreview", "ImageFinal", "Usage"]
    preview, final, usage = chunks
    assert preview.index == 0 and preview.mime_type == "image/webp"
    assert preview.extra["size"] == "1536x1024" and preview.extra["quality"] == "low"
    assert preview.image.data == make_image("webp", 1)
    assert final.image.data == make_image("webp", 30)
    assert final.revised_prompt is not None
    assert final.revised_prompt.startswith(
        "Create a high-resolution, hyperrealistic illustration of an echidna"
    )
    assert final.extra["id"].startswith("ig_0df93c0b")
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (2941, 1249, 4190)


async def test_azure_responses_stream(run: Any, server: OpenAIServer, recordings: Path) -> None:
    path = recordings / "vercel-ai_azure-responses-image-generation-tool.stream.chunks.txt"
    server.script(Script(raw=reframe(path, "png")))
    chunks = await run(model="gpt-image-1", api="responses", partial_images=1)
    assert kinds(chunks) == ["ImagePreview", "ImageFinal"] + ["TextDelta"] * 28 + ["Usage"]
    final = chunks[1]
    assert isinstance(final, ImageFinal) and final.extra["status"] == "generating"
    assert final.image.size == (1, 1)  # the recording's own 1x1 PNG
    assert final.revised_prompt is not None and final.revised_prompt.startswith(
        "anime-style cute raccoon"
    )
    text = "".join(chunk.text for chunk in chunks if isinstance(chunk, TextDelta))
    assert text == (
        "Here is an anime-like image of a cute raccoon waving hello. "
        "If you want any changes or another style, just let me know!"
    )
    usage = chunks[-1]
    assert isinstance(usage, Usage) and (usage.input_tokens, usage.output_tokens) == (1979, 67)


async def test_responses_stream_failing_with_insufficient_quota(
    run: Any, server: OpenAIServer, recordings: Path
) -> None:
    path = recordings / "vercel-ai_responses-stream-error-insufficient-quota.chunks.txt"
    server.script(Script(raw=reframe(path, "png")))
    with pytest.raises(QuotaExceededError) as caught:
        await run(model="gpt-image-1", api="responses")
    assert caught.value.code == "insufficient_quota"
    assert "You exceeded your current quota" in str(caught.value)
    assert caught.value.partial is not None and caught.value.partial.images == []


async def test_responses_whole_body(run: Any, server: OpenAIServer, recordings: Path) -> None:
    text = (recordings / "vercel-ai_responses-image-generation-tool.nonstream.json").read_text()
    server.script(Script(body=json.loads(restore_images(text, "webp"))))
    chunks = await run(
        model="gpt-image-1", api="responses", stream=False, responses_model="gpt-5-nano"
    )
    assert kinds(chunks) == ["ImageFinal", "Usage"]  # the message's text is empty
    final, usage = chunks
    assert final.image.data == make_image("webp", 30) and final.mime_type == "image/webp"
    assert final.revised_prompt == (
        "A cute fluffy cat sitting on a sunlit windowsill, warm sunlight, soft fur, "
        "expressive eyes, photorealistic style."
    )
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (3151, 1970, 5121)
    # gpt-5-nano: $0.05 in, $0.40 out per 1M tokens.
    assert usage.cost_usd == pytest.approx((3151 * 0.05 + 1970 * 0.40) / 1_000_000)


async def test_images_generations_whole_body(
    run: Any, server: OpenAIServer, recordings: Path
) -> None:
    text = (recordings / "vercel-ai_images-generations.nonstream.json").read_text()
    server.script(Script(body=json.loads(restore_images(text, "png"))))
    chunks = await run(model="gpt-image-1", n=2, stream=False)
    assert kinds(chunks) == ["ImageFinal", "ImageFinal"]  # the recording has no usage
    first, second = chunks
    assert first.revised_prompt is not None and first.revised_prompt.startswith(
        "A small and adorable baby sea otter"
    )
    assert second.revised_prompt is None and second.sample == 1
    assert first.image.data == make_image("png", 20) and first.mime_type == "image/png"


async def test_images_edits_whole_body(run: Any, server: OpenAIServer, recordings: Path) -> None:
    text = (recordings / "vercel-ai_images-edits.nonstream.json").read_text()
    server.script(Script(body=json.loads(restore_images(text, "png"))))
    chunks = await run("add a hat", model="gpt-image-1", image=make_image("png", 4), stream=False)
    assert kinds(chunks) == ["ImageFinal"]
    (final,) = chunks
    assert final.extra == {
        "background": "opaque",
        "output_format": "png",
        "quality": "high",
        "size": "1024x1024",
        "created": 1770935251,
    }
    assert final.image.data == make_image("png", 20)
    assert server.requests[0].path == "/v1/images/edits"


async def test_pydantic_ai_jpeg_response(run: Any, server: OpenAIServer, recordings: Path) -> None:
    (interaction,) = load_yaml(
        recordings / "pydantic-ai_responses-image-generation-jpeg.nonstream.cassette.yaml"
    )["interactions"]
    server.script(Script(body=interaction["response"]["parsed_body"]))
    chunks = await run(
        "Generate an image of axolotl.",
        model="gpt-image-1",
        api="responses",
        stream=False,
        responses_model="gpt-5",
        tool_choice="required",
        output_format="jpeg",
        quality="auto",
        size="auto",
        background="auto",
        moderation="auto",
        output_compression=100,
    )
    assert kinds(chunks) == ["ImageFinal", "Usage"]
    final, usage = chunks
    assert final.mime_type == "image/jpeg" and final.image.mime_type == "image/jpeg"
    assert (final.width, final.height) == (
        1536,
        1024,
    )  # read from the real JPEG by the validation middleware
    assert final.extra["size"] == "1536x1024"
    assert final.revised_prompt is not None and "axolotl" in final.revised_prompt
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (1889, 1434, 3323)
    # What we sent matches what pydantic-ai sent for the same settings.
    recorded = interaction["request"]["parsed_body"]
    sent = server.requests[0].json
    assert sent["model"] == recorded["model"] and sent["tool_choice"] == recorded["tool_choice"]
    assert sent["stream"] is recorded["stream"] is False
    recorded_tool = recorded["tools"][0]
    for name, value in sent["tools"][0].items():
        if name != "model":
            assert recorded_tool[name] == value, name


@pytest.mark.parametrize(
    ("number", "expected", "text", "tokens"),
    [
        (0, ["Usage"], "", (255, 16)),  # a function call: no text, no image
        (1, ["TextDelta"] * 7 + ["Usage"], "The capital of France is Paris.", (278, 9)),
    ],
)
async def test_pydantic_ai_raw_sse_framing(
    run: Any,
    server: OpenAIServer,
    recordings: Path,
    number: int,
    expected: list[str],
    text: str,
    tokens: tuple[int, int],
) -> None:
    interactions = load_yaml(
        recordings / "pydantic-ai_responses-stream-raw-sse-framing.cassette.yaml"
    )["interactions"]
    body = interactions[number]["response"]["body"]["string"]
    assert body.startswith("event: response.created\ndata: ")
    server.script(Script(raw=body.encode()))
    # Early 2025 events carry no sequence_number and no [DONE] follows; they
    # decode. With tool_choice=auto the model answered without drawing: a run
    # asks for an image, so it ends with NoImageError, what arrived kept.
    with pytest.raises(NoImageError) as info:
        await run(
            "What is the capital of France?",
            model="gpt-image-1",
            api="responses",
            responses_model="gpt-4o",
            tool_choice="auto",
        )
    assert info.value.text == text
    assert info.value.partial is not None
    result = info.value.partial
    chunks = [*(TextDelta(part) for part in result.text_parts), result.usage]
    assert kinds(chunks) == expected
    assert "".join(chunk.text for chunk in chunks if isinstance(chunk, TextDelta)) == text
    assert (chunks[-1].input_tokens, chunks[-1].output_tokens) == tokens
    # gpt-4o: $2.50 in, $10 out per 1M tokens.
    assert chunks[-1].cost_usd == pytest.approx((tokens[0] * 2.50 + tokens[1] * 10.00) / 1_000_000)
