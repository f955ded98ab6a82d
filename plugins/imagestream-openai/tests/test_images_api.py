"""The Images API against the local server: generations and edits, streamed and whole."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import attrs
import pytest
from _openai_server import OpenAIServer, Script, b64_image, make_image
from _support import collect, kinds

import imagestream
from imagestream import ImageFinal, ImagePreview, TextDelta, Usage
from imagestream.errors import ProviderError


async def test_generation_stream_with_two_partials(run: Any, server: OpenAIServer) -> None:
    chunks = await run(model="gpt-image-1", partial_images=2, size="1024x1024", quality="low")
    assert kinds(chunks) == ["ImagePreview", "ImagePreview", "ImageFinal", "Usage"]
    first, second, final, usage = chunks
    assert (first.index, second.index) == (0, 1)
    assert first.image.data == make_image("png", 1) and second.image.data == make_image("png", 2)
    assert final.image.data == make_image("png", 10)
    assert final.mime_type == "image/png" and not final.synthetic
    assert first.extra["partial_image_index"] == 0
    assert {k: first.extra[k] for k in ("size", "quality", "background", "output_format")} == {
        "size": "1024x1024",
        "quality": "low",
        "background": "opaque",
        "output_format": "png",
    }
    assert usage == Usage(
        input_tokens=16,
        output_tokens=1056,
        total_tokens=1072,
        input_text_tokens=16,
        input_image_tokens=0,
        output_image_tokens=1056,
        raw=usage.raw,
    )

    (sent,) = server.requests
    assert sent.path == "/v1/images/generations"
    assert sent.json == {
        "model": "gpt-image-1",
        "prompt": "a lighthouse at dusk",
        "size": "1024x1024",
        "quality": "low",
        "partial_images": 2,
        "stream": True,
    }
    assert sent.headers["Authorization"] == f"Bearer {server.key}"
    assert sent.headers["Accept"] == "text/event-stream"
    assert sent.headers["User-Agent"].startswith("imagestream-openai/")


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "png"])
async def test_each_output_format_arrives_intact(run: Any, fmt: str) -> None:
    chunks = await run(model="gpt-image-1-mini", partial_images=1, output_format=fmt)
    preview, final = chunks[0], chunks[1]
    mime = f"image/{fmt}"
    assert preview.mime_type == final.mime_type == mime
    assert final.image.data == make_image(fmt, 10)
    assert final.image.mime_type == mime


@pytest.mark.parametrize(("seed", "max_piece"), [(1, 1), (2, 7), (3, 100), (4, 65536)])
async def test_piece_boundaries_do_not_matter(plugins: Any, seed: int, max_piece: int) -> None:
    server = OpenAIServer(seed=seed, max_piece=max_piece)
    await server.start()
    try:
        chunks = await collect(server, model="gpt-image-1", partial_images=3, n=2)
    finally:
        await server.stop()
    assert kinds(chunks) == ["ImagePreview"] * 3 + ["ImageFinal", "Usage"] + [
        "ImagePreview"
    ] * 3 + ["ImageFinal", "Usage"]
    finals = [chunk for chunk in chunks if isinstance(chunk, ImageFinal)]
    assert [final.sample for final in finals] == [0, 1]
    assert [final.image.data for final in finals] == [make_image("png", 10), make_image("png", 11)]
    previews = [chunk for chunk in chunks if isinstance(chunk, ImagePreview)]
    assert [(p.sample, p.index) for p in previews] == [
        (0, 0),
        (0, 1),
        (0, 2),
        (1, 0),
        (1, 1),
        (1, 2),
    ]


def _event(kind: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    return kind, {"type": kind, **fields}


async def test_final_before_all_partials_and_extra_fields(run: Any, server: OpenAIServer) -> None:
    late = b64_image("png", 2)
    server.script(
        Script(
            events=[
                _event(
                    "image_generation.partial_image",
                    b64_json=b64_image("png", 1),
                    partial_image_index=0,
                    output_format="png",
                    size="1024x1024",
                    sequence_number=0,
                    brand_new_field={"x": 1},
                ),
                _event(
                    "image_generation.completed",
                    b64_json=b64_image("png", 10),
                    output_format="png",
                    size="1024x1024",
                    sequence_number=1,
                    usage={
                        "input_tokens": 5,
                        "output_tokens": 6,
                        "total_tokens": 11,
                        "input_tokens_details": {"text_tokens": 5, "image_tokens": 0},
                        "output_tokens_details": {"image_tokens": 4, "text_tokens": 2},
                    },
                ),
                # Announced, but it comes after the image was final: dropped.
                _event(
                    "image_generation.partial_image",
                    b64_json=late,
                    partial_image_index=1,
                    output_format="png",
                    sequence_number=2,
                ),
            ],
            done=True,
        )
    )
    chunks = await run(model="gpt-image-1", partial_images=2)
    assert kinds(chunks) == ["ImagePreview", "ImageFinal", "Usage"]
    usage = chunks[2]
    assert (usage.output_image_tokens, usage.output_text_tokens) == (4, 2)


async def test_type_inside_the_json_decides_not_the_event_line(
    run: Any, server: OpenAIServer
) -> None:
    server.script(
        Script(
            events=[
                (
                    "message",
                    {
                        "type": "image_generation.partial_image",
                        "b64_json": b64_image("webp", 1),
                        "partial_image_index": 0,
                        "output_format": "webp",
                    },
                ),
                (
                    "image_generation.completed",
                    {
                        "type": "image_generation.completed",
                        "b64_json": b64_image("webp", 10),
                        "output_format": "webp",
                    },
                ),
                ("ping", {"type": "keepalive"}),
            ]
        )
    )
    chunks = await run(model="gpt-image-1", partial_images=1)
    assert kinds(chunks) == ["ImagePreview", "ImageFinal"]


async def test_partial_images_zero_streams_the_final_only(run: Any) -> None:
    chunks = await run(model="gpt-image-1.5", partial_images=0)
    assert kinds(chunks) == ["ImageFinal", "Usage"]


async def test_whole_response_goes_through_fake_streaming(run: Any, server: OpenAIServer) -> None:
    chunks = await run(model="gpt-image-1", output_format="webp", stream=False, n=2)
    assert kinds(chunks) == ["ImageFinal", "ImageFinal", "Usage"]
    assert all(chunk.synthetic for chunk in chunks)
    assert chunks[1].sample == 1 and chunks[1].image.data == make_image("webp", 21)
    assert chunks[0].extra["quality"] == "medium" and chunks[0].mime_type == "image/webp"
    (sent,) = server.requests
    assert "stream" not in sent.json and sent.json["n"] == 2
    assert sent.headers["Accept"] == "application/json"


async def test_a_gateway_that_ignores_stream_true(run: Any, server: OpenAIServer) -> None:
    body = server.images_body({"model": "gpt-image-1", "output_format": "png"})
    server.script(Script(body=body))
    chunks = await run(model="gpt-image-1", partial_images=2)
    assert kinds(chunks) == ["ImageFinal", "Usage"]
    assert chunks[0].image.data == make_image("png", 20)


async def test_dalle3_url_results_are_downloaded_without_the_key(
    run: Any, server: OpenAIServer
) -> None:
    chunks = await run(
        model="dall-e-3", size="1792x1024", quality="hd", response_format="url", style="vivid"
    )
    assert kinds(chunks) == ["ImageFinal", "Usage"]
    final, usage = chunks
    assert final.image.data == make_image("png", 20)
    assert final.revised_prompt == server.revised_prompt
    assert usage.cost_usd == pytest.approx(0.12)
    api_call = server.requests[0]
    assert api_call.json == {
        "model": "dall-e-3",
        "prompt": "a lighthouse at dusk",
        "size": "1792x1024",
        "quality": "hd",
        "response_format": "url",
        "style": "vivid",
    }


async def test_download_is_size_capped(run: Any) -> None:
    with pytest.raises(ProviderError, match="larger than"):
        await run(model="dall-e-2", response_format="url", max_response_bytes=64)


async def test_dalle2_base64_and_per_image_cost(run: Any) -> None:
    chunks = await run(model="dall-e-2", size="512x512", n=3)
    assert kinds(chunks) == ["ImageFinal"] * 3 + ["Usage"]
    assert chunks[-1].cost_usd == pytest.approx(3 * 0.018)


async def test_edit_with_one_image_is_multipart(
    run: Any, server: OpenAIServer, tmp_path: Path
) -> None:
    photo = tmp_path / "photo.png"
    photo.write_bytes(make_image("png", 5))
    chunks = await run(
        "add a hat",
        model="gpt-image-1",
        partial_images=1,
        image=str(photo),
        input_fidelity="high",
        quality="high",
    )
    assert kinds(chunks) == ["ImagePreview", "ImageFinal", "Usage"]
    (sent,) = server.requests
    assert sent.path == "/v1/images/edits"
    assert sent.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert sent.form == {
        "prompt": ["add a hat"],
        "model": ["gpt-image-1"],
        "quality": ["high"],
        "partial_images": ["1"],
        "input_fidelity": ["high"],
        "stream": ["true"],
    }
    assert sent.files == [("image", "photo.png", "image/png", make_image("png", 5))]


async def test_edit_with_several_images_and_a_mask(
    run: Any, server: OpenAIServer, tmp_path: Path
) -> None:
    mask = tmp_path / "mask.png"
    mask.write_bytes(make_image("png", 7))
    chunks = await run(
        "blend them",
        model="gpt-image-1.5",
        image=[make_image("jpeg", 1), make_image("webp", 2)],
        mask=str(mask),
        stream=False,
    )
    assert kinds(chunks) == ["ImageFinal", "Usage"]
    (sent,) = server.requests
    assert [(name, filename, mime) for name, filename, mime, _ in sent.files] == [
        ("image[]", "image.jpg", "image/jpeg"),
        ("image[]", "image.webp", "image/webp"),
        ("mask", "mask.png", "image/png"),
    ]
    assert sent.files[0][3] == make_image("jpeg", 1)
    assert "stream" not in sent.form


async def test_edit_inputs_as_base64_and_data_urls(run: Any, server: OpenAIServer) -> None:
    await run(
        "blend them",
        model="gpt-image-1",
        image=[b64_image("jpeg", 1), "data:image/webp;base64," + b64_image("webp", 2)],
        mask="data:image/png;base64," + b64_image("png", 7),
    )
    (sent,) = server.requests
    assert sent.files == [
        ("image[]", "image.jpg", "image/jpeg", make_image("jpeg", 1)),
        ("image[]", "image.webp", "image/webp", make_image("webp", 2)),
        ("mask", "image.png", "image/png", make_image("png", 7)),
    ]


async def test_an_input_file_is_read_once_per_run(
    run: Any, server: OpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # validate reads and checks the file; stream sends the bytes validate read.
    photo = tmp_path / "photo.png"
    photo.write_bytes(make_image("png", 5))
    opened: list[Path] = []
    real_open = Path.open

    def counting_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == photo:
            opened.append(self)
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", counting_open)
    chunks = await run("add a hat", model="gpt-image-1", image=str(photo))
    assert kinds(chunks) == ["ImageFinal", "Usage"]
    assert server.requests[0].files[0][3] == make_image("png", 5)
    assert len(opened) == 1


async def test_organisation_project_and_azure_style_auth(run: Any, server: OpenAIServer) -> None:
    await run(
        model="gpt-image-1",
        organization="org-1",
        project="proj_2",
        auth_header="api-key",
        api_version="2025-04-01",
        headers={"x-gateway-route": "images"},
    )
    (sent,) = server.requests
    assert sent.headers["OpenAI-Organization"] == "org-1"
    assert sent.headers["OpenAI-Project"] == "proj_2"
    assert sent.headers["api-key"] == server.key and "Authorization" not in sent.headers
    assert sent.headers["x-gateway-route"] == "images"


async def test_analytics_prices_image_tokens_at_the_image_rate(server: OpenAIServer) -> None:
    result = await imagestream.agenerate(
        "a lighthouse",
        provider="openai",
        model="gpt-image-1",
        base_url=server.base_url,
        api_key=server.key,
    )
    assert result.analytics is not None
    expected = (16 * 5.00 + 1056 * 40.00) / 1_000_000
    assert result.analytics.cost_usd == pytest.approx(expected)
    assert result.image is not None and result.image.image.data == make_image("png", 10)


async def test_base64_is_not_decoded_until_asked(server: OpenAIServer) -> None:
    # With validation off nothing needs the bytes: the payload stays base64 end to end.
    # (The plugins fixture's fresh manager is reset after the test.)
    imagestream.unregister_plugin("validation")
    chunks = await collect(server, model="gpt-image-1", partial_images=1)
    final = chunks[1]
    assert final.image.arrived_as_base64
    assert final.image.b64 == b64_image("png", 10)
    assert base64.b64decode(final.image.b64) == final.image.data
    assert not final.image.arrived_as_base64


def test_chunks_convert_to_dicts_and_back() -> None:
    image = imagestream.ImageData.from_base64(b64_image("png", 1), "image/png")
    chunk = ImagePreview(image=image, index=0, mime_type="image/png", extra={"size": "1024x1024"})
    again = imagestream.chunk_from_dict(imagestream.chunk_to_dict(chunk))
    assert again == chunk
    assert again.image.data == make_image("png", 1)
    assert TextDelta("x") == imagestream.chunk_from_dict(imagestream.chunk_to_dict(TextDelta("x")))


async def test_generate_returns_the_whole_response(server: OpenAIServer) -> None:
    from imagestream_openai import OpenAIProvider

    provider = OpenAIProvider()
    prepared = provider.validate(
        imagestream.ImageRequest(
            "an otter",
            model="gpt-image-1",
            partial_images=2,
            api_key=server.key,
            base_url=server.base_url,
        )
    )
    request = prepared.request
    http = imagestream.HttpClient()
    context = imagestream.RunContext(
        request,
        provider,
        decoders=imagestream.get_decoder,
        http=lambda: http,
        generate=lambda: provider.generate(request, context),
    )
    try:
        # validate's settings ride on the context; without them the request is parsed again.
        context.prepared = prepared.settings
        response = await provider.generate(request, context)
        context.prepared = None
        responses = await provider.generate(
            attrs.evolve(request, options={"api": "responses"}), context
        )
    finally:
        await http.close()
    assert [final.image.data for final in response.images] == [make_image("png", 20)]
    assert response.usage is not None and response.usage.output_tokens == 272
    assert (
        "partial_images" not in server.requests[0].json and "stream" not in server.requests[0].json
    )
    assert responses.text == server.text and len(responses.images) == 1
    assert server.requests[1].json["stream"] is False
