"""``imagestream batch``: throughput by concurrency, and what the Ray engine costs over the local one.

A local server in another process plays a provider: each request waits
``--latency`` seconds (the "generation"), then answers a small PNG in JSON.
A provider defined here asks it through the provider kit, so every request
goes through the real pipeline, the batch's scheduler, its manifest and its
atomic image writes.

* **concurrency**: the same job (``--requests`` lines) with ``--concurrency``
  1, 8 and 64 on the local engine. Ideal throughput is concurrency /
  latency; the batch's share is what is missing from it.
* **ray**: the same job with the local engine and the Ray engine (a local
  Ray of two CPUs, started once, not timed; each run starts its own actors,
  which is timed, as it is part of every real run), at concurrency 8.

Every run is a fresh output directory; the runs of each comparison are
interleaved in shuffled order, and medians, min-max and wall time are
printed.

    python bench/bench_batch.py [--quick] [--rounds N] [--requests N] [--latency S]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib
import json
import random
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

CONCURRENCIES = (1, 8, 64)
RAY_CONCURRENCY = 8


def _png() -> bytes:
    def section(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)
    pixels = zlib.compress((b"\x00" + bytes((30, 120, 200)) * 16) * 16)
    return (
        b"\x89PNG\r\n\x1a\n"
        + section(b"IHDR", header)
        + section(b"IDAT", pixels)
        + section(b"IEND", b"")
    )


def serve(latency: float) -> None:
    """Answer POST /generate after ``latency`` seconds; print the port; stop when stdin closes."""
    from aiohttp import web

    body = json.dumps({"b64": base64.b64encode(_png()).decode("ascii")}).encode()

    async def generate(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(latency)
        return web.Response(body=body, content_type="application/json")

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/generate", generate)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await runner.cleanup()

    asyncio.run(main())


def register_bench_provider() -> None:
    """Register ``bench-http`` in this process (also each Ray actor's ``worker_setup``)."""
    import imagestream
    from imagestream import (
        ImageData,
        ImageFinal,
        ImageRequest,
        Provider,
        ProviderResponse,
        RunContext,
        hookimpl,
    )
    from imagestream.provider import read_json

    class BenchProvider(Provider):
        name = "bench-http"
        description = "bench: POST {base_url}/generate"

        async def generate(self, request: ImageRequest, context: RunContext) -> ProviderResponse:
            response = await context.http.send(
                "POST",
                f"{request.base_url}/generate",
                provider=self.name,
                json_body={"prompt": request.prompt},
            )
            found = await read_json(context, response, provider=self.name)
            image = ImageData.from_base64(found["b64"], "image/png")
            return ProviderResponse(images=[ImageFinal(image, mime_type="image/png")])

    class Plugin:
        @hookimpl
        def register_providers(self, register: Callable[[Provider], None]) -> None:
            register(BenchProvider())

    if "bench-http" not in [provider.name for provider in imagestream.list_providers()]:
        imagestream.register_plugin(Plugin(), "bench-http")


def _job(path: Path, requests: int) -> Path:
    lines = (json.dumps({"id": f"r{i}", "prompt": f"prompt {i}"}) for i in range(requests))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _run(job: Path, scratch: Path, url: str, concurrency: int, engine: Any = "local") -> float:
    from imagestream_batch import run_batch

    out = Path(tempfile.mkdtemp(dir=scratch))
    try:
        started = time.perf_counter()
        summary = run_batch(
            job,
            out_dir=out,
            provider="bench-http",
            base_url=url,
            concurrency=concurrency,
            engine=engine,
        )
        elapsed = time.perf_counter() - started
        if not summary.ok:
            raise SystemExit(f"a bench run did not finish: {summary.as_dict()}")
        return elapsed
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _line(label: str, times: list[float], requests: int) -> str:
    median = statistics.median(times)
    return (
        f"  {label:<22} median {median:7.3f} s  ({min(times):.3f}-{max(times):.3f})  "
        f"{requests / median:8.1f} req/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer requests and rounds")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--requests", type=int, default=None)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray comparison")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.latency)
        return
    rounds = args.rounds or (1 if args.quick else 3)
    requests = args.requests or (64 if args.quick else 256)

    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--latency", str(args.latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    scratch = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    try:
        assert server.stdout is not None
        url = f"http://127.0.0.1:{server.stdout.readline().strip()}"
        register_bench_provider()
        job = _job(scratch / "job.jsonl", requests)
        print(
            f"imagestream batch: {requests} requests, {args.latency * 1000:.0f} ms each at a "
            f"local server, {rounds} round(s), interleaved"
        )
        _run(job, scratch, url, 8)  # warm-up: imports, plugin loading, the first connections

        times: dict[int, list[float]] = {c: [] for c in CONCURRENCIES}
        for _ in range(rounds):
            order = list(CONCURRENCIES)
            random.shuffle(order)
            for concurrency in order:
                times[concurrency].append(_run(job, scratch, url, concurrency))
        print("local engine, by --concurrency (ideal: concurrency / latency):")
        for concurrency in CONCURRENCIES:
            ideal = concurrency / args.latency
            measured = requests / statistics.median(times[concurrency])
            print(
                _line(f"--concurrency {concurrency}", times[concurrency], requests)
                + f"  (ideal {ideal:.0f}, {measured / ideal:.0%})"
            )

        if args.no_ray:
            return
        try:
            ray: Any = importlib.import_module("ray")  # optional: the [ray] extra
        except ImportError:
            print("ray: not installed (pip install 'imagestream-batch[ray]'), skipped")
            return
        from imagestream_batch import RayEngine

        started = time.perf_counter()
        ray.init(
            num_cpus=2,
            object_store_memory=100 * 1024**2,
            include_dashboard=False,
            log_to_driver=False,
        )
        print(f"ray.init (once, not in the times below): {time.perf_counter() - started:.1f} s")
        try:
            compared: dict[str, list[float]] = {"local": [], "ray": []}
            startups: list[float] = []
            for _ in range(rounds):
                engines = ["local", "ray"]
                random.shuffle(engines)
                for name in engines:
                    if name == "local":
                        compared[name].append(_run(job, scratch, url, RAY_CONCURRENCY))
                        continue
                    engine = RayEngine(
                        workers=2, worker_cpus=0.5, worker_setup=register_bench_provider
                    )
                    compared[name].append(_run(job, scratch, url, RAY_CONCURRENCY, engine))
                    startups.append(engine.startup_s or 0.0)
            print(f"ray engine vs local engine, --concurrency {RAY_CONCURRENCY}, 2 actors:")
            for name in ("local", "ray"):
                print(_line(f"{name} engine", compared[name], requests))
            local, remote = (statistics.median(compared[name]) for name in ("local", "ray"))
            startup = statistics.median(startups)
            per_request = (remote - startup - local) / requests * 1000
            print(
                f"  ray overhead: {remote - local:+.3f} s a run, ratio ray/local "
                f"{remote / local:.2f}; of it, starting the actors {startup:.3f} s "
                f"({min(startups):.3f}-{max(startups):.3f}), the rest {per_request:+.2f} ms a request"
            )
        finally:
            ray.shutdown()
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(timeout=30)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
