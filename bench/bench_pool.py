"""Connection pooling: ``imagestream.stream()`` in a loop, and hundreds of streams at once.

Two measurements against a local server in another process that answers
every request with a small server-sent event stream (a caption and a 32 KB
image), each run through the real pipeline and the provider kit's
``stream_events`` (SSE decoder, content-type check):

* **sequential**: 200 ``imagestream.agenerate()`` calls one after another in
  one event loop, versus raw aiohttp reading the same bodies through one
  session. The server counts the TCP connections each side newly opened:
  with the pooled client imagestream opens none past its first (or reuses
  idle ones from earlier crowds), like the raw session.
* **concurrent**: 200 and 500 ``agenerate()`` calls at once, versus raw aiohttp
  with an unlimited connector. The server records the most requests it held
  open at once: equal to the crowd when nothing is queued behind a
  connection limit (aiohttp's own default would cap it at 100).

Both sides run in the same process, interleaved in shuffled order, on wall
time, with the allocator left at its default. Medians, min-max and the ratio
imagestream / raw (lower is better, 1.0 is parity) are printed.

    python bench/bench_pool.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _corpora_sse as corpora

SEQUENTIAL = 200
CROWDS = (200, 500)
IMAGE_BYTES = 32 * 1024
CAPTION = "a caption"


def _body() -> bytes:
    # A real PNG: the default middleware checks every final image.
    image = base64.b64encode(corpora.png(IMAGE_BYTES * 4 // 3, seed=1)).decode()
    events = [{"text": CAPTION}, {"image": image}]
    return b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events)


def serve() -> None:
    """Serve on 127.0.0.1 until stdin closes; print the port first, then answer stats queries."""
    from aiohttp import web

    body = _body()
    stats = {"open": 0, "most_open": 0, "connections": 0}
    # Every transport ever seen, held so that none is garbage collected and
    # its id reused: a transport not seen before is a newly opened connection.
    transports: dict[int, Any] = {}

    async def stream(request: web.Request) -> web.StreamResponse:
        if id(request.transport) not in transports:
            transports[id(request.transport)] = request.transport
            stats["connections"] += 1
        stats["open"] += 1
        stats["most_open"] = max(stats["most_open"], stats["open"])
        try:
            if (await request.json()).get("prompt") == "crowd":
                # A moment of "generation", so that a crowd really overlaps.
                await asyncio.sleep(0.05)
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            await response.write(body)
            await response.write_eof()
            return response
        finally:
            stats["open"] -= 1

    async def read_stats(request: web.Request) -> web.Response:
        reply = web.json_response(dict(stats))
        stats.update(most_open=0, connections=0)
        return reply

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/v1/stream", stream)
        app.router.add_get("/stats", read_stats)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=2048)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await runner.cleanup()

    asyncio.run(main())


def _provider() -> Any:
    from imagestream import ImageData, ImageFinal, TextDelta
    from imagestream.provider import Chunk, ImageRequest, Provider, RunContext, stream_events

    class Bench(Provider):
        name: ClassVar[str] = "bench"

        async def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Chunk]:
            events = stream_events(
                context,
                "POST",
                f"{request.base_url}/v1/stream",
                provider=self.name,
                decoder=context.get_decoder("sse"),
                content_types=("text/event-stream",),
                json_body={"prompt": request.prompt},
            )
            async for event in events:
                data = json.loads(event.data)
                if "text" in data:
                    yield TextDelta(data["text"])
                else:
                    yield ImageFinal(ImageData.from_base64(data["image"]))

    return Bench()


async def _stats(base: str) -> dict[str, int]:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(f"{base}/stats") as response:
        data: dict[str, int] = await response.json()
        return data


def _operations(base: str) -> dict[str, Callable[[], Awaitable[None]]]:
    import aiohttp

    import imagestream

    imagestream.register_plugin(_plugin_of(_provider()), "bench")

    async def one_imagestream(prompt: str) -> None:
        result = await imagestream.agenerate(prompt, provider="bench", base_url=base)
        assert result.text == CAPTION and len(result.images) == 1

    async def one_raw(session: aiohttp.ClientSession, prompt: str) -> None:
        async with session.post(f"{base}/v1/stream", json={"prompt": prompt}) as response:
            assert len(await response.read()) > IMAGE_BYTES

    async def sequential_imagestream() -> None:
        for _ in range(SEQUENTIAL):
            await one_imagestream("one")

    async def sequential_raw() -> None:
        async with aiohttp.ClientSession() as session:
            for _ in range(SEQUENTIAL):
                await one_raw(session, "one")

    ops: dict[str, Callable[[], Awaitable[None]]] = {
        "sequential/imagestream": sequential_imagestream,
        "sequential/raw": sequential_raw,
    }
    for crowd in CROWDS:

        async def crowd_imagestream(crowd: int = crowd) -> None:
            await asyncio.gather(*(one_imagestream("crowd") for _ in range(crowd)))

        async def crowd_raw(crowd: int = crowd) -> None:
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=connector) as session:
                await asyncio.gather(*(one_raw(session, "crowd") for _ in range(crowd)))

        ops[f"concurrent-{crowd}/imagestream"] = crowd_imagestream
        ops[f"concurrent-{crowd}/raw"] = crowd_raw
    return ops


def _plugin_of(provider: Any) -> object:
    import imagestream

    class Plugin:
        @imagestream.hookimpl
        def register_providers(self, register: Callable[[Any], None]) -> None:
            register(provider)

    return Plugin()


async def _measure(
    base: str, runs: int
) -> tuple[dict[str, list[float]], dict[str, dict[str, int]]]:
    import imagestream

    ops = _operations(base)
    samples: dict[str, list[float]] = {name: [] for name in ops}
    seen: dict[str, dict[str, int]] = {}
    for op in ops.values():  # warm-up: imports, first connections
        await op()
    await imagestream.aclose_http_client()  # the counted runs start from no connection
    await _stats(base)
    names = list(ops)
    rng = random.Random(7)
    for _ in range(runs):
        rng.shuffle(names)
        for name in names:
            started = time.perf_counter()
            await ops[name]()
            samples[name].append(time.perf_counter() - started)
            seen[name] = await _stats(base)
    return samples, seen


def report(samples: dict[str, list[float]], seen: dict[str, dict[str, int]], runs: int) -> None:
    print("new: connections the server saw opened in the last run; peak: requests it held at once")
    print(
        f"connection pooling: {SEQUENTIAL} sequential runs, crowds of {', '.join(map(str, CROWDS))}; "
        f"{IMAGE_BYTES // 1024} KB image per stream; {runs} interleaved runs, Python {sys.version.split()[0]}"
    )
    print(
        f"{'measurement':28} {'median s':>9} {'min-max s':>15} {'new':>5} {'peak':>5} {'x raw':>6}"
    )
    for name in samples:
        values = samples[name]
        kind, _side = name.split("/")
        ratio = statistics.median(values) / statistics.median(samples[f"{kind}/raw"])
        print(
            f"{name:28} {statistics.median(values):9.3f} {min(values):7.3f}-{max(values):<7.3f}"
            f" {seen[name]['connections']:5d} {seen[name]['most_open']:5d} {ratio:6.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs (a smoke test)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve()
        return 0
    runs = 3 if args.quick else 9
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        base = f"http://127.0.0.1:{int(server.stdout.readline())}"
        samples, seen = asyncio.run(_measure(base, runs))
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(timeout=30)
    report(samples, seen, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
