"""Speed of the ``openai`` provider plugin against raw aiohttp and the official openai client.

Run ``python bench/bench_openai.py`` (``--quick`` for a short run). A local
aiohttp server in a child process streams OpenAI Images API events over
loopback; every client below reads the same bytes from it:

* **big stream**: three 2 MB-base64 partial images and a 2 MB final (an 8 MB
  body, as ``partial_images=3`` at high quality sends), written in 64 KiB pieces;
* **concurrent**: 200 streams at once, each three 64 KB partials and a 128 KB final.

Measured, as medians of repeated runs:

1. every chunk from ``imagestream.stream(...)`` versus raw aiohttp reading the
   same body without parsing (target: at most 2x the raw time);
2. time until the decoded bytes of the final image are in hand, versus
   ``openai.AsyncOpenAI().images.generate(stream=True)`` plus
   ``base64.b64decode`` (targets: 4x faster with the standard library, 8x
   with the ``fast`` extra, orjson + pybase64);
3. aggregate throughput of 200 concurrent streams versus the async openai
   client (target: at least 5x).

Every client runs in a worker process of its own: the peers (raw aiohttp
and the openai client), imagestream with the ``fast`` extra (skipped when it is
not installed), and imagestream where orjson and pybase64 cannot be imported
(``stdlib``). The parent runs the measurements of all workers interleaved, in
a shuffled order each round, so that the load of a shared machine drifts over
all of them alike, and reports medians.

imagestream runs with the default middleware (``validation``: the validation
middleware decodes and checks every image, previews included) and without
any (``no-validation``). Like the openai client, which keeps one client and
its connection pool for all runs, raw aiohttp and imagestream keep one pool
(an ``imagestream.Pipeline`` used as an async context manager); the
``imagestream.stream()`` rows open a new pool per call, as that function does,
and are compared with raw aiohttp doing the same. The script prints a table
with targets and PASS / MISS and always exits 0: it is a report, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import os
import platform
import random
import statistics
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Awaitable, Callable
from importlib import metadata
from typing import Any

KEY = "sk-bench"
PIECE = 64 * 1024
CONCURRENT = 200
_CLEANUPS: list[Callable[[], Awaitable[Any]]] = []  # what a worker closes before it exits
PROFILES = {
    # name: (partial images, base64 characters per partial, base64 characters of the final)
    "big": (3, 2_000_000, 2_000_000),
    "small": (3, 64_000, 128_000),
}


# -- the server (child process) -------------------------------------------------


def _png(b64_chars: int, seed: int) -> str:
    """A valid PNG of random pixels whose base64 is about ``b64_chars`` long."""
    rng = random.Random(seed)
    raw_size = b64_chars * 3 // 4
    width = max(8, int((raw_size / 3) ** 0.5))
    height = max(8, raw_size // (3 * width + 1))
    rows = b"".join(b"\x00" + rng.randbytes(3 * width) for _ in range(height))

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    data = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows, 0))
        + chunk(b"IEND", b"")
    )
    return base64.b64encode(data).decode("ascii")


def _body(profile: str) -> bytes:
    partials, partial_chars, final_chars = PROFILES[profile]
    events = []
    for index in range(partials):
        events.append(
            (
                "image_generation.partial_image",
                {
                    "created_at": 1774267828,
                    "type": "image_generation.partial_image",
                    "b64_json": _png(partial_chars, index),
                    "background": "opaque",
                    "output_format": "png",
                    "partial_image_index": index,
                    "quality": "high",
                    "sequence_number": index,
                    "size": "1024x1024",
                },
            )
        )
    events.append(
        (
            "image_generation.completed",
            {
                "created_at": 1774267837,
                "type": "image_generation.completed",
                "b64_json": _png(final_chars, 99),
                "background": "opaque",
                "output_format": "png",
                "quality": "high",
                "sequence_number": partials,
                "size": "1024x1024",
                "usage": {
                    "input_tokens": 16,
                    "input_tokens_details": {"image_tokens": 0, "text_tokens": 16},
                    "output_tokens": 4160,
                    "total_tokens": 4176,
                },
            },
        )
    )
    text = "".join(
        f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
        for name, data in events
    )
    return text.encode("ascii")


def serve() -> None:
    """Serve both profiles on 127.0.0.1 until stdin closes; print the port first."""
    from aiohttp import web

    bodies = {name: _body(name) for name in PROFILES}

    async def generations(request: web.Request) -> web.StreamResponse:
        params = await request.json()
        body = bodies["big" if params.get("prompt") == "big" else "small"]
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        view = memoryview(body)
        for start in range(0, len(body), PIECE):
            await response.write(view[start : start + PIECE])
        await response.write_eof()
        return response

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/v1/images/generations", generations)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await runner.cleanup()

    asyncio.run(main())


# -- the clients ----------------------------------------------------------------


def _request_body(profile: str) -> dict[str, Any]:
    return {"model": "gpt-image-1", "prompt": profile, "stream": True, "partial_images": 3}


async def raw_aiohttp(base: str, profile: str, pool: Any = None) -> int:
    """Read the body with aiohttp, parsing nothing (through ``pool``, or a fresh client)."""
    import aiohttp

    if pool is None:
        async with aiohttp.ClientSession() as fresh:
            return await raw_aiohttp(base, profile, fresh)
    async with pool.post(
        f"{base}/images/generations",
        json=_request_body(profile),
        headers={"Authorization": f"Bearer {KEY}", "Accept": "text/event-stream"},
    ) as response:
        size = 0
        async for piece in response.content.iter_any():
            size += len(piece)
        return size


def _imagestream_runner(base: str, setup: str) -> Callable[[str, bool], Awaitable[float | None]]:
    """``run(profile, want_final)``: consume one stream; return seconds until the final's bytes.

    ``setup``:

    * ``"call"``: ``imagestream.stream(...)`` with every installed plugin,
      which opens a new connection pool for each call;
    * ``"validation"``: the same plugins in one ``imagestream.Pipeline`` used
      as an async context manager, which keeps one connection pool (and its
      connections) across calls, as the openai client does;
    * ``"no-validation"``: a ``Pipeline("openai")`` with no middleware, one pool.
    """
    import imagestream

    pipeline: Any = None
    if setup == "validation":
        pipeline = imagestream.Pipeline(manager=imagestream.get_plugin_manager())
    elif setup == "no-validation":
        pipeline = imagestream.Pipeline("openai")
    params = dict(
        provider="openai", model="gpt-image-1", partial_images=3, base_url=base, api_key=KEY
    )
    if pipeline is not None:
        _CLEANUPS.append(pipeline.__aexit__)

    async def run(profile: str, want_final: bool) -> float | None:
        if pipeline is not None and pipeline._http is None:
            await pipeline.__aenter__()  # one connection pool for every later call
        started = time.perf_counter()
        chunks = (
            imagestream.stream(profile, **params)
            if pipeline is None
            else pipeline.stream(profile, **params)
        )
        final_at = None
        async with chunks:
            async for chunk in chunks:
                if want_final and isinstance(chunk, imagestream.ImageFinal):
                    assert chunk.image.data
                    final_at = time.perf_counter() - started
        return final_at

    return run


async def openai_final(client: Any, profile: str) -> float:
    """Seconds until the official client has the final image's decoded bytes."""
    started = time.perf_counter()
    stream = await client.images.generate(
        model="gpt-image-1", prompt=profile, stream=True, partial_images=3
    )
    final_at = 0.0
    async for event in stream:
        if event.type == "image_generation.completed":
            assert base64.b64decode(event.b64_json)
            final_at = time.perf_counter() - started
    return final_at


def _operations(kind: str, base: str) -> dict[str, Callable[[], Awaitable[float]]]:
    """What a worker of ``kind`` can measure: name -> one timed run, returning seconds."""

    async def timed(once: Callable[[], Awaitable[Any]]) -> float:
        started = time.perf_counter()
        await once()
        return time.perf_counter() - started

    def crowd(one: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[float]]:
        return lambda: timed(lambda: asyncio.gather(*(one() for _ in range(CONCURRENT))))

    ops: dict[str, Callable[[], Awaitable[float]]] = {}
    if kind == "peers":
        import aiohttp

        shared: list[Any] = []

        async def raw_shared() -> float:
            if not shared:
                shared.append(aiohttp.ClientSession())
                _CLEANUPS.append(shared[0].close)
            return await timed(lambda: raw_aiohttp(base, "big", shared[0]))

        ops["raw/all"] = raw_shared
        ops["raw-call/all"] = lambda: timed(lambda: raw_aiohttp(base, "big"))
        try:
            import openai
        except ImportError:
            return ops
        client = openai.AsyncOpenAI(api_key=KEY, base_url=base, max_retries=0)
        _CLEANUPS.append(client.close)
        ops["openai/final"] = lambda: openai_final(client, "big")
        ops["openai/concurrent"] = crowd(lambda: openai_final(client, "small"))
        return ops
    call = _imagestream_runner(base, "call")
    ops[f"{kind}/call/all"] = lambda: timed(lambda: call("big", False))
    for setup in ("validation", "no-validation"):
        run = _imagestream_runner(base, setup)
        label = f"{kind}/{setup}"
        ops[f"{label}/all"] = lambda run=run: timed(lambda: run("big", False))  # type: ignore[misc]

        async def final(run: Callable[[str, bool], Awaitable[float | None]] = run) -> float:
            return await run("big", True) or 0.0

        ops[f"{label}/final"] = final
        ops[f"{label}/concurrent"] = crowd(lambda run=run: run("small", True))  # type: ignore[misc]
    return ops


def _importable(name: str) -> bool:
    """True if ``name`` imports (the core decodes base64 with pybase64 when it does)."""
    try:
        __import__(name)
    except ImportError:
        return False
    return True


def worker(kind: str, base: str) -> None:
    """Serve measurements over stdin/stdout: one operation name in, seconds (or an error) out.

    Each kind runs in its own process so that none inherits another's heap,
    imports or connections, and the parent interleaves the runs of all of
    them so that the machine's load drifts over every kind alike.
    """
    if kind == "stdlib":
        # An entry of None in sys.modules makes "import orjson" raise ImportError.
        sys.modules["orjson"] = None  # type: ignore[assignment]
        sys.modules["pybase64"] = None  # type: ignore[assignment]
    if kind != "peers":
        from imagestream_openai import _json

        if (_json.FAST_JSON and _importable("pybase64")) != (kind == "fast"):
            print(json.dumps([]), flush=True)  # the fast extra is not installed
            return

    async def serve_commands() -> None:
        ops = _operations(kind, base)
        print(json.dumps(sorted(ops)), flush=True)
        loop = asyncio.get_running_loop()
        while name := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
            gc.collect()
            print(json.dumps(await ops[name]()), flush=True)
        for cleanup in _CLEANUPS:
            await cleanup()

    asyncio.run(serve_commands())


# -- report ---------------------------------------------------------------------


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(medians: dict[str, float], sizes: tuple[int, int], counts: tuple[int, int]) -> None:
    big, small = sizes
    crowd_mb = small * CONCURRENT / 1e6
    print(
        f"Python {platform.python_version()} on {platform.machine()} {platform.system()}, "
        f"{os.cpu_count()} CPUs"
    )
    print(
        "versions: "
        + ", ".join(
            f"{name} {_version(name)}"
            for name in ("imagestream-openai", "aiohttp", "openai", "orjson", "pybase64")
        )
    )
    print(
        f"big stream: {big / 1e6:.1f} MB body; concurrent: {CONCURRENT} streams x {small / 1e3:.0f} KB; "
        f"medians of {counts[0]} (big) and {counts[1]} (concurrent) interleaved runs\n"
    )
    rows: list[tuple[str, str, str, str, str]] = []
    variants = [
        f"{kind}/{label}"
        for kind in ("fast", "stdlib")
        for label in ("validation", "no-validation")
    ]
    variants = [name for name in variants if f"{name}/all" in medians]

    def name_of(variant: str) -> str:
        return variant.replace("/", ", ")

    raw = medians["raw/all"]
    rows.append(
        (
            "raw aiohttp, one client, read the body, no parsing",
            f"{raw * 1e3:.1f} ms",
            "1.00x",
            "",
            "",
        )
    )
    for name in variants:
        ratio = medians[f"{name}/all"] / raw
        rows.append(
            (
                f"imagestream every chunk, {name_of(name)}",
                f"{medians[name + '/all'] * 1e3:.1f} ms",
                f"{ratio:.2f}x raw",
                "<= 2x raw",
                _verdict(ratio <= 2.0),
            )
        )
    raw_call = medians["raw-call/all"]
    rows.append(("raw aiohttp, new client per call", f"{raw_call * 1e3:.1f} ms", "1.00x", "", ""))
    for kind in ("fast", "stdlib"):
        if f"{kind}/call/all" in medians:
            ratio = medians[f"{kind}/call/all"] / raw_call
            rows.append(
                (
                    f"imagestream.stream() every chunk, {kind}, validation",
                    f"{medians[kind + '/call/all'] * 1e3:.1f} ms",
                    f"{ratio:.2f}x raw",
                    "<= 2x raw",
                    _verdict(ratio <= 2.0),
                )
            )
    if "openai/final" in medians:
        theirs = medians["openai/final"]
        rows.append(
            ("openai client, final image decoded", f"{theirs * 1e3:.1f} ms", "1.00x", "", "")
        )
        for name in variants:
            target = 8.0 if name.startswith("fast") else 4.0
            speedup = theirs / medians[f"{name}/final"]
            rows.append(
                (
                    f"imagestream final image decoded, {name_of(name)}",
                    f"{medians[name + '/final'] * 1e3:.1f} ms",
                    f"{speedup:.1f}x faster",
                    f">= {target:g}x",
                    _verdict(speedup >= target),
                )
            )
    if "openai/concurrent" in medians:
        theirs = medians["openai/concurrent"]
        rows.append(
            (
                f"openai client, {CONCURRENT} concurrent streams",
                f"{crowd_mb / theirs:.0f} MB/s",
                "1.00x",
                "",
                "",
            )
        )
        for name in variants:
            seconds = medians[f"{name}/concurrent"]
            speedup = theirs / seconds
            rows.append(
                (
                    f"imagestream {CONCURRENT} concurrent, {name_of(name)}",
                    f"{crowd_mb / seconds:.0f} MB/s",
                    f"{speedup:.1f}x openai",
                    ">= 5x",
                    _verdict(speedup >= 5.0),
                )
            )
    header = ("measurement", "median", "ratio", "target", "")
    widths = [max(len(row[i]) for row in [*rows, header]) for i in range(5)]
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


class _Worker:
    """A measuring child process, driven one operation at a time."""

    def __init__(self, kind: str, base: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker", kind, base],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.operations: list[str] = json.loads(self._line())

    def _line(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("a benchmark worker died (run it alone to see why)")
        return line

    def run(self, name: str) -> float:
        assert self.process.stdin is not None
        self.process.stdin.write(name + "\n")
        self.process.stdin.flush()
        seconds: float = json.loads(self._line())
        return seconds

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs (a smoke test)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "BASE_URL"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--runs", type=int, default=None, help="runs of each big-stream measurement (default 21)"
    )
    args = parser.parse_args(argv)
    runs = args.runs or (5 if args.quick else 21)
    crowd_runs = 3 if args.quick else 7
    if args.serve:
        serve()
        return 0
    if args.worker:
        worker(*args.worker)
        return 0
    return _orchestrate(runs, crowd_runs)


def _orchestrate(runs: int, crowd_runs: int) -> int:
    """Start the server and the workers, interleave the measurements, print the report."""
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    workers: list[_Worker] = []
    try:
        assert server.stdout is not None
        base = f"http://127.0.0.1:{int(server.stdout.readline())}/v1"
        sizes = (asyncio.run(raw_aiohttp(base, "big")), asyncio.run(raw_aiohttp(base, "small")))
        workers = [_Worker(kind, base) for kind in ("peers", "fast", "stdlib")]
        plan = [(child, name) for child in workers for name in child.operations]
        samples: dict[str, list[float]] = {name: [] for _, name in plan}
        for child, name in plan:
            child.run(name)  # warm-up: imports, first connections, caches
        rng = random.Random(7)
        for round_number in range(runs):
            rng.shuffle(plan)
            for child, name in plan:
                if name.endswith("/concurrent") and round_number >= crowd_runs:
                    continue
                samples[name].append(child.run(name))
    finally:
        for child in workers:
            child.close()
        if server.stdin is not None:
            server.stdin.close()
        server.wait(timeout=30)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    report(medians, sizes, (runs, crowd_runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
