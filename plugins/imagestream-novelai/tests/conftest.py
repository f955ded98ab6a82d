"""A local stand-in for NovelAI's image endpoints, and fixtures around it.

:class:`FakeNovelAI` speaks both endpoints byte for byte as the protocol
notes describe them: length-prefixed msgpack frames or SSE events from
``/ai/generate-image-stream``, a ZIP of PNGs from ``/ai/generate-image``,
``{statusCode, message}`` error bodies. Previews are real JPEGs and finals
real PNGs (drawn with Pillow). The body is written in seeded random-size
pieces that do not line up with frames or events. The server checks the
``Authorization`` header and the request body's shape, records every
request, counts generations running at once, notices clients that hang up,
and can be scripted to fail in each of the ways the tests need.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import random
import struct
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest
from aiohttp import web
from PIL import Image

from imagestream.testing import serve_in_thread

TOKEN = "pst-TESTTOKEN0123456789abcdefABCDEF"
"""The token the fake server accepts; recognisable, so tests can look for leaks."""

OTHER_TOKEN = "pst-OTHERACCOUNT9876543210zyxwvuZYXWVU"
"""A second account's token, also accepted."""

MODEL_PREFIXES = ("nai-diffusion-",)


def make_jpeg(width: int, height: int, color: tuple[int, int, int]) -> bytes:
    """A real baseline JPEG of one colour."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "JPEG", quality=70)
    return buffer.getvalue()


def make_png_image(width: int, height: int, color: tuple[int, int, int]) -> bytes:
    """A real PNG of one colour, with a gradient row so it is not trivially tiny."""
    image = Image.new("RGB", (width, height), color)
    for x in range(width):
        image.putpixel((x, 0), (x % 256, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@dataclass
class Script:
    """How the next requests are answered. Every field has the well-behaved default.

    Attributes:
        fail_status: Answer with this HTTP status and a ``{statusCode, message}`` body.
        fail_message: The message of that body.
        echo_auth: Put the received Authorization header into error messages.
        page: Answer 200 with this (content type, body) instead of the stream
            or the archive, as a proxy's login page or a JSON error sent with
            200 would.
        content_type: The Content-Type of a good stream or archive, when
            not the usual one.
        error_event_after: Send an error event after this many steps (then stop).
        error_event: Extra fields of that error event.
        end_after: End the body cleanly after this many steps, without finals.
        truncate_final: Cut the body in the middle of the last event.
        garbage_after: Send bytes that are not msgpack after this many steps.
        absurd_after: Send a length prefix of ~4 GB after this many steps.
        drop_after: Abort the connection after this many steps.
        drop_at_end: Abort the connection after the whole body instead of ending it.
        delay: Seconds to wait between two pieces of the body.
        gen_id_text: Send ``gen_id`` as a string instead of an int.
        final_step_sigma: Include ``step_ix`` and ``sigma`` in final events.
        sse_type_in_data: Include ``event_type`` in SSE data (else only on ``event:``).
        steps_field: Include the total ``steps`` in intermediate events.
        interleave: Interleave the events of a batch's samples.
        zip_mode: ``"ok"``, ``"bomb"`` (one entry inflating to ``bomb_bytes``) or ``"many"``.
        bomb_bytes: Size the bomb entry inflates to.
        many_entries: Entries in ``"many"`` mode.
        seed: Seed of the piece sizes.
        max_piece: Largest piece written at once.
    """

    fail_status: int | None = None
    fail_message: str = "failure"
    echo_auth: bool = False
    page: tuple[str, bytes] | None = None
    content_type: str | None = None
    error_event_after: int | None = None
    error_event: dict[str, Any] = field(default_factory=lambda: {"message": "generation failed"})
    end_after: int | None = None
    truncate_final: bool = False
    garbage_after: int | None = None
    absurd_after: int | None = None
    drop_after: int | None = None
    drop_at_end: bool = False
    delay: float = 0.0
    gen_id_text: bool = False
    final_step_sigma: bool = True
    sse_type_in_data: bool = True
    steps_field: bool = False
    interleave: bool = True
    zip_mode: str = "ok"
    bomb_bytes: int = 4 * 2**20
    many_entries: int = 40
    seed: int = 1234
    max_piece: int = 700


@dataclass
class Recorded:
    """One request the server received."""

    path: str
    headers: dict[str, str]
    body: Any


class FakeNovelAI:
    """The fake server's state and handlers (run it with :meth:`start`)."""

    token = TOKEN
    other_token = OTHER_TOKEN

    def __init__(self) -> None:
        self.script = Script()
        self.requests: list[Recorded] = []
        self.tokens = {TOKEN, OTHER_TOKEN}  # the accounts that exist
        self.busy: set[str] = set()  # accounts with a generation running
        self.active = 0
        self.max_active = 0
        self.disconnects = 0
        self.completed = 0
        self.port = 0
        self._runner: web.AppRunner | None = None
        self.disconnected: asyncio.Event | None = None

    # -- lifecycle ---------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_post("/ai/generate-image-stream", self._stream)
        app.router.add_post("/ai/generate-image", self._zip)
        # handler_cancellation: a client that hangs up cancels its handler,
        # which is how the server notices it.
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.disconnected = asyncio.Event()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- checks --------------------------------------------------------------

    def _error(self, status: int, message: str) -> web.Response:
        return web.json_response({"statusCode": status, "message": message}, status=status)

    async def _check(self, request: web.Request, streaming: bool) -> tuple[dict[str, Any] | None, web.Response | None]:
        """The body if the request is acceptable, else the error response to send."""
        auth = request.headers.get("Authorization", "")
        try:
            body = await request.json()
        except ValueError:
            body = None
        self.requests.append(Recorded(request.path, {k.lower(): v for k, v in request.headers.items()}, body))
        if auth not in {f"Bearer {token}" for token in self.tokens}:
            message = f"Invalid token: {auth}" if self.script.echo_auth else "Invalid token"
            return None, self._error(401, message)
        problem = _shape_problem(body, streaming)
        if problem:
            return None, self._error(400, problem)
        if self.script.fail_status is not None:
            message = self.script.fail_message
            if self.script.echo_auth:
                message += f" (request had {auth})"
            return None, self._error(self.script.fail_status, message)
        if auth in self.busy:
            # NovelAI's one-generation-at-a-time lock per account.
            return None, self._error(429, "Concurrent generation is locked")
        if self.script.page is not None:
            content_type, page = self.script.page
            return None, web.Response(body=page, headers={"Content-Type": content_type})
        assert isinstance(body, dict)
        return body, None

    # -- the streaming endpoint --------------------------------------------

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        body, failure = await self._check(request, streaming=True)
        if failure is not None:
            return failure
        assert body is not None
        parameters = body["parameters"]
        mode = parameters["stream"]
        account = request.headers["Authorization"]
        self.busy.add(account)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            usual = "text/event-stream" if mode == "sse" else "application/msgpack"
            response = web.StreamResponse(headers={"Content-Type": self.script.content_type or usual})
            response.enable_chunked_encoding()
            await response.prepare(request)
            payload = self._stream_body(parameters, mode)
            await self._write(request, response, payload)
            if self.script.drop_after is not None or self.script.drop_at_end:
                assert request.transport is not None
                request.transport.abort()
                return response
            await response.write_eof()
            self.completed += 1
            return response
        except (asyncio.CancelledError, ConnectionResetError):
            self.disconnects += 1
            if self.disconnected is not None:
                self.disconnected.set()
            raise
        finally:
            self.active -= 1
            self.busy.discard(account)

    async def _write(self, request: web.Request, response: web.StreamResponse, payload: bytes) -> None:
        rng = random.Random(self.script.seed)
        position = 0
        while position < len(payload):
            size = rng.randint(1, self.script.max_piece)
            await response.write(payload[position : position + size])
            position += size
            if self.script.delay:
                await asyncio.sleep(self.script.delay)
            elif rng.random() < 0.2:
                await asyncio.sleep(0)

    def _events(self, parameters: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        """The events of one generation, in wire order, as (kind, fields)."""
        steps = int(parameters["steps"])
        samples = int(parameters["n_samples"])
        script = self.script
        gen_id: int | str = "1234567" if script.gen_id_text else 1234567
        order = (
            [(step, sample) for step in range(steps) for sample in range(samples)]
            if script.interleave
            else [(step, sample) for sample in range(samples) for step in range(steps)]
        )
        done_steps: dict[int, int] = {}
        for step, sample in order:
            fields: dict[str, Any] = {
                "event_type": "intermediate",
                "samp_ix": sample,
                "step_ix": step,
                "gen_id": gen_id,
                "sigma": round(14.6 * (1 - step / steps) + 0.03, 4),
                "image": make_jpeg(26, 38, (10 * step % 256, 40 * sample % 256, 128)),
            }
            if script.steps_field:
                fields["steps"] = steps
            yield "intermediate", fields
            done_steps[sample] = done_steps.get(sample, 0) + 1
            if not script.interleave and done_steps[sample] == steps:
                yield "final", self._final(sample, steps, gen_id)
        if script.interleave:
            for sample in range(samples):
                yield "final", self._final(sample, steps, gen_id)

    def _final(self, sample: int, steps: int, gen_id: int | str) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "event_type": "final",
            "samp_ix": sample,
            "gen_id": gen_id,
            "image": make_png_image(104, 152, (200, 60 * sample % 256, 30)),
        }
        if self.script.final_step_sigma:
            fields["step_ix"] = steps - 1
            fields["sigma"] = 0.0
        return fields

    def _stream_body(self, parameters: dict[str, Any], mode: str) -> bytes:
        script = self.script
        out: list[bytes] = []
        steps_sent = 0
        for kind, fields in self._events(parameters):
            if kind == "intermediate":
                if script.end_after is not None and steps_sent >= script.end_after:
                    break
                if script.error_event_after is not None and steps_sent >= script.error_event_after:
                    out.append(_encode({"event_type": "error", **script.error_event}, mode, script))
                    break
                if script.garbage_after is not None and steps_sent >= script.garbage_after:
                    # 0xc1 is the one byte msgpack never uses; in SSE, data that is not JSON.
                    garbage = b"\x00\x00\x00\x06" + b"\xc1" * 6 if mode == "msgpack" else b"data: {oops\n\n"
                    out.append(garbage)
                    break
                if script.absurd_after is not None and steps_sent >= script.absurd_after:
                    out.append(b"\xff\xff\xff\xf0" + b"\x00" * 64)
                    break
                if script.drop_after is not None and steps_sent >= script.drop_after:
                    break
                steps_sent += 1
            out.append(_encode(fields, mode, script))
        data = b"".join(out)
        if script.truncate_final:
            data = data[: len(data) - 25]
        return data

    # -- the ZIP endpoint ----------------------------------------------------

    async def _zip(self, request: web.Request) -> web.StreamResponse:
        body, failure = await self._check(request, streaming=False)
        if failure is not None:
            return failure
        assert body is not None
        samples = int(body["parameters"]["n_samples"])
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            archive = self._archive(samples)
            self.completed += 1
            content_type = self.script.content_type or "application/x-zip-compressed"
            return web.Response(body=archive, headers={"Content-Type": content_type})
        finally:
            self.active -= 1

    def _archive(self, samples: int) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            if self.script.zip_mode == "many":
                for number in range(self.script.many_entries):
                    archive.writestr(f"image_{number}.png", make_png_image(8, 8, (number, 0, 0)))
            else:
                for sample in range(samples):
                    archive.writestr(f"image_{sample}.png", make_png_image(104, 152, (10, 200, 60 * sample % 256)))
                if self.script.zip_mode == "bomb":
                    archive.writestr("image_99.png", b"\x00" * self.script.bomb_bytes)
        return buffer.getvalue()


def _encode(fields: dict[str, Any], mode: str, script: Script) -> bytes:
    """One event on the wire: a length-prefixed msgpack frame, or an SSE event."""
    if mode == "msgpack":
        packed = bytes(msgpack.packb(fields, use_bin_type=True))
        return struct.pack(">I", len(packed)) + packed
    data = {key: value for key, value in fields.items() if script.sse_type_in_data or key != "event_type"}
    if isinstance(data.get("image"), bytes):
        data["image"] = base64.b64encode(data["image"]).decode("ascii")
    return f"event: {fields['event_type']}\ndata: {json.dumps(data)}\n\n".encode()


def _shape_problem(body: object, streaming: bool) -> str | None:
    """What is wrong with a request body, per the recorded ones; ``None`` if nothing."""
    if not isinstance(body, dict):
        return "body must be a JSON object"
    if not isinstance(body.get("input"), str) or not body["input"]:
        return "input must be a non-empty string"
    model = body.get("model")
    if not isinstance(model, str) or not model.startswith(MODEL_PREFIXES):
        return "unknown model"
    if body.get("action") not in ("generate", "img2img", "infill"):
        return "bad action"
    parameters = body.get("parameters")
    if not isinstance(parameters, dict):
        return "parameters missing"
    for name in ("width", "height", "steps", "seed", "n_samples", "params_version"):
        if not isinstance(parameters.get(name), int) or isinstance(parameters.get(name), bool):
            return f"parameters.{name} must be an integer"
    if parameters["width"] % 64 or parameters["height"] % 64:
        return "width and height must be multiples of 64"
    for name in ("scale", "cfg_rescale"):
        if not isinstance(parameters.get(name), int | float):
            return f"parameters.{name} must be a number"
    if not isinstance(parameters.get("sampler"), str) or not isinstance(parameters.get("noise_schedule"), str):
        return "sampler and noise_schedule must be strings"
    if not isinstance(parameters.get("negative_prompt"), str):
        return "negative_prompt must be a string"
    if "nai-diffusion-4" in model:
        caption = parameters.get("v4_prompt", {}).get("caption", {})
        if caption.get("base_caption") != body["input"]:
            return "v4_prompt.caption.base_caption must be the input"
        if not isinstance(parameters.get("v4_negative_prompt", {}).get("caption"), dict):
            return "v4_negative_prompt.caption missing"
    if streaming and parameters.get("stream") not in ("msgpack", "sse"):
        return "stream must be msgpack or sse"
    if not streaming and "stream" in parameters:
        return "stream is not accepted by this endpoint"
    if body["action"] != "generate" and not isinstance(parameters.get("image"), str):
        return "image required for img2img and infill"
    if body["action"] == "infill" and not (isinstance(parameters.get("mask"), str) and model.endswith("-inpainting")):
        return "infill needs a mask and an inpainting model"
    return None


@pytest.fixture
async def nai_server() -> AsyncIterator[FakeNovelAI]:
    """The fake server on the test's own event loop; stopped after the test."""
    server = FakeNovelAI()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def nai_thread_server() -> Iterator[FakeNovelAI]:
    """The fake server in a background thread (for code that runs its own loop)."""
    with serve_in_thread(FakeNovelAI()) as server:
        yield server


@pytest.fixture
def nai_plugins(imagestream_plugins: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A plugin harness with the novelai provider and both decoders registered, and no key in the environment."""
    for name in ("NOVELAI_API_KEY", "NOVELAI_TOKEN", "NAI_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    # Loaded through their entry points, as imagestream finds them.
    found = {entry.name: entry for entry in entry_points(group="imagestream")}
    for name in ("msgpack", "sse", "novelai"):
        imagestream_plugins.register(found[name].load(), name)
    return imagestream_plugins


class Client:
    """Runs ``imagestream.stream`` against a fake server, with the right key and URL."""

    def __init__(self, server: FakeNovelAI) -> None:
        self.server = server

    def params(self, **params: Any) -> dict[str, Any]:
        params.setdefault("provider", "novelai")
        params.setdefault("base_url", self.server.base_url)
        params.setdefault("api_key", TOKEN)
        return params

    def stream(self, prompt: str = "1girl, lighthouse", **params: Any) -> Any:
        import imagestream

        return imagestream.stream(prompt, **self.params(**params))

    async def run(self, prompt: str = "1girl, lighthouse", **params: Any) -> list[Any]:
        chunks = self.stream(prompt, **params)
        async with chunks:
            return [chunk async for chunk in chunks]


@pytest.fixture
def nai(nai_plugins: Any, nai_server: FakeNovelAI) -> Client:
    """A client for the fake server, with the plugins registered."""
    return Client(nai_server)


@pytest.fixture
def shared_fixtures() -> Path:
    """The project's shared recorded NovelAI fixtures (skips the test when absent)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent.parent / "shared" / "fixtures" / "novelai"
        if (parent / "pyproject.toml").is_file() and (parent / "core").is_dir():
            if candidate.is_dir():
                return candidate
            break
    pytest.skip("the shared NovelAI fixtures are not next to this checkout")
