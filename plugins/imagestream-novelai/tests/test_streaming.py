"""Streaming against the fake server: msgpack and SSE give the same chunks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from imagestream import ImageFinal, ImagePreview
from imagestream.testing import chunks_of


def _shape(chunks: list[Any]) -> list[tuple[Any, ...]]:
    """What a chunk stream says, independent of how payloads arrived (bytes or base64)."""
    out: list[tuple[Any, ...]] = []
    for chunk in chunks:
        if isinstance(chunk, ImagePreview):
            out.append(
                ("preview", chunk.sample, chunk.index, chunk.step, chunk.total_steps, chunk.sigma, chunk.mime_type,
                 chunk.image.sha256, dict(chunk.extra))
            )
        elif isinstance(chunk, ImageFinal):
            out.append(("final", chunk.sample, chunk.mime_type, chunk.seed, chunk.image.sha256, dict(chunk.extra)))
        else:
            out.append((type(chunk).__name__,))
    return out


async def test_msgpack_stream_previews_then_final(nai: Any) -> None:
    chunks = await nai.run(steps=28, seed=42)
    previews = chunks_of(ImagePreview, chunks)
    finals = chunks_of(ImageFinal, chunks)
    assert len(previews) == 28
    assert [p.step for p in previews] == list(range(28))
    assert [p.index for p in previews] == list(range(28))
    assert {p.total_steps for p in previews} == {28}
    assert all(p.mime_type == "image/jpeg" and p.image.data[:3] == b"\xff\xd8\xff" for p in previews)
    assert previews[0].sigma is not None and previews[0].sigma > previews[-1].sigma
    assert not any(p.synthetic for p in previews)
    assert len(finals) == 1
    final = finals[0]
    assert final.mime_type == "image/png" and final.image.data.startswith(b"\x89PNG")
    assert final.seed == 42 and final.sample == 0
    assert final.extra["gen_id"] == "1234567"
    body = nai.server.requests[-1].body
    assert body["parameters"]["stream"] == "msgpack" and body["parameters"]["steps"] == 28


async def test_sse_gives_the_same_chunks_as_msgpack(nai: Any) -> None:
    msgpack_chunks = await nai.run(steps=6, seed=7, n=2)
    sse_chunks = await nai.run(steps=6, seed=7, n=2, stream="sse")
    assert nai.server.requests[-1].body["parameters"]["stream"] == "sse"
    assert _shape(sse_chunks) == _shape(msgpack_chunks)
    # SSE payloads stay base64 until someone needs the bytes (the validation
    # middleware did, here); msgpack payloads arrive as bytes.
    sse_preview = chunks_of(ImagePreview, sse_chunks)[0]
    assert sse_preview.image.b64 and sse_preview.image.declared_mime_type == "image/jpeg"


async def test_interleaved_samples_are_kept_apart(nai: Any) -> None:
    chunks = await nai.run(steps=5, n=3, seed=1)
    previews = chunks_of(ImagePreview, chunks)
    assert [p.sample for p in previews[:3]] == [0, 1, 2]  # the server interleaves
    for sample in range(3):
        mine = [p for p in previews if p.sample == sample]
        assert [p.index for p in mine] == list(range(5))
        assert [p.step for p in mine] == list(range(5))
    assert sorted(f.sample for f in chunks_of(ImageFinal, chunks)) == [0, 1, 2]
    assert nai.server.requests[-1].body["parameters"]["n_samples"] == 3


@pytest.mark.parametrize("stream", ["msgpack", "sse"])
@pytest.mark.parametrize(
    "variant",
    [
        {"gen_id_text": True},
        {"final_step_sigma": False},
        {"interleave": False},
        {"steps_field": True},
        {"sse_type_in_data": False},
    ],
    ids=["gen_id-str", "final-without-step-sigma", "sequential-samples", "steps-field", "type-only-on-event-line"],
)
async def test_every_shape_the_clients_disagree_about(nai: Any, stream: str, variant: dict[str, Any]) -> None:
    for name, value in variant.items():
        setattr(nai.server.script, name, value)
    chunks = await nai.run(steps=4, n=2, seed=9, stream=stream)
    previews = chunks_of(ImagePreview, chunks)
    finals = chunks_of(ImageFinal, chunks)
    assert len(previews) == 8 and len(finals) == 2
    assert {p.total_steps for p in previews} == {4}
    assert {f.extra["gen_id"] for f in finals} == {"1234567"}
    if variant == {"final_step_sigma": False}:
        assert all("step" not in f.extra and "sigma" not in f.extra for f in finals)
    else:
        assert all(f.extra["step"] == 3 for f in finals)


async def test_partial_images_thins_previews_evenly(nai: Any) -> None:
    chunks = await nai.run(steps=28, partial_images=4)
    previews = chunks_of(ImagePreview, chunks)
    assert [p.step for p in previews] == [6, 13, 20, 27]
    assert [p.index for p in previews] == [0, 1, 2, 3]
    assert len(chunks_of(ImageFinal, chunks)) == 1


async def test_request_carries_token_and_web_app_headers(nai: Any) -> None:
    await nai.run(steps=2)
    headers = nai.server.requests[-1].headers
    assert headers["authorization"] == f"Bearer {nai.server.token}"
    assert headers["content-type"].startswith("application/json")
    assert len(headers["x-correlation-id"]) == 6
    assert headers["x-initiated-at"].endswith("Z")


async def test_seed_is_random_when_absent_and_reported(nai: Any) -> None:
    first = chunks_of(ImageFinal, await nai.run(steps=2))[0]
    second = chunks_of(ImageFinal, await nai.run(steps=2))[0]
    sent = [request.body["parameters"]["seed"] for request in nai.server.requests[-2:]]
    assert [first.seed, second.seed] == sent
    assert first.seed != second.seed


async def test_v3_uses_the_zip_endpoint_by_default(nai: Any) -> None:
    chunks = await nai.run(model="nai-diffusion-3", n=2, seed=5)
    finals = chunks_of(ImageFinal, chunks)
    assert [f.sample for f in finals] == [0, 1]
    assert all(f.synthetic and f.seed == 5 and f.mime_type == "image/png" for f in finals)
    assert not chunks_of(ImagePreview, chunks)
    request = nai.server.requests[-1]
    assert request.path == "/ai/generate-image"
    assert "stream" not in request.body["parameters"]
    assert "v4_prompt" not in request.body["parameters"]


async def test_stream_none_uses_the_zip_endpoint_for_v4(nai: Any) -> None:
    chunks = await nai.run(stream="none")
    assert len(chunks_of(ImageFinal, chunks)) == 1
    assert nai.server.requests[-1].path == "/ai/generate-image"


async def test_img2img_and_infill_reach_the_server(nai: Any, tmp_path: Any) -> None:
    from imagestream.testing import make_png

    source = tmp_path / "source.png"
    source.write_bytes(make_png(832, 1216))
    mask = make_png(832, 1216, (255, 255, 255))
    await nai.run(steps=3, image=str(source), strength=0.5, noise=0.1)
    body = nai.server.requests[-1].body
    assert body["action"] == "img2img" and body["model"] == "nai-diffusion-4-5-full"
    assert body["parameters"]["strength"] == 0.5 and body["parameters"]["noise"] == 0.1
    await nai.run(steps=3, image=str(source), mask=mask, action="infill")
    body = nai.server.requests[-1].body
    assert body["action"] == "infill" and body["model"] == "nai-diffusion-4-5-full-inpainting"
    assert body["parameters"]["mask"]


async def test_an_input_file_is_read_once_per_run(nai: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # validate parses the request (reading the file) and hands its settings
    # on to stream: the file is not read a second time.
    from imagestream.testing import make_png

    source = tmp_path / "source.png"
    source.write_bytes(make_png(832, 1216))
    opened: list[Path] = []
    real_open = Path.open

    def counting_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == source:
            opened.append(self)
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", counting_open)
    await nai.run(steps=2, image=str(source))
    assert len(opened) == 1
    assert nai.server.requests[-1].body["action"] == "img2img"
