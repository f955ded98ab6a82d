"""Hundreds of OpenAI image streams at once through ``imagestream.stream()``, against ``AsyncOpenAI``.

Run ``python bench/bench_concurrency.py`` (``--quick`` for a short run). A
local aiohttp server in a child process (the server only) streams OpenAI
Images API events over loopback: three partial images and a final, real PNG
files in base64 inside JSON, about 0.4 MB per stream, in both spellings of
the JSON (compact ``"b64_json":"…"`` and spaced ``"b64_json": "…"``, as
``json.dumps`` writes by default). Crowds of 200 and 500 streams start at
once (``asyncio.gather``), and each stream runs until the decoded bytes of
its final image are in hand.

Contenders, all in this one process, interleaved in a shuffled order each
round (the contenders on one crowd size and spelling run as a block, so the
two sides of a ratio run seconds apart rather than a whole round), on wall
time, with the allocator left at its default:

* ``openai``: one ``openai.AsyncOpenAI`` client,
  ``images.generate(stream=True)``, ``base64.b64decode`` of the final;
* ``stream() stdlib`` and ``stream() fast``: ``imagestream.stream()`` with
  every installed plugin (the default middleware included), through the
  running loop's pooled client, without and with the ``fast`` extra;
* ``Pipeline fast``: one reused ``imagestream.Pipeline`` (``async with``, a
  client of its own) with the same plugins;
* ``raw aiohttp``: reads the same bodies and parses nothing, one unlimited
  session: the ceiling of loopback and server, not a contender.

The fast extra (orjson, pybase64) is switched off and on in-process by
swapping the modules' own switches (``imagestream._base64._pybase64``, the
openai plugin's ``_json.loads``/``dumps`` and the names bound to them); the
switch is checked against every loaded ``imagestream*`` module first, and
the fast rows are left out, saying why, when it cannot be made honestly.

Printed per crowd and spelling: aggregate throughput (decoded-body MB/s) as
a ratio to ``AsyncOpenAI`` with min-max over rounds and PASS/MISS against the
goal (at least 5x), the p50 and p99 time to the final image (medians over
rounds), and what the server saw: the most requests it held at once (equal
to the crowd when nothing is queued behind a connection limit) and how many
connections were opened. The script is a report, not a test: it exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from importlib import metadata
from types import ModuleType
from typing import Any

import _corpora_sse as corpora

KEY = "sk-bench"
CROWDS = (200, 500)
SPELLINGS = ("compact", "spaced")
GOAL = 5.0
PIECE = 64 * 1024
# Base64 characters per partial image and of the final: about 0.4 MB a stream.
PARTIAL_CHARS = (80_000, 80_000, 80_000)
FINAL_CHARS = 160_000


# -- the server (child process) -------------------------------------------------


def _png(b64_chars: int, seed: int) -> str:
    """The base64 of a valid PNG of random pixels, about ``b64_chars`` long (the corpora's)."""
    return base64.b64encode(corpora.png(b64_chars, seed)).decode("ascii")


def _body(spelling: str) -> bytes:
    """One stream's SSE body: three partial images and the completed event."""
    common = {"background": "opaque", "output_format": "png", "quality": "high"}
    events: list[tuple[str, dict[str, Any]]] = []
    for index, chars in enumerate(PARTIAL_CHARS):
        events.append(
            (
                "image_generation.partial_image",
                {
                    "created_at": 1774267828,
                    "type": "image_generation.partial_image",
                    "b64_json": _png(chars, index),
                    **common,
                    "partial_image_index": index,
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
                "b64_json": _png(FINAL_CHARS, 99),
                **common,
                "sequence_number": len(PARTIAL_CHARS),
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
    separators = (",", ":") if spelling == "compact" else (", ", ": ")
    text = "".join(
        f"event: {name}\ndata: {json.dumps(data, separators=separators)}\n\n"
        for name, data in events
    )
    return text.encode("ascii")


HOLD_TIMEOUT = 10.0


def serve() -> None:
    """Serve on 127.0.0.1 until stdin closes; print the port first.

    The prompt names the spelling of the JSON to answer with; a prompt
    ``hold N`` makes the server hold every such request until ``N`` are open
    at once (or ``HOLD_TIMEOUT`` has passed), then answer compact JSON: the
    most a client can have open at once, whatever its speed. ``GET /stats``
    returns, and resets, the most requests held open at once and the
    connections opened since the last call.
    """
    from aiohttp import web

    bodies = {spelling: _body(spelling) for spelling in SPELLINGS}
    stats = {"open": 0, "most_open": 0, "connections": 0}
    released = [asyncio.Event()]
    # Every transport ever seen, held so that none is garbage collected and its
    # id reused: a transport not seen before is a newly opened connection.
    transports: dict[int, Any] = {}

    async def hold(crowd: int) -> None:
        event = released[0]
        if stats["open"] >= crowd:
            event.set()
        try:
            await asyncio.wait_for(event.wait(), HOLD_TIMEOUT)
        except TimeoutError:
            event.set()  # fewer came at once: let them all go now

    async def generations(request: web.Request) -> web.StreamResponse:
        if id(request.transport) not in transports:
            transports[id(request.transport)] = request.transport
            stats["connections"] += 1
        stats["open"] += 1
        stats["most_open"] = max(stats["most_open"], stats["open"])
        try:
            prompt = (await request.json()).get("prompt", "compact")
            if prompt.startswith("hold "):
                await hold(int(prompt.split()[1]))
                prompt = "compact"
            body = bodies[prompt]
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            view = memoryview(body)
            for start in range(0, len(body), PIECE):
                await response.write(view[start : start + PIECE])
            await response.write_eof()
            return response
        finally:
            stats["open"] -= 1

    async def read_stats(request: web.Request) -> web.Response:
        reply = web.json_response({name: stats[name] for name in ("most_open", "connections")})
        stats.update(most_open=stats["open"], connections=0)
        released[0] = asyncio.Event()
        return reply

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/v1/images/generations", generations)
        app.router.add_get("/stats", read_stats)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        # A backlog above the largest crowd: 500 connects at once must not be
        # dropped and retried by the kernel a second later.
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await runner.cleanup()

    asyncio.run(main())


# -- the fast extra, switched in-process ----------------------------------------

_FAST_MODULES = ("orjson", "pybase64")


_FAST_FLAGS = ("FAST_BASE64", "FAST_JSON")


def _fast_references() -> list[str]:
    """Every global of a loaded ``imagestream*`` module that is orjson, pybase64,
    one of their functions, or a copy of a module's ``FAST_*`` flag."""
    found = []
    for name, module in list(sys.modules.items()):
        if not name.startswith("imagestream") or not isinstance(module, ModuleType):
            continue
        for attr, value in vars(module).items():
            if attr in _FAST_FLAGS:
                found.append(f"{name}.{attr}")
                continue
            owner = (
                value.__name__
                if isinstance(value, ModuleType)
                else getattr(value, "__module__", None)
            )
            if isinstance(owner, str) and owner.split(".")[0] in _FAST_MODULES:
                found.append(f"{name}.{attr}")
    return sorted(found)


class FastSwitch:
    """Turns the fast extra off and on by swapping the modules' own switches.

    The core decodes base64 through ``imagestream._base64._pybase64`` (looked
    up on each call); the openai plugin parses and writes JSON through
    ``imagestream_openai._json.loads``/``dumps``, which ``_transport`` and
    ``_errors`` bind by name. Those are every place the fast extra is used;
    :meth:`check` makes sure no other module holds a reference the switch
    would miss.
    """

    def __init__(self) -> None:
        self.base64_mod: Any = importlib.import_module("imagestream._base64")
        self.json_mod: Any = importlib.import_module("imagestream_openai._json")
        self.transport: Any = importlib.import_module("imagestream_openai._transport")
        self.errors: Any = importlib.import_module("imagestream_openai._errors")
        self.fast = {
            "pybase64": self.base64_mod._pybase64,
            "loads": self.json_mod.loads,
            "dumps": self.json_mod.dumps,
            "orjson": self.json_mod._orjson,
        }

    def available(self) -> str | None:
        """``None`` when both states can be made; else why not."""
        if self.fast["pybase64"] is None or self.fast["orjson"] is None:
            return "the fast extra (orjson, pybase64) is not installed"
        covered = {
            "imagestream._base64._pybase64",
            "imagestream._base64.FAST_BASE64",
            "imagestream_openai._json.FAST_JSON",
            "imagestream_openai._json._orjson",
            "imagestream_openai._json.loads",
            "imagestream_openai._json.dumps",
            "imagestream_openai._transport.dumps",
            "imagestream_openai._errors.loads",
        }
        missed = [name for name in _fast_references() if name not in covered]
        if missed:
            return "the fast extra is also used by " + ", ".join(missed)
        return None

    @contextmanager
    def use(self, fast: bool) -> Iterator[None]:
        j = self.json_mod
        loads = self.fast["loads"] if fast else j._json_loads
        dumps = self.fast["dumps"] if fast else j._json_dumps
        self.base64_mod._pybase64 = self.fast["pybase64"] if fast else None
        self.base64_mod.FAST_BASE64 = j.FAST_JSON = fast
        j.loads, j.dumps = loads, dumps
        self.transport.dumps = dumps
        self.errors.loads = loads
        try:
            yield
        finally:
            self.base64_mod._pybase64 = self.fast["pybase64"]
            self.base64_mod.FAST_BASE64 = j.FAST_JSON = True
            j.loads, j.dumps = self.fast["loads"], self.fast["dumps"]
            self.transport.dumps = self.fast["dumps"]
            self.errors.loads = self.fast["loads"]


# -- the contenders --------------------------------------------------------------

One = Callable[[float, str], Awaitable[float]]
"""One stream with the given prompt; returns seconds from ``started`` to the final's bytes."""


class Contenders:
    """The clients, made once and reused for every crowd, and how to close them."""

    def __init__(self, base: str, switch: FastSwitch | None) -> None:
        import aiohttp
        import openai

        import imagestream

        self.base = base
        self.client = openai.AsyncOpenAI(api_key=KEY, base_url=base, max_retries=0)
        self.raw = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        self.pipeline = imagestream.Pipeline(manager=imagestream.get_plugin_manager())
        # name -> (one stream, fast extra on / off / as installed (None))
        self.table: dict[str, tuple[One, bool | None]] = {
            "openai": (self.openai_one, None),
            "raw aiohttp": (self.raw_one, None),
        }
        self.split(switch is not None)

    def split(self, fast_rows: bool) -> None:
        """The imagestream rows: stdlib and fast apart, or as installed."""
        for name in [name for name in self.table if name not in ("openai", "raw aiohttp")]:
            del self.table[name]
        stream_one, pipeline_one = self.imagestream_one(False), self.imagestream_one(True)
        if fast_rows:
            self.table["stream() stdlib"] = (stream_one, False)
            self.table["stream() fast"] = (stream_one, True)
            self.table["Pipeline stdlib"] = (pipeline_one, False)
            self.table["Pipeline fast"] = (pipeline_one, True)
        else:
            self.table["stream()"] = (stream_one, None)
            self.table["Pipeline"] = (pipeline_one, None)

    async def open(self) -> None:
        await self.pipeline.__aenter__()  # a client of its own, kept for every call

    async def close(self) -> None:
        import imagestream

        await self.client.close()
        await self.raw.close()
        await self.pipeline.__aexit__(None, None, None)
        await imagestream.aclose_http_client()

    async def openai_one(self, started: float, prompt: str) -> float:
        stream = await self.client.images.generate(prompt=prompt, stream=True, partial_images=3)
        final_at = 0.0
        async for event in stream:
            if event.type == "image_generation.completed":
                assert base64.b64decode(event.b64_json)
                final_at = time.perf_counter() - started
        return final_at

    def imagestream_one(self, use_pipeline: bool) -> One:
        import imagestream

        params: dict[str, Any] = dict(
            provider="openai", partial_images=3, base_url=self.base, api_key=KEY
        )

        async def one(started: float, prompt: str) -> float:
            chunks = (
                self.pipeline.stream(prompt, **params)
                if use_pipeline
                else imagestream.stream(prompt, **params)
            )
            final_at = 0.0
            async with chunks:
                async for chunk in chunks:
                    if isinstance(chunk, imagestream.ImageFinal):
                        assert chunk.image.data  # decoded here, on first use
                        final_at = time.perf_counter() - started
            return final_at

        return one

    async def raw_one(self, started: float, prompt: str) -> float:
        async with self.raw.post(
            f"{self.base}/images/generations",
            json={"prompt": prompt, "stream": True, "partial_images": 3},
            headers={"Authorization": f"Bearer {KEY}"},
        ) as response:
            async for _ in response.content.iter_any():
                pass
        return time.perf_counter() - started


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _measure(base: str, rounds: int, switch: FastSwitch | None) -> dict[str, Any]:
    import warnings

    import aiohttp

    # The openai plugin's notes (a retired model, say) are not what is measured.
    warnings.filterwarnings("ignore")
    contenders = Contenders(base, switch)
    await contenders.open()
    stats_session = aiohttp.ClientSession()
    stats_url = f"{base.removesuffix('/v1')}/stats"

    async def stats() -> dict[str, int]:
        async with stats_session.get(stats_url) as response:
            data: dict[str, int] = await response.json()
            return data

    async def crowd(name: str, size: int, prompt: str) -> tuple[float, list[float]]:
        one, fast = contenders.table[name]
        await stats()  # reset the server's counts
        started = time.perf_counter()
        if fast is None or switch is None:
            finals = await asyncio.gather(*(one(started, prompt) for _ in range(size)))
        else:
            with switch.use(fast):
                finals = await asyncio.gather(*(one(started, prompt) for _ in range(size)))
        return time.perf_counter() - started, finals

    note = None
    results: dict[tuple[int, str, str], dict[str, list[float]]] = {}
    held: dict[tuple[int, str], int] = {}
    try:
        # Warm-up: imports, first connections, every lazily loaded module.
        for size in CROWDS:
            for spelling in SPELLINGS:
                for name in list(contenders.table):
                    await crowd(name, size, spelling)
        if switch is not None:
            note = switch.available()
            if note is not None:
                switch = None
                contenders.split(False)
                for name in contenders.table:
                    await crowd(name, CROWDS[0], SPELLINGS[0])
        # How many streams each contender has open at once, at most.
        for size in CROWDS:
            for name in contenders.table:
                await crowd(name, size, f"hold {size}")
                held[(size, name)] = (await stats())["most_open"]
        # The contenders on one crowd and spelling, which the ratios compare,
        # run as a block: a ratio's two sides seconds apart, not a whole round.
        blocks = [(size, spelling) for size in CROWDS for spelling in SPELLINGS]
        rng = random.Random(7)
        for done in range(rounds):
            order = [
                (name, size, spelling)
                for size, spelling in rng.sample(blocks, len(blocks))
                for name in rng.sample(list(contenders.table), len(contenders.table))
            ]
            for name, size, spelling in order:
                wall, finals = await crowd(name, size, spelling)
                seen = await stats()
                row = results.setdefault((size, spelling, name), {})
                for key, value in (
                    ("wall", wall),
                    ("p50", _quantile(finals, 0.50)),
                    ("p99", _quantile(finals, 0.99)),
                    ("connections", seen["connections"]),
                ):
                    row.setdefault(key, []).append(value)
            print(f"round {done + 1} of {rounds} done", file=sys.stderr, flush=True)
    finally:
        await contenders.close()
        await stats_session.close()
    return {"results": results, "held": held, "names": list(contenders.table), "note": note}


# -- the report ------------------------------------------------------------------


def report(measured: dict[str, Any], rounds: int, note: str | None, load: str) -> None:
    results, held, names = measured["results"], measured["held"], measured["names"]
    note = note or measured["note"]
    packages = ["imagestream", "imagestream-openai", "aiohttp", "openai", "httpx"]
    if note is None:
        packages += ["orjson", "pybase64"]
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in packages)
    sizes = {spelling: len(_body(spelling)) / 1e6 for spelling in SPELLINGS}
    print(
        f"concurrent OpenAI image streams: {sizes['compact']:.2f} MB each (3 partials + final, "
        f"PNG in base64 JSON); {rounds} interleaved rounds; Python "
        f"{platform.python_version()}, {versions}; {os.cpu_count()} CPUs, load average {load}"
    )
    if note:
        print(f"no stdlib/fast rows: {note}")
    print(
        "MB/s: body bytes of the whole crowd over its wall time. x openai: that against "
        "AsyncOpenAI in the same round, median (min-max over rounds); goal >= "
        f"{GOAL:g}x. p50/p99: seconds from the crowd's start to a stream's decoded final "
        "image (medians over rounds). held: the most streams the server saw open at once when "
        "it held every one until the whole crowd had come (crowd = none queued). new: "
        "connections opened during a timed crowd (median)."
    )
    header = (
        f"| {'crowd':>5} | {'JSON':7} | {'contender':15} | {'MB/s':>5} | "
        f"{'x openai (min-max)':18} | {'goal':4} | {'p50 s':>5} | {'p99 s':>5} | "
        f"{'held':>4} | {'new':>4} |"
    )
    print(header)
    print("|" + "|".join("-" * len(part) for part in header.split("|")[1:-1]) + "|")
    for size in CROWDS:
        for spelling in SPELLINGS:
            base_walls = results[(size, spelling, "openai")]["wall"]
            for name in names:
                row = results[(size, spelling, name)]
                walls = row["wall"]
                mbps = size * sizes[spelling] / statistics.median(walls)
                ratios = [b / w for b, w in zip(base_walls, walls, strict=True)]
                if name == "openai":
                    ratio, verdict = "1.00x", ""
                else:
                    middle = statistics.median(ratios)
                    ratio = f"{middle:.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"
                    verdict = "" if name == "raw aiohttp" else "PASS" if middle >= GOAL else "MISS"
                print(
                    f"| {size:5d} | {spelling:7} | {name:15} | {mbps:5.0f} | {ratio:18} | "
                    f"{verdict:4} | {statistics.median(row['p50']):5.2f} | "
                    f"{statistics.median(row['p99']):5.2f} | {held[(size, name)]:4d} | "
                    f"{statistics.median(row['connections']):4.0f} |"
                )
    print("raw aiohttp reads the same bodies and parses nothing: the ceiling, not a contender.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke test)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 7)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve()
        return 0
    rounds = args.rounds or (2 if args.quick else 7)
    import imagestream

    imagestream.get_plugin_manager()  # every plugin loaded before the switch is checked
    switch: FastSwitch | None = FastSwitch()
    note = switch.available() if switch is not None else None
    if note is not None:
        switch = None
    load_before = os.getloadavg()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        base = f"http://127.0.0.1:{int(server.stdout.readline())}/v1"
        measured = asyncio.run(_measure(base, rounds, switch))
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(timeout=60)
    load = f"{load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after (1-minute)"
    report(measured, rounds, note, load)
    return 0


if __name__ == "__main__":
    sys.exit(main())
