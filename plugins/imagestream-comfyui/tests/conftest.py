"""A local stand-in for ComfyUI's server, and fixtures around it.

:class:`FakeComfyUI` speaks the parts of ComfyUI's protocol the provider
uses: ``POST /prompt`` (validating the workflow and answering
``node_errors`` the way the server does), ``GET /ws?clientId=`` (``status``
on connecting, the ``feature_flags`` exchange, then ``execution_start``,
``execution_cached``, ``executing``, ``progress``, binary previews,
``executed``, ``execution_success`` / ``execution_error`` /
``execution_interrupted``, and ``executing`` with no node at the end),
``GET /view``, ``GET /history/<id>``, ``GET /object_info[/<node>]``,
``POST /interrupt`` and ``POST /queue``. Prompts run one at a time, in a
worker, like the server's. Previews are real JPEGs (type 1 frames, or type 4
with a JSON header to clients that asked for them) and finals real PNGs,
drawn with Pillow.

A script chooses the faults: messages about another client's prompt
interleaved with the run's, each message split into several WebSocket
frames written a few bytes at a time (with a ping in the middle), a GPU out
of memory, an interrupt from elsewhere, a dropped connection, a workflow
answered from the cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import random
import struct
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import pytest
from aiohttp import web
from PIL import Image

from imagestream.testing import serve_in_thread

CHECKPOINTS = ["sd_xl_base_1.0.safetensors", "v1-5-pruned-emaonly.safetensors"]
SAMPLERS = ["euler", "euler_ancestral", "dpmpp_2m"]
SCHEDULERS = ["normal", "karras"]
OUTPUT_NODES = {"SaveImage", "PreviewImage"}
NODE_TYPES = {
    "CheckpointLoaderSimple": ("MODEL", "CLIP", "VAE"),
    "CLIPTextEncode": ("CONDITIONING",),
    "EmptyLatentImage": ("LATENT",),
    "KSampler": ("LATENT",),
    "VAEDecode": ("IMAGE",),
    "SaveImage": (),
    "PreviewImage": (),
}


def make_jpeg(width: int, height: int, color: tuple[int, int, int]) -> bytes:
    """A real baseline JPEG of one colour."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "JPEG", quality=70)
    return buffer.getvalue()


def make_png(width: int, height: int, color: tuple[int, int, int]) -> bytes:
    """A real PNG of one colour, with a gradient row."""
    image = Image.new("RGB", (width, height), color)
    for x in range(width):
        image.putpixel((x, 0), (x % 256, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """One unmasked WebSocket frame, as a server writes it."""
    head = bytes([(0x80 if fin else 0) | opcode])
    if len(payload) < 126:
        head += bytes([len(payload)])
    elif len(payload) < 2**16:
        head += bytes([126]) + struct.pack(">H", len(payload))
    else:
        head += bytes([127]) + struct.pack(">Q", len(payload))
    return head + payload


@dataclass
class Script:
    """How the next prompts are run. Every field has the well-behaved default.

    Attributes:
        previews: ``"auto"`` (type 4 to clients that announced metadata
            support, else type 1), ``"legacy"`` (always type 1), ``"png"``
            (type 1 with PNG previews) or ``"none"`` (the preview method off).
        noise: Interleave messages about another client's prompt.
        split: Send each message as several frames, a few bytes at a time.
        delay: Seconds between two sampler steps.
        oom_at_step: Fail the sampler at this step with a GPU out of memory.
        interrupt_at_step: Interrupt the run at this step (as another client would).
        drop_at_step: Close the WebSocket abruptly at this step.
        cached: Answer the whole workflow from the cache: no ``executed`` message.
        hold: Do not start the next prompt until this event is set.
    """

    previews: str = "auto"
    noise: bool = False
    split: bool = False
    delay: float = 0.0
    oom_at_step: int | None = None
    interrupt_at_step: int | None = None
    drop_at_step: int | None = None
    cached: bool = False
    hold: asyncio.Event | None = None


@dataclass
class Queued:
    prompt_id: str
    workflow: dict[str, Any]
    client_id: str


@dataclass
class Client:
    socket: web.WebSocketResponse
    request: web.Request
    flags: dict[str, Any] = field(default_factory=dict)
    received: list[Any] = field(default_factory=list)


class FakeComfyUI:
    """The fake server's state and handlers (run it with :meth:`start`)."""

    def __init__(self) -> None:
        self.script = Script()
        self.checkpoints = list(CHECKPOINTS)
        self.clients: dict[str, Client] = {}
        self.prompts: list[dict[str, Any]] = []  # every POST /prompt body
        self.requests: list[tuple[str, str, Any]] = []  # (method, path_qs, json body)
        self.queue: list[Queued] = []
        self.history: dict[str, dict[str, Any]] = {}
        self.files: dict[tuple[str, str, str], bytes] = {}
        self.running: str | None = None
        self.interrupted: set[str] = set()
        self.finished: dict[str, str] = {}  # prompt id -> how it ended
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._interrupt = False
        self._rng = random.Random(7)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/ws", self._ws)
        app.router.add_post("/prompt", self._prompt)
        app.router.add_get("/view", self._view)
        app.router.add_get("/history/{prompt_id}", self._history)
        app.router.add_get("/object_info", self._object_info)
        app.router.add_get("/object_info/{node}", self._object_info)
        app.router.add_post("/interrupt", self._post_interrupt)
        app.router.add_post("/queue", self._post_queue)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._wake = asyncio.Event()
        self._worker = asyncio.create_task(self._work())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._worker
        for client in list(self.clients.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await client.socket.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def wait_for(self, condition: Any, within: float = 5.0) -> None:
        """Wait (bounded) until ``condition()`` is true."""
        async with asyncio.timeout(within):
            while not condition():  # noqa: ASYNC110 - a test's check of the server's state
                await asyncio.sleep(0.01)

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = None
        if request.method == "POST" and request.can_read_body:
            body = await request.json()
        self.requests.append((request.method, request.path_qs, body))
        return await handler(request)  # type: ignore[no-any-return]

    # -- the WebSocket ---------------------------------------------------------

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        sid = request.query.get("clientId") or uuid.uuid4().hex
        client = self.clients[sid] = Client(socket, request)
        await self._send(client, "status", {"status": self._queue_info(), "sid": sid})
        first = True
        try:
            async for message in socket:
                data = json.loads(message.data)
                client.received.append(data)
                if first and data.get("type") == "feature_flags":
                    client.flags = dict(data.get("data") or {})
                    await self._send(client, "feature_flags", {"supports_preview_metadata": True})
                first = False
        finally:
            self.clients.pop(sid, None)
        return socket

    def _queue_info(self) -> dict[str, Any]:
        return {"exec_info": {"queue_remaining": len(self.queue) + (self.running is not None)}}

    async def _send(self, client: Client, kind: str, data: dict[str, Any]) -> None:
        await self._write(client, json.dumps({"type": kind, "data": data}).encode(), text=True)

    async def _write(self, client: Client, payload: bytes, *, text: bool) -> None:
        if client.socket.closed:
            return
        if not self.script.split:
            if text:
                await client.socket.send_str(payload.decode())
            else:
                await client.socket.send_bytes(payload)
            return
        # Fragments: the first frame with the opcode, then continuations; a
        # ping between them; the bytes written a few at a time.
        cuts = sorted(
            {
                0,
                len(payload),
                *self._rng.sample(
                    range(1, max(2, len(payload))), k=min(3, max(0, len(payload) - 1))
                ),
            }
        )
        pieces = [payload[a:b] for a, b in itertools.pairwise(cuts)] or [b""]
        wire = b""
        for number, piece in enumerate(pieces):
            opcode = (1 if text else 2) if number == 0 else 0
            wire += frame(opcode, piece, fin=number == len(pieces) - 1)
            if number == 0 and len(pieces) > 1:
                wire += frame(0x9, b"ping")
        transport = client.request.transport
        assert transport is not None
        position = 0
        while position < len(wire):
            size = self._rng.randint(1, 40)
            transport.write(wire[position : position + size])
            position += size
            await asyncio.sleep(0)

    async def _broadcast(self, kind: str, data: dict[str, Any]) -> None:
        for client in list(self.clients.values()):
            await self._send(client, kind, data)

    # -- HTTP ------------------------------------------------------------------

    async def _prompt(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.prompts.append(body)
        workflow = body.get("prompt")
        if not isinstance(workflow, dict) or not workflow:
            return web.json_response({"error": "no prompt", "node_errors": []}, status=400)
        error, node_errors, _ = self._validate(workflow)
        if error is not None:
            return web.json_response({"error": error, "node_errors": node_errors}, status=400)
        prompt_id = str(uuid.uuid4())
        self.queue.append(Queued(prompt_id, workflow, str(body.get("client_id") or "")))
        await self._broadcast("status", {"status": self._queue_info()})
        assert self._wake is not None
        self._wake.set()
        return web.json_response(
            {"prompt_id": prompt_id, "number": len(self.prompts), "node_errors": {}}
        )

    def _validate(
        self, workflow: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, dict[str, Any], list[str]]:
        node_errors: dict[str, Any] = {}

        def refuse(node_id: str, kind: str, message: str, details: str, name: str) -> None:
            entry = node_errors.setdefault(
                node_id,
                {
                    "errors": [],
                    "dependent_outputs": [],
                    "class_type": workflow[node_id]["class_type"],
                },
            )
            entry["errors"].append(
                {
                    "type": kind,
                    "message": message,
                    "details": details,
                    "extra_info": {"input_name": name},
                }
            )

        outputs = []
        for node_id, node in workflow.items():
            kind = node.get("class_type")
            if kind not in NODE_TYPES:
                return (
                    {
                        "type": "invalid_prompt",
                        "message": f"Cannot execute because node {kind} does not exist.",
                        "details": f"Node ID '#{node_id}'",
                        "extra_info": {},
                    },
                    {},
                    [],
                )
            if kind in OUTPUT_NODES:
                outputs.append(node_id)
            inputs = node.get("inputs", {})
            for name, value in inputs.items():
                if isinstance(value, list) and (len(value) != 2 or value[0] not in workflow):
                    refuse(
                        node_id,
                        "bad_linked_input",
                        "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                        name,
                        name,
                    )
            if kind == "CheckpointLoaderSimple" and inputs.get("ckpt_name") not in self.checkpoints:
                refuse(
                    node_id,
                    "value_not_in_list",
                    "Value not in list",
                    f"ckpt_name: '{inputs.get('ckpt_name')}' not in {self.checkpoints}",
                    "ckpt_name",
                )
            if kind == "KSampler":
                if inputs.get("sampler_name") not in SAMPLERS:
                    refuse(
                        node_id,
                        "value_not_in_list",
                        "Value not in list",
                        f"sampler_name: '{inputs.get('sampler_name')}' not in {SAMPLERS}",
                        "sampler_name",
                    )
                for name in ("seed", "steps"):
                    if not isinstance(inputs.get(name), int):
                        refuse(
                            node_id,
                            "invalid_input_type",
                            "Failed to convert an input value to a INT value",
                            f"{name}, {inputs.get(name)}",
                            name,
                        )
                if not isinstance(inputs.get("cfg"), int | float):
                    refuse(
                        node_id,
                        "invalid_input_type",
                        "Failed to convert an input value to a FLOAT value",
                        f"cfg, {inputs.get('cfg')}",
                        "cfg",
                    )
            if kind == "EmptyLatentImage":
                for name in ("width", "height", "batch_size"):
                    if not isinstance(inputs.get(name), int):
                        refuse(
                            node_id,
                            "invalid_input_type",
                            "Failed to convert an input value to a INT value",
                            f"{name}, {inputs.get(name)}",
                            name,
                        )
        if not outputs:
            return (
                {
                    "type": "prompt_no_outputs",
                    "message": "Prompt has no outputs",
                    "details": "",
                    "extra_info": {},
                },
                {},
                [],
            )
        if node_errors:
            error = {
                "type": "prompt_outputs_failed_validation",
                "message": "Prompt outputs failed validation",
                "details": "",
                "extra_info": {},
            }
            return error, node_errors, []
        return None, {}, outputs

    async def _view(self, request: web.Request) -> web.Response:
        key = (
            request.query.get("filename", ""),
            request.query.get("subfolder", ""),
            request.query.get("type", "output"),
        )
        if key not in self.files:
            return web.Response(status=404)
        return web.Response(body=self.files[key], content_type="image/png")

    async def _history(self, request: web.Request) -> web.Response:
        prompt_id = request.match_info["prompt_id"]
        entry = self.history.get(prompt_id)
        return web.json_response({prompt_id: entry} if entry else {})

    async def _object_info(self, request: web.Request) -> web.Response:
        info = {
            "CheckpointLoaderSimple": {
                "input": {"required": {"ckpt_name": ["COMBO", {"options": self.checkpoints}]}},
                "output": ["MODEL", "CLIP", "VAE"],
                "name": "CheckpointLoaderSimple",
            },
            "KSampler": {
                "input": {"required": {"sampler_name": [SAMPLERS], "scheduler": [SCHEDULERS]}}
            },
        }
        node = request.match_info.get("node")
        if node is not None:
            return web.json_response({node: info[node]} if node in info else {})
        return web.json_response(info)

    async def _post_interrupt(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        wanted = (body or {}).get("prompt_id")
        if wanted is None or wanted == self.running:
            self._interrupt = True
        return web.Response()

    async def _post_queue(self, request: web.Request) -> web.Response:
        body = await request.json()
        for prompt_id in body.get("delete", ()):
            before = len(self.queue)
            self.queue = [item for item in self.queue if item.prompt_id != prompt_id]
            if len(self.queue) < before:
                self.finished[prompt_id] = "deleted"
        return web.Response()

    # -- the worker --------------------------------------------------------------

    async def _work(self) -> None:
        assert self._wake is not None
        while True:
            if not self.queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            if self.script.hold is not None:
                await self.script.hold.wait()
            item = self.queue.pop(0)
            self.running = item.prompt_id
            self._interrupt = False
            try:
                self.finished[item.prompt_id] = await self._execute(item)
            except Exception as exc:  # a test's failure, not the server's
                self.finished[item.prompt_id] = f"crashed: {exc!r}"
            finally:
                self.running = None
            await self._broadcast("status", {"status": self._queue_info()})

    async def _execute(self, item: Queued) -> str:
        client = self.clients.get(item.client_id)
        prompt_id = item.prompt_id
        workflow = item.workflow

        async def send(kind: str, data: dict[str, Any]) -> None:
            if client is not None:
                await self._send(client, kind, data)
                if self.script.noise:
                    other = (
                        {**data, "prompt_id": "someone-elses-prompt"}
                        if "prompt_id" in data
                        else data
                    )
                    await self._send(client, kind, other)

        await send("execution_start", {"prompt_id": prompt_id, "timestamp": 1})
        await send("execution_cached", {"nodes": [], "prompt_id": prompt_id, "timestamp": 1})
        latent = next(
            (n["inputs"] for n in workflow.values() if n["class_type"] == "EmptyLatentImage"), {}
        )
        width, height = int(latent.get("width", 64)), int(latent.get("height", 64))
        batch = int(latent.get("batch_size", 1))
        outputs: dict[str, Any] = {}
        for node_id, node in workflow.items():
            kind = node["class_type"]
            if self.script.cached:
                continue
            await send(
                "executing", {"node": node_id, "display_node": node_id, "prompt_id": prompt_id}
            )
            if kind == "KSampler":
                steps = int(node["inputs"]["steps"])
                for step in range(1, steps + 1):
                    if self._interrupt or step == self.script.interrupt_at_step:
                        self.interrupted.add(prompt_id)
                        await send(
                            "execution_interrupted",
                            {
                                "prompt_id": prompt_id,
                                "node_id": node_id,
                                "node_type": kind,
                                "executed": [],
                            },
                        )
                        return "interrupted"
                    if step == self.script.oom_at_step:
                        await send("execution_error", {
                            "prompt_id": prompt_id, "node_id": node_id, "node_type": kind, "executed": [],
                            "exception_message": "Allocation on device \nThis error means you ran out of memory on your GPU.\n\nTIPS: If the workflow worked before you might have accidentally set the batch_size to a large number.",
                            "exception_type": "torch.OutOfMemoryError", "traceback": ["..."], "current_inputs": {}, "current_outputs": [],
                        })  # fmt: skip
                        return "error"
                    if step == self.script.drop_at_step and client is not None:
                        assert client.request.transport is not None
                        client.request.transport.abort()
                        return "dropped"
                    await send(
                        "progress",
                        {"value": step, "max": steps, "prompt_id": prompt_id, "node": node_id},
                    )
                    await self._preview(client, prompt_id, node_id, step, steps)
                    if self.script.delay:
                        await asyncio.sleep(self.script.delay)
                    else:
                        await asyncio.sleep(0)
            if kind in OUTPUT_NODES:
                kind_dir = "output" if kind == "SaveImage" else "temp"
                images = []
                for index in range(batch):
                    name = f"imagestream_{len(self.files):05d}_.png"
                    self.files[(name, "", kind_dir)] = make_png(
                        width, height, (200, 40 * index % 256, 30)
                    )
                    images.append({"filename": name, "subfolder": "", "type": kind_dir})
                outputs[node_id] = {"images": images}
                await send(
                    "executed",
                    {
                        "node": node_id,
                        "display_node": node_id,
                        "output": {"images": images},
                        "prompt_id": prompt_id,
                    },
                )
        if self.script.cached:
            # Everything came from the cache: an older server says nothing more.
            for node_id, node in workflow.items():
                if node["class_type"] in OUTPUT_NODES:
                    name = f"cached_{len(self.files):05d}_.png"
                    self.files[(name, "", "output")] = make_png(width, height, (10, 200, 10))
                    outputs[node_id] = {
                        "images": [{"filename": name, "subfolder": "", "type": "output"}]
                    }
        self.history[prompt_id] = {
            "prompt": [0, prompt_id, workflow, {}, []],
            "outputs": outputs,
            "status": {"completed": True},
        }
        await send("execution_success", {"prompt_id": prompt_id, "timestamp": 2})
        await send("executing", {"node": None, "prompt_id": prompt_id})
        return "success"

    async def _preview(
        self, client: Client | None, prompt_id: str, node_id: str, step: int, steps: int
    ) -> None:
        if client is None or self.script.previews == "none":
            return
        shade = (20 + 230 * step // steps, 60, 140)
        if self.script.previews == "png":
            payload = struct.pack(">II", 1, 2) + make_png(24, 24, shade)
        elif self.script.previews == "auto" and client.flags.get("supports_preview_metadata"):
            if self.script.noise:
                meta = json.dumps(
                    {
                        "node_id": node_id,
                        "prompt_id": "someone-elses-prompt",
                        "image_type": "image/jpeg",
                    }
                ).encode()
                other = struct.pack(">II", 4, len(meta)) + meta + make_jpeg(24, 24, (255, 0, 0))
                await self._write(client, other, text=False)
            meta = json.dumps(
                {
                    "node_id": node_id,
                    "display_node_id": node_id,
                    "parent_node_id": None,
                    "real_node_id": node_id,
                    "prompt_id": prompt_id,
                    "image_type": "image/jpeg",
                }
            ).encode()
            payload = struct.pack(">II", 4, len(meta)) + meta + make_jpeg(24, 24, shade)
        else:
            payload = struct.pack(">II", 1, 1) + make_jpeg(24, 24, shade)
        await self._write(client, payload, text=False)
        # Progress text (type 3): not a preview.
        await self._write(
            client, struct.pack(">II", 3, len(node_id)) + node_id.encode() + b"sampling", text=False
        )


@pytest.fixture
async def comfy_server() -> AsyncIterator[FakeComfyUI]:
    """The fake server on the test's own event loop; stopped after the test."""
    server = FakeComfyUI()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def comfy_thread_server() -> Iterator[FakeComfyUI]:
    """The fake server in a background thread."""
    with serve_in_thread(FakeComfyUI()) as server:
        yield server


@pytest.fixture
def comfy_plugins(imagestream_plugins: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A plugin harness with the comfyui provider registered through its entry point."""
    monkeypatch.delenv("COMFYUI_BASE_URL", raising=False)
    found = {entry.name: entry for entry in entry_points(group="imagestream")}
    imagestream_plugins.register(found["comfyui"].load(), "comfyui")
    return imagestream_plugins


class Runner:
    """Runs ``imagestream.stream`` against a fake server."""

    def __init__(self, server: FakeComfyUI) -> None:
        self.server = server

    def stream(self, prompt: str = "a castle", **params: Any) -> Any:
        import imagestream

        params.setdefault("provider", "comfyui")
        params.setdefault("base_url", self.server.base_url)
        params.setdefault("size", "64x64")
        params.setdefault("steps", 4)
        return imagestream.stream(prompt, **params)

    async def run(self, prompt: str = "a castle", **params: Any) -> list[Any]:
        chunks = self.stream(prompt, **params)
        async with chunks:
            return [chunk async for chunk in chunks]


@pytest.fixture
def comfy(comfy_plugins: Any, comfy_server: FakeComfyUI) -> Runner:
    """A runner for the fake server, with the plugin registered."""
    return Runner(comfy_server)
