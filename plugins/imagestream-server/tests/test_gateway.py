"""The OpenAI-compatible gateway, judged by the official ``openai`` SDK.

Every scenario runs the real application on 127.0.0.1 and talks to it with
``openai.AsyncOpenAI``: if the SDK parses the answers into its types (and
its strict ``responses.stream()`` helper accepts the events), the gateway
speaks OpenAI's protocol. Images are compared byte for byte with what the
provider made or what the server saved.

Providers: the installed offline ``procedural`` (one preview per sampler
step) and small providers registered per test through the public API: one
without previews (fake streaming), one that echoes its input image, one
that sends many previews, one that fails mid-stream, one that waits.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

import imagestream
from imagestream import (
    ImageData,
    ImageFinal,
    ImagePreview,
    ImageRequest,
    ModelInfo,
    Provider,
    ProviderResponse,
    RunContext,
    ServerError,
    Usage,
    ValidationError,
)
from imagestream.provider import load_input_images
from imagestream.testing import ScriptedProvider, make_image, provider_plugin
from imagestream_server import ServerConfig, make_app
from imagestream_server._gateway import resolve_model
from imagestream_server._gateway_params import image_settings
from imagestream_server._openai_errors import GatewayError
from imagestream_server._openai_events import PartialPicker

openai = pytest.importorskip("openai")

pytestmark = pytest.mark.timeout(30)

STILL_PNG = make_image("png", 7, 40, 30)


# -- test providers -------------------------------------------------------------------


class StillProvider(Provider):
    """Generates only (no previews): the core streams it with synthetic chunks."""

    name = "still"
    description = "a test provider without previews"
    models = (ModelInfo("still-1", "one fixed picture"),)
    default_model = "still-1"

    async def generate(self, request: ImageRequest, context: RunContext) -> ProviderResponse:
        return ProviderResponse(
            images=[
                ImageFinal(
                    ImageData.from_bytes(STILL_PNG, "image/png"),
                    mime_type="image/png",
                    width=40,
                    height=30,
                    revised_prompt=f"still: {request.prompt}",
                )
            ],
            text="here is a still picture",
            usage=Usage(input_tokens=5, output_tokens=100, total_tokens=105),
        )


class EchoProvider(Provider):
    """Returns its input images unchanged, one final each (an edit provider)."""

    name = "echo"
    description = "a test provider that returns its input images"
    models = (ModelInfo("echo-1", "the input, back"),)
    default_model = "echo-1"

    def validate(self, request: ImageRequest) -> ImageRequest:
        if request.option("image") is None:
            raise ValidationError("echo: needs an input image", hint="pass image=")
        unknown = set(request.options) - {"image", "mask"}
        if unknown:
            raise ValidationError(f"echo: unknown option(s) {', '.join(sorted(unknown))}")
        return request

    async def generate(self, request: ImageRequest, context: RunContext) -> ProviderResponse:
        inputs = load_input_images(request.option("image"), "image", provider=self.name)
        return ProviderResponse(
            images=[
                ImageFinal(ImageData.from_bytes(item.image.data), sample=number)
                for number, item in enumerate(inputs)
            ]
        )


class GateProvider(Provider):
    """Streams one preview, then waits for ``release``; notes when it is closed."""

    name = "gate"
    description = "a test provider that waits"
    models = (ModelInfo("gate-1", "waits", streams_previews=True),)
    default_model = "gate-1"

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.closed = asyncio.Event()

    async def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Any]:
        try:
            yield ImagePreview(ImageData.from_bytes(make_image("jpeg", 1)), index=0)
            await self.release.wait()
            yield ImageFinal(ImageData.from_bytes(make_image("png", 2)))
        finally:
            self.closed.set()


STEP_PREVIEWS = [make_image("jpeg", step, 32, 24) for step in range(10)]
STEP_FINAL = make_image("webp", 3, 32, 24)


def steps_provider() -> Provider:
    """Ten previews with their step numbers (ignoring ``partial_images``), then a WebP."""
    chunks: list[Any] = [
        ImagePreview(ImageData.from_bytes(data), index=step, step=step, total_steps=10)
        for step, data in enumerate(STEP_PREVIEWS)
    ]
    chunks.append(ImageFinal(ImageData.from_bytes(STEP_FINAL), width=32, height=24))
    return ScriptedProvider("steps", chunks)


def broken_provider() -> Provider:
    """One preview, then the upstream fails."""
    return ScriptedProvider(
        "broken",
        [
            ImagePreview(ImageData.from_bytes(make_image("jpeg", 4)), index=0),
            ServerError("the upstream fell over", provider="broken", status=500),
        ],
    )


# -- fixtures -------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _local_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK trusts the environment: keep proxies and a developer's OpenAI settings away.
    for name in list(os.environ):
        if name.lower().endswith("_proxy") or name.startswith("OPENAI_"):
            monkeypatch.delenv(name)


@pytest.fixture
def register() -> Iterator[Callable[..., None]]:
    """``register(*providers)``: install providers until the end of the test."""
    names: list[str] = []

    def add(*providers: Provider) -> None:
        name = f"gateway-test-{len(names)}"
        imagestream.register_plugin(provider_plugin(*providers), name)
        names.append(name)

    yield add
    for name in reversed(names):
        imagestream.unregister_plugin(name)


Serve = Callable[..., Awaitable[Any]]


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Serve]:
    """``await serve(**config)``: the app on 127.0.0.1, and an SDK client for it."""
    servers: list[TestServer] = []
    clients: list[Any] = []

    async def start(**config: Any) -> Any:
        config.setdefault("out_dir", tmp_path / "out")
        server = TestServer(make_app(ServerConfig(**config)), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        client = openai.AsyncOpenAI(
            base_url=str(server.make_url("/v1")),
            api_key=config["token"] if config.get("token") else "unused",
            max_retries=0,
            timeout=10,
        )
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()
    for server in servers:
        await server.close()


def saved_files(tmp_path: Path) -> list[bytes]:
    folder = tmp_path / "out"
    return [path.read_bytes() for path in sorted(folder.iterdir())] if folder.is_dir() else []


def decode(b64: str | None) -> bytes:
    assert b64 is not None
    return base64.b64decode(b64, validate=True)


async def read_types(stream: Any, into: list[str]) -> None:
    """Append each event's type to ``into`` until the stream ends (or raises)."""
    async for event in stream:
        into.append(event.type)


def is_jpeg(data: bytes) -> bool:
    return data.startswith(b"\xff\xd8\xff")


def is_png(data: bytes) -> bool:
    return data.startswith(b"\x89PNG\r\n\x1a\n")


# -- models ---------------------------------------------------------------------------


async def test_models_list_names_every_model_provider_slash_model(
    serve: Serve, register: Callable[..., None]
) -> None:
    register(StillProvider())
    sdk = await serve()
    listed = [model.id async for model in sdk.models.list()]
    assert "procedural/procedural-1" in listed and "still/still-1" in listed
    assert all("/" in model for model in listed)
    assert (await sdk.models.retrieve("procedural")).id == "procedural/procedural-1"
    assert (await sdk.models.retrieve("still-1")).owned_by == "still"


def test_model_names_provider_model_bare_model_and_provider(
    register: Callable[..., None],
) -> None:
    register(StillProvider(), ScriptedProvider("twin", []))
    assert resolve_model("procedural", default_provider=None).name == "procedural/procedural-1"
    assert resolve_model("procedural-1", default_provider=None).name == "procedural/procedural-1"
    target = resolve_model("still/still-1", default_provider=None)
    assert (target.provider.name, target.model) == ("still", "still-1")
    assert resolve_model(None, default_provider="still").name == "still/still-1"
    with pytest.raises(GatewayError) as missing:
        resolve_model("no-such-model", default_provider=None)
    assert (missing.value.status, missing.value.code) == (404, "model_not_found")


def test_a_bare_model_two_providers_list_is_ambiguous_unless_one_is_the_default(
    register: Callable[..., None],
) -> None:
    class Twin(StillProvider):
        name = "twin"

    register(StillProvider(), Twin())
    with pytest.raises(GatewayError) as ambiguous:
        resolve_model("still-1", default_provider=None)
    assert (
        ambiguous.value.status == 400 and "still/still-1, twin/still-1" in ambiguous.value.message
    )
    assert resolve_model("still-1", default_provider="twin").name == "twin/still-1"


def test_openai_only_fields_become_options_for_openai_and_are_ignored_or_refused_elsewhere(
    register: Callable[..., None],
) -> None:
    register(StillProvider())
    fields = {"user": "u1", "moderation": "low", "background": "opaque", "output_compression": "50"}
    if any(provider.name == "openai" for provider in imagestream.list_providers()):
        settings = image_settings(
            fields, resolve_model("openai/gpt-image-1", default_provider=None), stream=True
        )
        assert settings.options == {
            "user": "u1",
            "moderation": "low",
            "background": "opaque",
            "output_compression": 50,
        }
    still = resolve_model("still", default_provider=None)
    ignored = image_settings(
        {"user": "u1", "moderation": "low", "background": "auto"}, still, stream=False
    )
    assert ignored.options == {} and ignored.params == {}
    with pytest.raises(GatewayError) as refused:
        image_settings({"background": "transparent"}, still, stream=False)
    assert (refused.value.param, refused.value.code) == ("background", "unsupported_parameter")
    with pytest.raises(GatewayError) as unknown:
        image_settings({"headers": {"x": "y"}}, still, stream=False)
    assert unknown.value.code == "unknown_parameter"


# -- the Images API ---------------------------------------------------------------------


async def test_a_server_that_keeps_nothing_refuses_urls_before_generating(
    serve: Serve, tmp_path: Path
) -> None:
    sdk = await serve(save=False)
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.images.generate(model="procedural", prompt="a circle", response_format="url")
    assert refused.value.param == "response_format" and "--no-save" in refused.value.message
    result = await sdk.images.generate(model="procedural", prompt="a red circle", size="64x48")
    assert result.data is not None and is_png(decode(result.data[0].b64_json))
    assert saved_files(tmp_path) == []


async def test_generate_returns_the_saved_image_byte_for_byte(serve: Serve, tmp_path: Path) -> None:
    sdk = await serve()
    result = await sdk.images.generate(model="procedural", prompt="a red circle", size="64x48")
    assert result.data is not None and len(result.data) == 1
    image = decode(result.data[0].b64_json)
    assert [image] == saved_files(tmp_path) and is_png(image)
    assert (result.output_format, result.size) == ("png", "64x48")
    assert result.data[0].revised_prompt
    assert result.usage is not None and result.usage.input_tokens == 3


async def test_generate_stream_sends_exactly_the_partials_asked_for_then_the_image(
    serve: Serve, tmp_path: Path
) -> None:
    from openai.types import ImageGenCompletedEvent, ImageGenPartialImageEvent

    sdk = await serve()
    stream = await sdk.images.generate(
        model="procedural/procedural-1",
        prompt="a blue square",
        size="64x64",
        stream=True,
        partial_images=2,
    )
    events = [event async for event in stream]
    assert [type(event) for event in events] == [
        ImageGenPartialImageEvent,
        ImageGenPartialImageEvent,
        ImageGenCompletedEvent,
    ]
    first, second, done = events
    assert (first.partial_image_index, second.partial_image_index) == (0, 1)
    # Previews are JPEGs, the final a PNG: each event says what its own bytes are.
    assert first.output_format == "jpeg" and is_jpeg(decode(first.b64_json))
    assert done.output_format == "png" and [decode(done.b64_json)] == saved_files(tmp_path)
    assert done.size == "64x64" and done.usage.input_tokens == 3
    numbers = [event.model_extra["sequence_number"] for event in events]
    assert numbers == [0, 1, 2]


async def test_a_provider_without_previews_still_streams_the_image(
    serve: Serve, register: Callable[..., None], tmp_path: Path
) -> None:
    register(StillProvider())
    sdk = await serve()
    stream = await sdk.images.generate(model="still", prompt="x", stream=True, partial_images=2)
    events = [event async for event in stream]
    assert [event.type for event in events] == ["image_generation.completed"]
    assert decode(events[0].b64_json) == STILL_PNG == saved_files(tmp_path)[0]
    assert events[0].size == "40x30" and events[0].usage.total_tokens == 105


async def test_partials_are_spread_over_the_previews_and_end_on_the_last(
    serve: Serve, register: Callable[..., None]
) -> None:
    register(steps_provider())
    sdk = await serve()
    stream = await sdk.images.generate(model="steps", prompt="x", stream=True, partial_images=3)
    events = [event async for event in stream]
    partials = [decode(event.b64_json) for event in events[:-1]]
    assert partials == [STEP_PREVIEWS[2], STEP_PREVIEWS[6], STEP_PREVIEWS[9]]
    assert events[-1].output_format == "webp" and decode(events[-1].b64_json) == STEP_FINAL


def test_previews_without_steps_send_the_first_and_keep_the_last_for_the_end() -> None:
    picker = PartialPicker(2)
    previews = [ImagePreview(ImageData.from_bytes(b"p%d" % n), index=n) for n in range(5)]
    sent = [picked for preview in previews for picked in picker.offer(preview)]
    sent += picker.finish(0)
    assert [(index, preview.index) for index, preview in sent] == [(0, 0), (1, 4)]
    assert PartialPicker(0).offer(previews[0]) == [] and PartialPicker(0).finish(0) == []


async def test_response_format_url_serves_the_saved_file(serve: Serve, tmp_path: Path) -> None:
    sdk = await serve()
    result = await sdk.images.generate(
        model="procedural", prompt="a cat", size="32x32", response_format="url"
    )
    assert result.data is not None and result.data[0].url is not None
    async with aiohttp.ClientSession() as session, session.get(result.data[0].url) as response:
        assert response.status == 200
        assert await response.read() == saved_files(tmp_path)[0]


async def test_edit_passes_the_uploaded_images_to_the_provider(
    serve: Serve, register: Callable[..., None]
) -> None:
    register(EchoProvider())
    sdk = await serve()
    first, second = make_image("png", 11), make_image("webp", 12)
    stream = await sdk.images.edit(
        model="echo",
        prompt="the same, please",
        image=[("a.png", first, "image/png"), ("b.webp", second, "image/webp")],
        stream=True,
        partial_images=1,
    )
    events = [event async for event in stream]
    assert [event.type for event in events] == ["image_edit.completed", "image_edit.completed"]
    assert [decode(event.b64_json) for event in events] == [first, second]
    assert [event.output_format for event in events] == ["png", "webp"]

    whole = await sdk.images.edit(model="echo", prompt="again", image=("a.png", first, "image/png"))
    assert whole.data is not None and decode(whole.data[0].b64_json) == first


async def test_an_edit_for_a_provider_without_input_images_gets_its_refusal(serve: Serve) -> None:
    sdk = await serve()
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.images.edit(
            model="procedural", prompt="x", image=("a.png", make_image("png"), "image/png")
        )
    assert "procedural" in refused.value.message and "image" in refused.value.message
    assert refused.value.body["type"] == "invalid_request_error"


# -- the Responses API ------------------------------------------------------------------


RESPONSE_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.image_generation_call.in_progress",
    "response.image_generation_call.generating",
    "response.image_generation_call.partial_image",
    "response.image_generation_call.partial_image",
    "response.image_generation_call.completed",
    "response.output_item.done",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


async def test_responses_stream_with_the_image_tool(serve: Serve, tmp_path: Path) -> None:
    sdk = await serve()
    stream = await sdk.responses.create(
        model="gpt-5",
        input="a green triangle",
        stream=True,
        tools=[{"type": "image_generation", "partial_images": 2, "size": "64x64"}],
    )
    events = [event async for event in stream]
    assert [event.type for event in events] == RESPONSE_EVENTS
    assert [event.sequence_number for event in events] == list(range(len(events)))
    created, completed = events[0], events[-1]
    assert created.response.id == completed.response.id and created.response.id.startswith("resp_")
    assert created.response.status == "in_progress" and created.response.output == []
    image_item = events[-8].item
    assert image_item.type == "image_generation_call" and image_item.id.startswith("ig_")
    assert events[5].output_format == "jpeg" and is_jpeg(decode(events[5].partial_image_b64))
    assert [decode(image_item.result)] == saved_files(tmp_path)
    final = completed.response
    assert final.status == "completed" and final.model == "gpt-5"
    assert [item.type for item in final.output] == ["image_generation_call", "message"]
    assert final.output_text and final.usage is not None and final.usage.total_tokens == 3


async def test_the_sdk_strict_stream_helper_accepts_the_events(
    serve: Serve, register: Callable[..., None]
) -> None:
    register(StillProvider())
    sdk = await serve()
    async with sdk.responses.stream(
        model="still/still-1",  # the image provider implied by the top-level model
        input=[{"role": "user", "content": [{"type": "input_text", "text": "a still"}]}],
        tools=[{"type": "image_generation", "partial_images": 2}],
    ) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert "response.image_generation_call.partial_image" not in kinds
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    image = final.output[0]
    assert image.type == "image_generation_call" and decode(image.result) == STILL_PNG
    assert final.output_text == "here is a still picture"
    assert final.usage is not None and final.usage.output_tokens == 100


async def test_responses_without_stream_answer_the_whole_response(
    serve: Serve, register: Callable[..., None]
) -> None:
    register(EchoProvider())
    sdk = await serve()
    picture = make_image("png", 21)
    data_url = "data:image/png;base64," + base64.b64encode(picture).decode()
    response = await sdk.responses.create(
        model="any-controlling-model",
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "keep it"},
                    {"type": "input_image", "image_url": data_url},
                ],
            }
        ],
        tools=[{"type": "image_generation", "model": "echo"}],
    )
    assert response.status == "completed" and response.id.startswith("resp_")
    assert [item.type for item in response.output] == ["image_generation_call"]
    assert decode(response.output[0].result) == picture


async def test_responses_refuse_image_urls_the_server_would_have_to_fetch(serve: Serve) -> None:
    sdk = await serve()
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.responses.create(
            model="m",
            input=[
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "x"},
                        {"type": "input_image", "image_url": "file:///etc/passwd"},
                    ],
                }
            ],
            tools=[{"type": "image_generation"}],
        )
    assert refused.value.code == "invalid_image_url"


# -- errors -----------------------------------------------------------------------------


async def test_errors_before_the_stream_have_openai_shape_and_status(serve: Serve) -> None:
    sdk = await serve()
    with pytest.raises(openai.NotFoundError) as unknown:
        await sdk.images.generate(model="no-such-model", prompt="x", stream=True)
    assert unknown.value.body == {
        "message": unknown.value.body["message"],
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }
    with pytest.raises(openai.BadRequestError) as size:
        await sdk.images.generate(model="procedural", prompt="x", size="big")
    assert size.value.param == "size"
    with pytest.raises(openai.BadRequestError) as refused:  # the provider's own check
        await sdk.images.generate(model="procedural", prompt="x", size="9000x9000", stream=True)
    assert "out of range" in refused.value.message
    with pytest.raises(openai.BadRequestError) as extra:
        await sdk.images.generate(model="procedural", prompt="x", extra_body={"api_key": "k"})
    assert extra.value.code == "unknown_parameter"
    with pytest.raises(openai.BadRequestError) as no_tool:
        await sdk.responses.create(model="m", input="x")
    assert no_tool.value.param == "tools"
    with pytest.raises(openai.NotFoundError):
        await sdk.get("/no/such/route", cast_to=object)


async def test_a_provider_without_a_key_is_503_and_the_variable_is_not_named(
    serve: Serve,
) -> None:
    if not any(provider.name == "openai" for provider in imagestream.list_providers()):
        pytest.skip("imagestream-openai is not installed")
    sdk = await serve()  # the environment holds no OPENAI_* variable (see _local_only)
    with pytest.raises(openai.InternalServerError) as refused:
        await sdk.images.generate(model="gpt-image-1", prompt="x")  # a bare model id
    assert refused.value.status_code == 503 and refused.value.code == "provider_not_configured"
    assert "openai" in refused.value.message and "OPENAI_API_KEY" not in refused.value.message


async def test_an_error_after_the_stream_started_is_raised_by_the_sdk(
    serve: Serve, register: Callable[..., None]
) -> None:
    register(broken_provider())
    sdk = await serve()
    stream = await sdk.images.generate(model="broken", prompt="x", stream=True, partial_images=2)
    seen: list[str] = []
    with pytest.raises(openai.APIError) as failed:
        await read_types(stream, seen)
    assert seen == ["image_generation.partial_image"]
    assert "fell over" in failed.value.message
    assert failed.value.body["type"] == "server_error"

    responses = await sdk.responses.create(
        model="broken/x", input="x", stream=True, tools=[{"type": "image_generation"}]
    )
    kinds: list[str] = []
    with pytest.raises(openai.APIError):
        await read_types(responses, kinds)
    assert kinds[0] == "response.created" and "response.completed" not in kinds


async def test_the_server_limit_is_a_rate_limit_error(
    serve: Serve, register: Callable[..., None]
) -> None:
    gate = GateProvider()
    register(gate)
    sdk = await serve(max_per_client=1)
    stream = await sdk.images.generate(model="gate", prompt="x", stream=True, partial_images=1)
    with pytest.raises(openai.RateLimitError) as limited:
        await sdk.images.generate(model="gate", prompt="y")
    assert limited.value.code == "rate_limit_exceeded"
    assert limited.value.response.headers["Retry-After"] == "2"
    gate.release.set()
    kinds = [event.type async for event in stream]
    assert kinds == ["image_generation.partial_image", "image_generation.completed"]


async def test_the_server_token_is_checked_with_openai_errors(serve: Serve) -> None:
    sdk = await serve(token="s3cret-token")
    assert [model.id async for model in sdk.models.list()]
    wrong = sdk.with_options(api_key="wrong")
    with pytest.raises(openai.AuthenticationError) as refused:
        await wrong.images.generate(model="procedural", prompt="x")
    assert refused.value.code == "invalid_api_key"
    assert "s3cret" not in str(refused.value.body)


async def test_a_body_over_the_limit_is_413_in_openai_shape(serve: Serve) -> None:
    sdk = await serve(max_body_bytes=4096)
    with pytest.raises(openai.APIStatusError) as refused:
        await sdk.images.edit(
            model="procedural", prompt="x", image=("a.png", os.urandom(20_000), "image/png")
        )
    assert refused.value.status_code == 413 and refused.value.code == "request_too_large"


async def test_a_client_that_leaves_stops_the_generation(
    serve: Serve, register: Callable[..., None]
) -> None:
    gate = GateProvider()
    register(gate)
    sdk = await serve()
    stream = await sdk.images.generate(model="gate", prompt="x", stream=True, partial_images=2)
    first = await stream.__anext__()
    assert first.type == "image_generation.partial_image"
    await stream.close()
    await asyncio.wait_for(gate.closed.wait(), timeout=5)
    assert not gate.release.is_set()
