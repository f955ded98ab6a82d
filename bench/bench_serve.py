"""Serving a crowd: 1,000 SSE clients at once against one ``imagestream serve`` process.

Run ``python bench/bench_serve.py`` (``--quick`` for a short run). Three
servers run, each in a child process of its own on 127.0.0.1:

* **imagestream relay**: the server's application (``make_app(ServerConfig(
  save=False))``, i.e. ``imagestream serve --no-save``: every installed
  plugin, the default ``validation`` and ``analytics`` middleware) with a
  cheap in-memory provider registered through ``imagestream.register_plugin``.
  Each generation yields 10 previews of about 20 KB and a final of about
  200 KB: valid PNGs of random pixels, built once with zlib (no Pillow),
  wrapped per run with ``ImageData.from_bytes``, so the server base64-encodes
  every image of every stream, as it would for a provider that sends raw
  bytes. ``POST /api/generate`` relays each chunk as an event
  (``imagestream.chunk_to_sse``) with pings and a send timeout armed.
* **imagestream saving**: the same, as ``imagestream serve`` runs by default:
  it also **saves every final to disk** (an atomic, fsync'd write per
  stream: 1,000 files of 200 KB a round, off the event loop in the default
  thread pool) and lists the saved file in ``done``.
* **bare**: an aiohttp handler that writes byte-identical events (the same
  chunks through ``chunk_to_sse``, built once, in memory) and a ``done`` event
  of the relay's shape: no pipeline, no saving, no pings, no send timeout. It
  sends the same buffers to every client, which stay in the CPU's caches.

The target compares like with like: the relay does the bare handler's job
(and more: a pipeline per stream, a fresh base64 encoding of every image,
pings, timeouts, cancel on disconnect); the saving server's ratio is printed
beside it, for what durable saving costs on the same machine.

The load: 1,000 streams at once, shared out between two load-generator
processes (one cannot keep up with the bare handler: alone it spends as much
CPU as the round lasts, and the bare server waits on it), each with one
``aiohttp.ClientSession`` and no connection limit; every stream is read to
its end and event boundaries are found without decoding anything. Per round
and server: time to the first complete preview and to the complete final
(p50, p99 over the streams, from the moment each request is sent),
throughput (bytes/s, streams/s over the round's wall time), the server's
peak RSS during the round (``VmHWM`` in ``/proc/<pid>/status``, reset before
each round through ``clear_refs``), and the CPU seconds of the server (all
of it, and its event-loop thread) and of the load generators: the machine's
CPUs are shared by all of them, so these tell which side a round measured.
Errors: a status other than 200, an ``error`` event, a missing ``done``, a
wrong number of previews or finals, an exception, a timeout.

After one check (one stream from each: the events before ``done`` must be
the same bytes) and a warm-up round of 100 clients each, the servers run
interleaved (each takes each place in the order in turn), 3 rounds of 1,000
clients each (``--quick``: 1 round of 200); medians and min-max over rounds
are printed with the ratios relay / bare (target: at least 0.5x the bare
handler's throughput; PASS / MISS) and saving / bare. The script always exits
0: it is a report, not a test.

    python bench/bench_serve.py [--quick] [--clients N] [--rounds N]
                                [--load-processes N] [--profile]

``--profile`` runs the relay server under cProfile and prints its
busiest functions when it stops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import random
import resource
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, ClassVar

PREVIEWS = 10
PREVIEW_BYTES = 20_000
FINAL_BYTES = 200_000
CLIENTS = 1000
QUICK_CLIENTS = 200
WARMUP_CLIENTS = 100
LOAD_PROCESSES = 2
TARGET = 0.5
PROVIDER = "bench-serve"
KINDS = ("relay", "saving", "bare")
"""The imagestream server as a relay (``--no-save``), as it runs by default
(saving every final), and the bare handler; ``relay`` does the bare handler's
work, so the target compares those two."""
LABELS = {"relay": "imagestream relay", "saving": "imagestream saving", "bare": "bare aiohttp"}
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
ROUND_TIMEOUT = 300.0
SSE_HEADERS = {  # what the server sends with every stream
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",
}


def _raise_fd_limit() -> None:
    """Allow as many open files as the hard limit does (1,000 sockets and then some)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


# -- the images and events --------------------------------------------------------


def _png(size: int, seed: int) -> tuple[bytes, int, int]:
    """A valid PNG of random pixels, about ``size`` bytes (stored, not compressed)."""
    rng = random.Random(seed)
    width = max(8, int((size / 3) ** 0.5))
    height = max(8, size // (3 * width + 1))
    rows = b"".join(b"\x00" + rng.randbytes(3 * width) for _ in range(height))

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    data = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows, 0))
        + chunk(b"IEND", b"")
    )
    return data, width, height


def _images() -> list[tuple[bytes, int, int]]:
    """The previews' PNGs, then the final's: built once per process."""
    return [_png(PREVIEW_BYTES, index) for index in range(PREVIEWS)] + [_png(FINAL_BYTES, 99)]


def _chunks(images: list[tuple[bytes, int, int]]) -> list[Any]:
    """One generation's chunks, with fresh ``ImageData`` (nothing encoded yet).

    Type and size are declared as the validation middleware would fill them
    in, so it passes the chunks on unchanged and both servers write the same
    bytes for them.
    """
    from imagestream.provider import ImageData, ImageFinal, ImagePreview

    *previews, (final, width, height) = images
    chunks: list[Any] = [
        ImagePreview(
            ImageData.from_bytes(data, "image/png"),
            index=index,
            mime_type="image/png",
            width=w,
            height=h,
        )
        for index, (data, w, h) in enumerate(previews)
    ]
    chunks.append(
        ImageFinal(
            ImageData.from_bytes(final, "image/png"),
            mime_type="image/png",
            width=width,
            height=height,
        )
    )
    return chunks


def _bare_events(images: list[tuple[bytes, int, int]]) -> list[bytes]:
    """The bare handler's body: the same events as the server's, and a ``done`` like its own."""
    import imagestream

    chunks = _chunks(images)
    events = [imagestream.chunk_to_sse(c, event_id=str(n)) for n, c in enumerate(chunks)]
    done = {
        "images": [],  # as the relay's (the saving server lists its saved file here)
        "text": "",
        "usage": None,
        "analytics": {
            "provider": PROVIDER,
            "model": None,
            "total_s": 0.123456789,
            "first_chunk_s": 0.000123456,
            "first_preview_s": 0.000123456,
            "first_final_s": 0.012345678,
            "chunks": {"image_preview": PREVIEWS, "image_final": 1},
            "image_bytes": sum(len(data) for data, _, _ in images),
            "text_chars": 0,
            "input_tokens": None,
            "output_tokens": None,
            "cost_usd": None,
        },
    }
    data = json.dumps(done, separators=(",", ":"))
    events.append(f"event: done\nid: {len(chunks)}\ndata: {data}\n\n".encode())
    return events


# -- the servers (child processes) ----------------------------------------------------


def _provider_plugin(images: list[tuple[bytes, int, int]]) -> object:
    import imagestream
    from imagestream.provider import Chunk, ImageRequest, Provider, RunContext

    class InMemory(Provider):
        """Answers at once with the same pictures, wrapped anew for each run."""

        name: ClassVar[str] = PROVIDER
        description: ClassVar[str] = "in-memory previews and a final (benchmark)"

        async def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Chunk]:
            for chunk in _chunks(images):
                yield chunk

    class Plugin:
        @imagestream.hookimpl
        def register_providers(self, register: Callable[[Any], None]) -> None:
            register(InMemory())

    return Plugin()


def _app(kind: str, images: list[tuple[bytes, int, int]], out_dir: str, port: int) -> Any:
    """The aiohttp application of ``kind``."""
    from aiohttp import web

    if kind in ("relay", "saving"):
        import imagestream
        from imagestream_server import ServerConfig, make_app

        imagestream.register_plugin(_provider_plugin(images), PROVIDER)
        config = ServerConfig(
            port=port,
            max_per_client=2000,
            max_total=2000,
            out_dir=out_dir,
            save=kind == "saving",
        )
        return make_app(config)
    events = _bare_events(images)

    async def generate(request: web.Request) -> web.StreamResponse:
        await request.json()
        response = web.StreamResponse(headers=SSE_HEADERS)
        await response.prepare(request)
        for event in events:
            await response.write(event)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/api/generate", generate)
    return app


def serve(kind: str, port: int, profile: bool) -> None:
    """Serve ``kind`` on 127.0.0.1 until stdin closes; print the port first."""
    _raise_fd_limit()
    from aiohttp import web

    async def main(app: web.Application) -> None:
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port, backlog=2048)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        # Not the default executor: the server saves images in its threads.
        with ThreadPoolExecutor(1) as waiter:
            await asyncio.get_running_loop().run_in_executor(waiter, sys.stdin.read)
        await runner.cleanup()

    images = _images()
    profiler = None
    with tempfile.TemporaryDirectory(
        prefix="imagestream-bench-serve-", ignore_cleanup_errors=True
    ) as out_dir:
        app = _app(kind, images, out_dir, port)
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        try:
            asyncio.run(main(app))
        finally:
            if profiler is not None:
                import pstats

                profiler.disable()
                stats = pstats.Stats(profiler, stream=sys.stderr)
                print(f"\n-- cProfile of the {kind} server (main thread) --", file=sys.stderr)
                stats.sort_stats("tottime").print_stats(25)
                stats.sort_stats("cumulative").print_stats(40)


class _Server:
    """A server child process: its port, its peak memory and its CPU time."""

    def __init__(self, kind: str, profile: bool) -> None:
        self.kind = kind
        env = dict(os.environ)
        env.pop("IMAGESTREAM_DISABLE_PLUGINS", None)  # the server as installed
        command = [sys.executable, __file__, "--serve", kind, "--port", "0"]
        if profile:
            command.append("--profile")
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], START_TIMEOUT)
        line = self.process.stdout.readline() if ready else ""
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"the {kind} server did not start (run it alone to see why)")
        self.url = f"http://127.0.0.1:{int(line)}/api/generate"

    def _proc(self, name: str) -> str:
        with open(f"/proc/{self.process.pid}/{name}") as file:
            return file.read()

    def memory_kb(self, field_name: str) -> int | None:
        """``VmHWM`` (peak) or ``VmRSS`` (now) of the server process, in kB."""
        try:
            for line in self._proc("status").splitlines():
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
        except OSError:
            pass
        return None

    def reset_peak(self) -> bool:
        """Start a new peak-RSS measurement (Linux: ``echo 5 > clear_refs``)."""
        try:
            with open(f"/proc/{self.process.pid}/clear_refs", "w") as file:
                file.write("5")
        except OSError:
            return False
        return True

    def cpu_seconds(self) -> tuple[float, float]:
        """User plus system CPU time of the server: all its threads, and its main thread.

        The main thread runs the event loop; the others are the default
        executor's, where the imagestream server saves images.
        """
        pid = self.process.pid
        try:
            every = self._proc("stat")
            main = self._proc(f"task/{pid}/stat")
        except OSError:
            return float("nan"), float("nan")
        ticks = os.sysconf("SC_CLK_TCK")

        def seconds(stat: str) -> float:
            fields = stat.rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / ticks

        return seconds(every), seconds(main)

    def stop(self) -> None:
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT)


# -- the load generator -----------------------------------------------------------


@dataclass
class _Stream:
    """What one client saw."""

    started: float
    status: int = 0
    nbytes: int = 0
    previews: int = 0
    finals: int = 0
    done: bool = False
    error_events: int = 0
    first_preview: float | None = None
    final: float | None = None
    failure: str | None = None

    def problem(self) -> str | None:
        if self.failure is not None:
            return self.failure
        if self.status != 200:
            return f"status {self.status}"
        if self.error_events:
            return "error event"
        if not self.done:
            return "no done event"
        if self.previews != PREVIEWS or self.finals != 1:
            return f"{self.previews} previews, {self.finals} finals"
        return None


_HEAD = 32  # bytes of each event kept: enough for its "event: <name>" line


def _read_events(stream: _Stream, pieces: list[bytes] | None) -> Callable[[bytes], None]:
    """A feeder of body pieces that counts complete events (``\\n\\n``-terminated).

    Only the first bytes of each event are kept; base64 and JSON never hold a
    blank line, so ``\\n\\n`` is always an event's end, across pieces too.
    """
    head = bytearray()
    state = {"newline": False}  # the last piece ended in a lone "\n"

    def complete(now: float) -> None:
        if head.startswith(b"event: image_preview"):
            stream.previews += 1
            if stream.first_preview is None:
                stream.first_preview = now - stream.started
        elif head.startswith(b"event: image_final"):
            stream.finals += 1
            if stream.final is None:
                stream.final = now - stream.started
        elif head.startswith(b"event: done"):
            stream.done = True
        elif head.startswith(b"event: error"):
            stream.error_events += 1
        head.clear()

    def feed(piece: bytes) -> None:
        now = time.perf_counter()
        stream.nbytes += len(piece)
        if pieces is not None:
            pieces.append(piece)
        start = 0
        if state["newline"] and piece[:1] == b"\n":
            complete(now)
            start = 1
        while True:
            end = piece.find(b"\n\n", start)
            stop = len(piece) if end < 0 else end
            if len(head) < _HEAD:
                head.extend(piece[start : min(stop, start + _HEAD - len(head))])
            if end < 0:
                break
            complete(now)
            start = end + 2
        state["newline"] = start < len(piece) and piece.endswith(b"\n")

    return feed


async def _one(session: Any, url: str, keep: list[bytes] | None = None) -> _Stream:
    stream = _Stream(started=time.perf_counter())
    feed = _read_events(stream, keep)
    try:
        async with session.post(url, json={"prompt": "a crowd", "provider": PROVIDER}) as response:
            stream.status = response.status
            async for piece in response.content.iter_any():
                feed(piece)
    except Exception as exc:
        stream.failure = type(exc).__name__
    return stream


@dataclass
class _Round:
    """One round against one server."""

    kind: str
    clients: int
    wall: float = 0.0
    nbytes: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    first_preview: list[float] = field(default_factory=list)
    final: list[float] = field(default_factory=list)
    peak_kb: int | None = None
    idle_kb: int | None = None
    server_cpu: float = 0.0
    loop_cpu: float = 0.0
    client_cpu: float = 0.0

    @property
    def streams_per_s(self) -> float:
        return (self.clients - sum(self.errors.values())) / self.wall

    @property
    def bytes_per_s(self) -> float:
        return self.nbytes / self.wall


async def _crowd(url: str, clients: int, at: float) -> dict[str, Any]:
    """``clients`` streams at once from ``at`` (``time.monotonic()``); what they saw.

    Every stream ends, or fails, within ROUND_TIMEOUT.
    """
    import aiohttp

    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def bounded() -> _Stream:
            try:
                async with asyncio.timeout(ROUND_TIMEOUT):
                    return await _one(session, url)
            except TimeoutError:
                return _Stream(started=0.0, failure="timeout")

        await asyncio.sleep(max(0.0, at - time.monotonic()))
        before = os.times()
        started = time.monotonic()
        streams = await asyncio.gather(*(bounded() for _ in range(clients)))
        ended = time.monotonic()
        after = os.times()
    seen: dict[str, Any] = {
        "started": started,
        "ended": ended,
        "cpu": (after.user + after.system) - (before.user + before.system),
        "errors": Counter[str](),
        "nbytes": 0,
        "first_preview": [],
        "final": [],
    }
    for stream in streams:
        problem = stream.problem()
        if problem is not None:
            seen["errors"][problem] += 1
            continue
        seen["nbytes"] += stream.nbytes
        seen["first_preview"].append(stream.first_preview)
        seen["final"].append(stream.final)
    return seen


def load_worker() -> None:
    """Run crowds for the parent: one JSON command in (url, clients, at), what they saw out."""
    _raise_fd_limit()
    import aiohttp  # noqa: F401  (imported before the first round is timed)

    print("ready", flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        gc.collect()
        print(json.dumps(asyncio.run(_crowd(**command))), flush=True)


class _Loader:
    """A load-generator child process."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--load"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if self._line(START_TIMEOUT).strip() != "ready":
            self.stop()
            raise RuntimeError("a load generator did not start (run it alone to see why)")

    def _line(self, timeout: float) -> str:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        return self.process.stdout.readline() if ready else ""

    def start(self, url: str, clients: int, at: float) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"url": url, "clients": clients, "at": at}) + "\n")
        self.process.stdin.flush()

    def result(self) -> dict[str, Any]:
        line = self._line(ROUND_TIMEOUT + 60)
        if not line:
            raise RuntimeError("a load generator died or hung (run it alone to see why)")
        seen: dict[str, Any] = json.loads(line)
        return seen

    def stop(self) -> None:
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT)


def _run_round(server: _Server, clients: int, loaders: list[_Loader]) -> _Round:
    """``clients`` streams at once against ``server``, shared out among the load generators."""
    result = _Round(server.kind, clients, idle_kb=server.memory_kb("VmRSS"))
    has_reset = server.reset_peak()
    cpu_before = server.cpu_seconds()
    at = time.monotonic() + 0.5  # every load generator starts at once
    for number, loader in enumerate(loaders):
        loader.start(server.url, len(range(number, clients, len(loaders))), at)
    seen = [loader.result() for loader in loaders]
    cpu_after = server.cpu_seconds()
    result.server_cpu = cpu_after[0] - cpu_before[0]
    result.loop_cpu = cpu_after[1] - cpu_before[1]
    result.peak_kb = server.memory_kb("VmHWM") if has_reset else None
    result.wall = max(part["ended"] for part in seen) - min(part["started"] for part in seen)
    for part in seen:
        result.client_cpu += part["cpu"]
        result.nbytes += part["nbytes"]
        result.errors.update(part["errors"])
        result.first_preview += part["first_preview"]
        result.final += part["final"]
    return result


def _compare_bodies(servers: dict[str, _Server]) -> tuple[bool, bool, dict[str, int]]:
    """Fetch one stream from each server: are the events before ``done`` the same bytes?

    Also: does the imagestream server's ``done`` event list the saved file?
    """
    import aiohttp

    async def body(url: str) -> bytes:
        pieces: list[bytes] = []
        async with aiohttp.ClientSession() as session, asyncio.timeout(START_TIMEOUT):
            stream = await _one(session, url, pieces)
        if stream.problem() is not None:
            raise RuntimeError(f"{url}: {stream.problem()}")
        return b"".join(pieces)

    bodies = {kind: asyncio.run(body(server.url)) for kind, server in servers.items()}
    before_done = {body.split(b"event: done\n", 1)[0] for body in bodies.values()}
    saved = b'"url":"/files/' in bodies["saving"].split(b"event: done\n", 1)[1]
    return len(before_done) == 1, saved, {kind: len(body) for kind, body in bodies.items()}


# -- report -------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))]


def _spread(values: list[float], scale: float, digits: int) -> str:
    scaled = [value * scale for value in values]
    median = f"{statistics.median(scaled):.{digits}f}"
    if len(scaled) == 1:
        return median
    return f"{median} ({min(scaled):.{digits}f}-{max(scaled):.{digits}f})"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def report(
    rounds: dict[str, list[_Round]],
    identical: bool,
    sizes: dict[str, int],
    saving: str,
    load_processes: int,
) -> None:
    clients = rounds["relay"][0].clients
    print(
        f"Python {platform.python_version()} on {platform.machine()} {platform.system()}, "
        f"{os.cpu_count()} CPUs; "
        + ", ".join(
            f"{name} {_version(name)}"
            for name in ("imagestream", "imagestream-server", "aiohttp", "orjson", "pybase64")
        )
    )
    print(
        f"{clients} concurrent SSE clients from {load_processes} load-generator process(es), "
        f"one server process each; per stream {PREVIEWS} "
        f"previews of ~{PREVIEW_BYTES // 1000} KB and a final of ~{FINAL_BYTES // 1000} KB "
        "(PNG; KB of events: "
        + ", ".join(f"{sizes[kind] / 1e3:.0f} from {kind}" for kind in KINDS)
        + ")"
    )
    print(
        f"events before 'done' byte-identical between the servers: {'yes' if identical else 'NO'}; "
        f"the saving server writes every final ({saving}), the relay keeps nothing; "
        f"medians (min-max) of {len(rounds['relay'])} interleaved round(s)\n"
    )

    def per_round(kind: str, value: Callable[[_Round], float], scale: float, digits: int) -> str:
        return _spread([value(r) for r in rounds[kind]], scale, digits)

    def ratio(value: Callable[[_Round], float], kind: str = "relay") -> float:
        ours = statistics.median(value(r) for r in rounds[kind])
        theirs = statistics.median(value(r) for r in rounds["bare"])
        return ours / theirs

    def peak(r: _Round) -> float:
        return float(r.peak_kb) if r.peak_kb is not None else float("nan")

    errors = {kind: sum(sum(r.errors.values()) for r in rounds[kind]) for kind in KINDS}

    def throughput_row(name: str, value: Callable[[_Round], float], scale: float) -> None:
        relay, saving = ratio(value), ratio(value, "saving")
        rows.append(
            (
                name,
                *(per_round(kind, value, scale, 0) for kind in KINDS),
                f"{relay:.2f}x (saving {saving:.2f}x)",
                ">= 0.5x",
                "PASS" if relay >= TARGET else "MISS",
            )
        )

    lines: list[tuple[str, Callable[[_Round], float], float, int]] = [
        ("round wall time, s", lambda r: r.wall, 1, 2),
        ("first preview p50, ms", lambda r: _percentile(r.first_preview, 0.5), 1e3, 0),
        ("first preview p99, ms", lambda r: _percentile(r.first_preview, 0.99), 1e3, 0),
        ("final p50, ms", lambda r: _percentile(r.final, 0.5), 1e3, 0),
        ("final p99, ms", lambda r: _percentile(r.final, 0.99), 1e3, 0),
        ("server peak RSS, MB", peak, 1 / 1024, 0),
        ("server idle RSS before, MB", lambda r: float(r.idle_kb or 0), 1 / 1024, 0),
        ("server CPU, s", lambda r: r.server_cpu, 1, 2),
        ("  of it the event loop thread", lambda r: r.loop_cpu, 1, 2),
        ("load generators' CPU, s", lambda r: r.client_cpu, 1, 2),
    ]
    rows = [("measurement", *(LABELS[kind] for kind in KINDS), "ratio to bare", "target", "")]
    throughput_row("throughput, streams/s", lambda r: r.streams_per_s, 1)
    throughput_row("throughput, MB/s", lambda r: r.bytes_per_s, 1e-6)
    for name, value, scale, digits in lines:
        rows.append((name, *(per_round(kind, value, scale, digits) for kind in KINDS), "", "", ""))
    rows.append(
        (
            "errors (all rounds)",
            *(str(errors[kind]) for kind in KINDS),
            "",
            "0",
            "PASS" if not any(errors.values()) else "MISS",
        )
    )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for number, row in enumerate(rows):
        print(" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if number == 0:
            print("-+-".join("-" * w for w in widths))
    print(
        "\nCPUs kept busy over each round's wall time (median; the event loop is one thread, "
        "so at 1.00 it bounds the server):"
    )
    for kind in KINDS:
        server = statistics.median(r.server_cpu / r.wall for r in rounds[kind])
        loop = statistics.median(r.loop_cpu / r.wall for r in rounds[kind])
        load = statistics.median(r.client_cpu / r.wall for r in rounds[kind]) / load_processes
        print(
            f"  {kind}: server {server:.2f} (its event loop {loop:.2f}); "
            f"each of {load_processes} load generator(s) {load:.2f}"
        )
    for kind in KINDS:
        seen = Counter[str]()
        for r in rounds[kind]:
            seen.update(r.errors)
        if seen:
            print(f"{kind} errors: " + ", ".join(f"{n} x {why}" for why, n in seen.most_common()))


def _filesystem(path: str) -> str:
    """The file system type under ``path`` (from /proc/mounts), for the report."""
    best, kind = "", "unknown file system"
    path = os.path.realpath(path)
    with contextlib.suppress(OSError), open("/proc/mounts") as mounts:
        for line in mounts:
            parts = line.split()
            if len(parts) > 2 and path.startswith(parts[1]) and len(parts[1]) > len(best):
                best, kind = parts[1], parts[2]
    return kind


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round of 200 clients")
    parser.add_argument("--clients", type=int, default=None, help="streams at once (1000)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds of each server (3)")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the imagestream server (stderr)"
    )
    parser.add_argument(
        "--load-processes",
        type=int,
        default=LOAD_PROCESSES,
        help=f"load-generator processes ({LOAD_PROCESSES})",
    )
    parser.add_argument("--serve", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port, args.profile)
        return 0
    if args.load:
        load_worker()
        return 0
    _raise_fd_limit()
    clients = args.clients or (QUICK_CLIENTS if args.quick else CLIENTS)
    runs = args.rounds or (1 if args.quick else 3)
    servers: dict[str, _Server] = {}
    loaders: list[_Loader] = []
    rounds: dict[str, list[_Round]] = {kind: [] for kind in KINDS}
    try:
        for kind in KINDS:
            servers[kind] = _Server(kind, args.profile and kind == "relay")
        identical, saved, sizes = _compare_bodies(servers)
        loaders = [_Loader() for _ in range(args.load_processes)]
        for kind in KINDS:  # warm-up: imports, first connections, allocator arenas
            _run_round(servers[kind], min(WARMUP_CLIENTS, clients), loaders)
        for number in range(runs):
            # Each server takes each place in the order in turn.
            order = KINDS[number % len(KINDS) :] + KINDS[: number % len(KINDS)]
            for kind in order:
                rounds[kind].append(_run_round(servers[kind], clients, loaders))
    finally:
        for loader in loaders:
            loader.stop()
        for server in servers.values():
            server.stop()
    saving = f"fsync'd, {_filesystem(tempfile.gettempdir())}"
    if not saved:
        saving += "; but its 'done' event listed no saved file"
    report(rounds, identical, sizes, saving, len(loaders))
    return 0


if __name__ == "__main__":
    sys.exit(main())
