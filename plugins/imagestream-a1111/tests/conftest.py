"""A local stand-in for the AUTOMATIC1111 web UI's API, and fixtures around it.

:class:`FakeWebUI` answers ``POST /sdapi/v1/txt2img`` and ``img2img`` only
when the images are done, like the real server (one job at a time, behind a
lock), while ``GET /sdapi/v1/progress`` reports the running job the way the
server's ``progressapi`` does: ``progress``, ``eta_relative``, ``state``
(``job``, ``job_count``, ``job_no``, ``job_timestamp``, ``sampling_step``,
``sampling_steps``, ...), ``current_image`` (a real JPEG, base64) and
``textinfo``. The answer carries PNGs (a grid first for a batch) and an
``info`` JSON text with ``seed``, ``all_seeds``, ``index_of_first_image`` and
``infotexts``. Errors have the server's shape (``{"error", "detail", "body",
"errors"}``); ``--api-auth`` and a server started without ``--api`` are
emulated too.

In lockstep mode (the default) the sampler takes its next step only once a
progress request has seen the current one, so that what a test sees does not
depend on timing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import pytest
from aiohttp import web
from PIL import Image

from imagestream.testing import serve_in_thread

CHECKPOINTS = [
    {"title": "v1-5-pruned-emaonly.safetensors [6ce0161689]", "model_name": "v1-5-pruned-emaonly", "filename": "/models/Stable-diffusion/v1-5-pruned-emaonly.safetensors"},
    {"title": "sd_xl_base_1.0.safetensors [31e35c80fc]", "model_name": "sd_xl_base_1.0", "filename": "/models/Stable-diffusion/sd_xl_base_1.0.safetensors"},
]  # fmt: skip
SAMPLERS = ["Euler a", "Euler", "DPM++ 2M"]


def make_jpeg(width: int, height: int, color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "JPEG", quality=70)
    return buffer.getvalue()


def make_png(width: int, height: int, color: tuple[int, int, int]) -> bytes:
    image = Image.new("RGB", (width, height), color)
    for x in range(width):
        image.putpixel((x, 0), (x % 256, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@dataclass
class Script:
    """How the next jobs run. Every field has the well-behaved default.

    Attributes:
        lockstep: Take each step only once a progress request has seen the last.
        delay: Seconds per step (without lockstep, or on top of it).
        every: A new live preview every this many steps (0: previews off).
        oom_at_step: Fail with CUDA out of memory at this step.
        progress_delay: Seconds a progress request that asks for the picture takes to answer.
        flaky_progress: Answer every second progress request with a 500.
        api: Whether the server was started with ``--api``.
        credentials: ``user:password`` the server was started with (``--api-auth``).
    """

    lockstep: bool = True
    delay: float = 0.0
    every: int = 1
    oom_at_step: int | None = None
    progress_delay: float = 0.0
    flaky_progress: bool = False
    api: bool = True
    credentials: str | None = None


@dataclass
class State:
    """The server's ``shared.state``."""

    job: str = ""
    job_count: int = 0
    job_no: int = 0
    job_timestamp: str = "0"
    sampling_step: int = 0
    sampling_steps: int = 0
    interrupted: bool = False
    skipped: bool = False
    current_image: bytes | None = None
    textinfo: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "skipped": self.skipped,
            "interrupted": self.interrupted,
            "stopping_generation": False,
            "job": self.job,
            "job_count": self.job_count,
            "job_timestamp": self.job_timestamp,
            "job_no": self.job_no,
            "sampling_step": self.sampling_step,
            "sampling_steps": self.sampling_steps,
        }


@dataclass
class Job:
    body: dict[str, Any]
    mode: str
    outcome: str = "running"
    steps_seen: list[int] = field(default_factory=list)


class FakeWebUI:
    """The fake server's state and handlers (run it with :meth:`start`)."""

    def __init__(self) -> None:
        self.script = Script()
        self.state = State()
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.jobs: list[Job] = []
        self.loaded_checkpoint = CHECKPOINTS[0]["title"]
        self.progress_requests = 0
        self.port = 0
        self._lock: asyncio.Lock | None = None
        self._seen: asyncio.Event | None = None
        self._stamps = 0
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[web.Response]] = set()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def paths(self, method: str | None = None) -> list[str]:
        return [path for m, path, _, _ in self.requests if method is None or m == method]

    async def start(self) -> None:
        app = web.Application(middlewares=[self._record], client_max_size=64 * 2**20)
        app.router.add_post("/sdapi/v1/txt2img", self._txt2img)
        app.router.add_post("/sdapi/v1/img2img", self._img2img)
        app.router.add_get("/sdapi/v1/progress", self._progress)
        app.router.add_post("/sdapi/v1/interrupt", self._interrupt)
        app.router.add_get("/sdapi/v1/sd-models", self._sd_models)
        self._runner = web.AppRunner(
            app, shutdown_timeout=0.5, access_log=None, handler_cancellation=True
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._lock = asyncio.Lock()
        self._seen = asyncio.Event()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def wait_for(self, condition: Any, within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while not condition():  # noqa: ASYNC110 - a test's check of the server's state
                await asyncio.sleep(0.01)

    @staticmethod
    def _error(status: int, error: str, detail: str = "", errors: str = "") -> web.Response:
        return web.json_response(
            {"error": error, "detail": detail, "body": "", "errors": errors}, status=status
        )

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.json() if request.method == "POST" and request.can_read_body else None
        self.requests.append((request.method, request.path_qs, dict(request.headers), body))
        if not self.script.api:
            return web.json_response({"detail": "Not Found"}, status=404)
        if self.script.credentials is not None:
            expected = "Basic " + base64.b64encode(self.script.credentials.encode()).decode()
            if request.headers.get("Authorization") != expected:
                return self._error(401, "HTTPException", "Incorrect username or password")
        return await handler(request)  # type: ignore[no-any-return]

    # -- the generation ----------------------------------------------------------

    async def _txt2img(self, request: web.Request) -> web.Response:
        return await self._generate(await request.json(), "txt2img")

    async def _img2img(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not body.get("init_images"):
            return self._error(404, "HTTPException", "Init image not found")
        return await self._generate(body, "img2img")

    async def _generate(self, body: dict[str, Any], mode: str) -> web.Response:
        sampler = body.get("sampler_name") or "Euler"
        if sampler not in SAMPLERS:
            return self._error(404, "HTTPException", "Sampler not found")
        job = Job(body, mode)
        self.jobs.append(job)
        # The server's worker goes on when the client hangs up, as the real one does.
        task = asyncio.create_task(self._locked(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(task)

    async def _locked(self, job: Job) -> web.Response:
        assert self._lock is not None
        async with self._lock:
            return await self._run(job)

    async def run_foreign(self, steps: int) -> None:
        """A job from another client (the web page, another program)."""
        job = Job(
            {"prompt": "someone else's", "steps": steps, "width": 64, "height": 64}, "txt2img"
        )
        self.jobs.append(job)
        assert self._lock is not None
        async with self._lock:
            await self._run(job)

    async def _run(self, job: Job) -> web.Response:
        body = job.body
        state = self.state
        steps = int(body.get("steps", 20))
        width, height = int(body.get("width", 512)), int(body.get("height", 512))
        batch = int(body.get("batch_size", 1))
        n_iter = int(body.get("n_iter", 1))
        seed = int(body.get("seed", -1))
        seed = 1234567 if seed == -1 else seed
        override = body.get("override_settings") or {}
        if "sd_model_checkpoint" in override:
            titles = {c["title"]: c["title"] for c in CHECKPOINTS} | {
                c["model_name"]: c["title"] for c in CHECKPOINTS
            }
            # The real server loads a fallback, with a warning in its console, for a name it lacks.
            self.loaded_checkpoint = titles.get(
                override["sd_model_checkpoint"], CHECKPOINTS[0]["title"]
            )
        # state.begin()
        self._stamps += 1
        state.job, state.job_count, state.job_no = f"scripts_{job.mode}", n_iter, 0
        state.job_timestamp = f"2030010112{self._stamps:04d}"
        state.sampling_step, state.sampling_steps = 0, 0
        state.interrupted, state.current_image, state.textinfo = False, None, None
        images: list[bytes] = []
        try:
            for iteration in range(n_iter):
                state.job_no = iteration
                state.sampling_step, state.sampling_steps = 0, steps
                for step in range(1, steps + 1):
                    if state.interrupted:
                        break
                    if step == self.script.oom_at_step:
                        return self._error(
                            500,
                            "OutOfMemoryError",
                            "",
                            "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.79 GiB total capacity)",
                        )
                    state.sampling_step = step
                    if self.script.every and step % self.script.every == 0:
                        shade = (20 + 230 * step // steps, 40 * iteration % 256, 140)
                        state.current_image = make_jpeg(24, 24, shade)
                    await self._pace(job, step)
                for index in range(batch):
                    images.append(
                        make_png(width, height, (200, 40 * (iteration * batch + index) % 256, 30))
                    )
                if state.interrupted:
                    break
        finally:
            # state.end()
            state.job, state.job_count = "", 0
            job.outcome = "interrupted" if state.interrupted else "done"
        seeds = [seed + i for i in range(len(images))]
        grid = [make_png(width * 2, height, (0, 0, 0))] if len(images) > 1 else []
        info = {
            "prompt": body.get("prompt"), "seed": seed, "all_seeds": seeds, "width": width, "height": height,
            "sampler_name": body.get("sampler_name") or "Euler", "steps": steps, "batch_size": batch,
            "sd_model_name": self.loaded_checkpoint.split(".")[0], "index_of_first_image": len(grid),
            "infotexts": [f"{body.get('prompt')}\nSteps: {steps}, Seed: {s}" for s in seeds],
        }  # fmt: skip
        encoded = [base64.b64encode(data).decode() for data in grid + images]
        return web.json_response({"images": encoded, "parameters": body, "info": json.dumps(info)})

    async def _pace(self, job: Job, step: int) -> None:
        if self.script.delay:
            await asyncio.sleep(self.script.delay)
        if self.script.lockstep and job.body.get("prompt") != "someone else's":
            assert self._seen is not None
            self._seen.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await self._seen.wait()
        else:
            await asyncio.sleep(0.005)

    # -- the rest of the API -------------------------------------------------------

    async def _progress(self, request: web.Request) -> web.Response:
        state = self.state
        skip = request.query.get("skip_current_image", "false").lower() == "true"
        self.progress_requests += 1
        if self.script.flaky_progress and self.progress_requests % 2 == 0:
            return web.Response(status=500, text="Internal Server Error")
        if self.script.progress_delay and not skip:
            await asyncio.sleep(self.script.progress_delay)
        if state.job_count == 0:
            return web.json_response(
                {
                    "progress": 0,
                    "eta_relative": 0,
                    "state": state.as_dict(),
                    "current_image": None,
                    "textinfo": None,
                }
            )
        progress = 0.01 + state.job_no / state.job_count
        if state.sampling_steps:
            progress += state.sampling_step / state.sampling_steps / state.job_count
        for job in self.jobs:
            if job.outcome == "running" and job.body.get("prompt") != "someone else's":
                job.steps_seen.append(state.sampling_step)
        image = None
        if state.current_image is not None and not skip:
            image = base64.b64encode(state.current_image).decode()
        answer = {
            "progress": min(progress, 1),
            "eta_relative": 1.5,
            "state": state.as_dict(),
            "current_image": image,
            "textinfo": state.textinfo,
        }
        assert self._seen is not None
        self._seen.set()
        return web.json_response(answer)

    async def _interrupt(self, request: web.Request) -> web.Response:
        self.state.interrupted = True
        assert self._seen is not None
        self._seen.set()  # a sampler waiting in lockstep stops now
        return web.json_response({})

    async def _sd_models(self, request: web.Request) -> web.Response:
        return web.json_response(
            [{**c, "hash": None, "sha256": None, "config": None} for c in CHECKPOINTS]
        )


@pytest.fixture
async def webui_server() -> AsyncIterator[FakeWebUI]:
    server = FakeWebUI()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def webui_thread_server() -> Iterator[FakeWebUI]:
    with serve_in_thread(FakeWebUI()) as server:
        yield server


@pytest.fixture
def a1111_plugins(imagestream_plugins: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A plugin harness with the a1111 provider registered through its entry point."""
    for name in ("A1111_BASE_URL", "A1111_API_AUTH"):
        monkeypatch.delenv(name, raising=False)
    found = {entry.name: entry for entry in entry_points(group="imagestream")}
    imagestream_plugins.register(found["a1111"].load(), "a1111")
    return imagestream_plugins


class Runner:
    """Runs ``imagestream.stream`` against a fake server."""

    def __init__(self, server: FakeWebUI) -> None:
        self.server = server

    def stream(self, prompt: str = "a castle", **params: Any) -> Any:
        import imagestream

        params.setdefault("provider", "a1111")
        params.setdefault("base_url", self.server.base_url)
        params.setdefault("size", "64x64")
        params.setdefault("steps", 4)
        params.setdefault("poll_interval", 0.05)
        return imagestream.stream(prompt, **params)

    async def run(self, prompt: str = "a castle", **params: Any) -> list[Any]:
        chunks = self.stream(prompt, **params)
        async with chunks:
            return [chunk async for chunk in chunks]


@pytest.fixture
def webui(a1111_plugins: Any, webui_server: FakeWebUI) -> Runner:
    return Runner(webui_server)
