"""Speed and memory of the ``openai`` provider plugin against raw aiohttp and the official client.

Run ``python bench/bench_openai.py`` (``--quick`` for a short smoke run whose
numbers mean little; ``--warm`` adds the same table with the allocator tuned
to keep freed memory, labelled as such). A local aiohttp server in a child
process streams these bodies over loopback, in 64 KiB writes (the corpora of
``_corpora_sse.py``):

* **images**: three ``image_generation.partial_image`` events and an
  ``image_generation.completed``, each a real 1.5 MB PNG as 2 MB of base64
  (an 8 MB body), in two spellings: ``compact`` JSON as OpenAI writes it
  (``"b64_json":"..."``) and ``spaced``, with a space after each colon, as a
  proxy that re-serialises events writes it (``"b64_json": "..."``);
* **chat**: a Responses API stream of 20,000 small
  ``response.output_text.delta`` events (4 MB) and one small image;
* **memory**: one ``image_generation.completed`` holding an 8 MB PNG, in both
  spellings.

**Timing.** Every contender runs in this one process and event loop, one
after another: raw aiohttp (one session; the body read, nothing parsed),
the official client (``images.generate(stream=True)`` then
``base64.b64decode`` of the final image; ``responses.create(stream=True)``),
and ``imagestream.stream()`` with every installed plugin (validation
included), once with the standard library only (``stdlib``: orjson and
pybase64 switched off in imagestream's modules) and once with the ``fast``
extra. A round runs every operation once, body by body: the operations on
one body (one spelling of the images body, or the chat body) run one after
another in a new shuffled order, and the bodies come in a shuffled order too.
Each ratio is taken within a round and on one body, so its two sides run
tens of milliseconds apart rather than seconds (a chat run through the
official client takes over a second), and load coming and going on a shared
machine hits both alike; the report gives its median and its min-max over
the rounds. Times are wall-clock (``time.perf_counter``). The allocator
is glibc's with its defaults: no ``mallopt``, no ``malloc_trim``, and no
warm-up but one untimed round (imports, first connections). ``--warm`` then
runs the rounds again after ``mallopt`` has told glibc to keep every freed
page mapped (what the times would be if page faults were free).

**Memory.** Each measurement runs in a fresh process, so that nothing earlier
has grown the heap: one small stream first (imports, connection), then
``imagestream.stream(..., save=...)`` of the 8 MB image into a temporary
directory. ``tracemalloc`` gives the peak of Python allocations during that
(in a process of its own: tracing slows everything and adds to RSS); the
other process gives the growth of resident memory (the peak, ``VmHWM``,
reset just before, over the RSS then) and the minor page faults. Raw aiohttp reading the same body,
keeping nothing, is the reference for faults.

Goals (issue 13): every chunk within 2x of raw aiohttp; the final image's
bytes at least 6x sooner than the official client with the standard library,
8x with the ``fast`` extra; peak memory for streaming and saving one image at
most twice the image. The chat rows have no goal. The script prints PASS /
MISS against the median and always exits 0: it is a report, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import ctypes
import ctypes.util
import gc
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _corpora_sse as corpora

KEY = "sk-bench"
PIECE = 64 * 1024
MODEL = "gpt-image-1.5"
SPELLINGS = corpora.SPELLINGS
IMAGE_B64 = 2_000_000  # base64 characters of each image of the images body (a 1.5 MB PNG)
MEMORY_IMAGE = 8_000_000  # bytes of the memory body's PNG
CHAT_DELTAS = 20_000


# -- the server (child process) ---------------------------------------------------


def _bodies() -> dict[str, bytes]:
    bodies = {"warmup": corpora.image_stream(b64_size=20_000, partials=1, seed=5)[0]}
    for spelling in SPELLINGS:
        bodies[f"images-{spelling}"] = corpora.image_stream(
            b64_size=IMAGE_B64, partials=3, seed=1, spelling=spelling
        )[0]
        bodies[f"memory-{spelling}"] = corpora.image_stream(
            b64_size=MEMORY_IMAGE * 4 // 3, partials=0, seed=2, spelling=spelling
        )[0]
    bodies["chat"] = corpora.text_stream(deltas=CHAT_DELTAS, seed=3, image_b64_size=4_000)[0]
    return bodies


def serve() -> None:
    """Serve the bodies on 127.0.0.1 until stdin closes; print the port first."""
    from aiohttp import web

    bodies = _bodies()

    async def write(request: web.Request, body: bytes) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        view = memoryview(body)
        for start in range(0, len(body), PIECE):
            await response.write(view[start : start + PIECE])
        await response.write_eof()
        return response

    async def generations(request: web.Request) -> web.StreamResponse:
        params = await request.json()
        return await write(request, bodies[params["prompt"]])

    async def responses(request: web.Request) -> web.StreamResponse:
        await request.read()
        return await write(request, bodies["chat"])

    async def main() -> None:
        app = web.Application(client_max_size=2**20)
        app.router.add_post("/v1/images/generations", generations)
        app.router.add_post("/v1/responses", responses)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        sizes = {name: len(body) for name, body in bodies.items()}
        print(json.dumps([runner.addresses[0][1], sizes]), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await runner.cleanup()

    asyncio.run(main())


# -- switching the fast extra on and off, in this process ---------------------------


def _optional(name: str) -> Any:
    try:
        return __import__(name)
    except ImportError:
        return None


_ORJSON = _optional("orjson")
_PYBASE64 = _optional("pybase64")
HAVE_FAST = _ORJSON is not None and _PYBASE64 is not None


def set_fast(fast: bool) -> None:
    """Make imagestream use orjson and pybase64 (``fast``) or the standard library only."""
    from imagestream import _base64
    from imagestream_openai import _json

    if fast and not HAVE_FAST:
        raise RuntimeError("the fast extra (orjson, pybase64) is not installed")
    _base64._pybase64 = _PYBASE64 if fast else None  # type: ignore[attr-defined]
    _json.loads = _ORJSON.loads if fast else _json._json_loads


# -- the contenders -------------------------------------------------------------------


class Contenders:
    """One timed run of each client, in seconds; all share this process's event loop."""

    def __init__(self, base: str) -> None:
        import aiohttp
        import openai

        self.base = base
        self.session = aiohttp.ClientSession()
        self.client = openai.AsyncOpenAI(api_key=KEY, base_url=base, max_retries=0)

    async def close(self) -> None:
        await self.session.close()
        await self.client.close()

    async def raw(self, prompt: str) -> float:
        """Read the body, parsing nothing."""
        path = "responses" if prompt == "chat" else "images/generations"
        started = time.perf_counter()
        async with self.session.post(
            f"{self.base}/{path}",
            json={"model": MODEL, "prompt": prompt, "stream": True},
            headers={"Authorization": f"Bearer {KEY}", "Accept": "text/event-stream"},
        ) as response:
            size = 0
            async for piece in response.content.iter_any():
                size += len(piece)
        assert size
        return time.perf_counter() - started

    async def openai_final(self, prompt: str) -> float:
        """Until the official client has the final image's decoded bytes."""
        started = time.perf_counter()
        stream = await self.client.images.generate(
            model=MODEL, prompt=prompt, stream=True, partial_images=3
        )
        final_at = 0.0
        async for event in stream:
            if event.type == "image_generation.completed":
                assert base64.b64decode(event.b64_json)
                final_at = time.perf_counter() - started
        assert final_at
        return final_at

    async def openai_chat(self) -> float:
        """Every event of the chat stream through the official client."""
        started = time.perf_counter()
        stream = await self.client.responses.create(model="gpt-5", input="chat", stream=True)
        count = 0
        async for _event in stream:
            count += 1
        assert count > CHAT_DELTAS
        return time.perf_counter() - started

    async def ours(self, prompt: str, *, fast: bool, final: bool) -> float:
        """``imagestream.stream()``: every chunk, or until the final image's bytes are in hand."""
        import imagestream

        set_fast(fast)
        params: dict[str, Any] = {"partial_images": 3}
        if prompt == "chat":
            params = {"api": "responses", "responses_model": "gpt-5"}
        started = time.perf_counter()
        final_at = 0.0
        count = 0
        async with imagestream.stream(
            prompt, provider="openai", model=MODEL, base_url=self.base, api_key=KEY, **params
        ) as chunks:
            async for chunk in chunks:
                count += 1
                if final and isinstance(chunk, imagestream.ImageFinal):
                    assert chunk.image.data
                    final_at = time.perf_counter() - started
        assert count
        return final_at if final else time.perf_counter() - started


def _plan(
    contenders: Contenders, variants: list[bool]
) -> dict[str, Callable[[], Awaitable[float]]]:
    ops: dict[str, Callable[[], Awaitable[float]]] = {}
    for spelling in SPELLINGS:
        prompt = f"images-{spelling}"
        ops[f"raw/{spelling}"] = lambda p=prompt: contenders.raw(p)  # type: ignore[misc]
        ops[f"openai/final/{spelling}"] = lambda p=prompt: contenders.openai_final(p)  # type: ignore[misc]
        for fast in variants:
            kind = "fast" if fast else "stdlib"
            ops[f"{kind}/all/{spelling}"] = lambda p=prompt, f=fast: contenders.ours(  # type: ignore[misc]
                p, fast=f, final=False
            )
            ops[f"{kind}/final/{spelling}"] = lambda p=prompt, f=fast: contenders.ours(  # type: ignore[misc]
                p, fast=f, final=True
            )
    ops["raw/chat"] = lambda: contenders.raw("chat")
    ops["openai/chat"] = contenders.openai_chat
    for fast in variants:
        kind = "fast" if fast else "stdlib"
        ops[f"{kind}/chat"] = lambda f=fast: contenders.ours("chat", fast=f, final=False)  # type: ignore[misc]
    return ops


async def measure(base: str, rounds: int, warm: bool) -> list[tuple[str, dict[str, list[float]]]]:
    """Seconds of each operation in each round, for the default allocator (and warmed)."""
    contenders = Contenders(base)
    variants = [False, True] if HAVE_FAST else [False]
    ops = _plan(contenders, variants)
    tables = []
    try:
        for name in ops:  # one untimed round: imports, connections, plugin loading
            await ops[name]()
        allocators = [("glibc defaults (no tuning)", lambda: None)]
        if warm:
            allocators.append(("warmed: mallopt keeps every freed page mapped", _warm_allocator))
        # The operations on one body, which the ratios compare, run as a block.
        bodies: dict[str, list[str]] = {}
        for name in ops:
            bodies.setdefault(name.rsplit("/", 1)[1], []).append(name)
        rng = random.Random(13)
        for label, prepare in allocators:
            prepare()
            times: dict[str, list[float]] = {name: [] for name in ops}
            for _ in range(rounds):
                for body in rng.sample(list(bodies), len(bodies)):
                    for name in rng.sample(bodies[body], len(bodies[body])):
                        gc.collect()
                        times[name].append(await ops[name]())
            tables.append((label, times))
    finally:
        await contenders.close()
    return tables


def _warm_allocator() -> None:
    libc = _glibc()
    if libc is None:
        raise SystemExit("--warm needs glibc")
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 32 * 2**20)
    libc.mallopt(m_trim_threshold, 2**30)


def _glibc() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") else None


# -- memory (a fresh process per measurement) ---------------------------------------------


def _rss() -> int:
    """Resident memory now; and the peak from here on is what ``_rss_growth`` reports."""
    # Writing 5 to clear_refs resets the peak (VmHWM) to the current RSS.
    Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS")


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _rss_growth(before: int) -> int:
    """How far resident memory rose above ``before`` at its peak."""
    return _status("VmHWM") - before


def _largest_file(folder: str) -> int:
    return max((path.stat().st_size for path in Path(folder).iterdir()), default=0)


def memory_child(spelling: str, variant: str, mode: str, base: str) -> None:
    """Stream and save the memory body once; print what it cost as JSON."""

    async def main() -> dict[str, float]:
        import aiohttp

        import imagestream

        prompt = f"memory-{spelling}"
        if variant == "raw":
            async with aiohttp.ClientSession() as session:

                async def read(name: str) -> int:
                    async with session.post(
                        f"{base}/images/generations", json={"prompt": name}
                    ) as response:
                        return sum([len(piece) async for piece in response.content.iter_any()])

                await read("warmup")
                gc.collect()
                before, faults = _rss(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                await read(prompt)
                usage = resource.getrusage(resource.RUSAGE_SELF)
                return {"rss": _rss_growth(before), "faults": usage.ru_minflt - faults}
        set_fast(variant == "fast")
        params = {"provider": "openai", "model": MODEL, "base_url": base, "api_key": KEY}
        with tempfile.TemporaryDirectory() as folder:
            save = imagestream.SaveOptions(out_dir=folder)
            async with imagestream.stream("warmup", save=save, **params) as chunks:
                async for _ in chunks:
                    pass
            gc.collect()
            if mode == "trace":
                tracemalloc.start()
                start = tracemalloc.get_traced_memory()[0]
            before, faults = _rss(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            saved = 0
            async with imagestream.stream(prompt, save=save, **params) as chunks:
                async for chunk in chunks:
                    if isinstance(chunk, imagestream.ImageFinal):
                        saved = chunk.image.nbytes
            usage = resource.getrusage(resource.RUSAGE_SELF)
            out = {
                "rss": _rss_growth(before),
                "faults": usage.ru_minflt - faults,
                "image": saved,
            }
            if mode == "trace":
                out["peak"] = tracemalloc.get_traced_memory()[1] - start
                tracemalloc.stop()
            assert _largest_file(folder) == saved
        return out

    print(json.dumps(asyncio.run(main())), flush=True)


def measure_memory(base: str, repeats: int) -> dict[tuple[str, str], list[dict[str, float]]]:
    variants = ["raw", "stdlib"] + (["fast"] if HAVE_FAST else [])
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    for _ in range(repeats):
        for spelling in SPELLINGS:
            for variant in variants:
                merged: dict[str, float] = {}
                for mode in ("rss", "trace") if variant != "raw" else ("rss",):
                    done = subprocess.run(
                        [sys.executable, __file__, "--memory-child", spelling, variant, mode, base],
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    found = json.loads(done.stdout.strip().splitlines()[-1])
                    if mode == "trace":
                        merged["peak"] = found["peak"]
                    else:
                        merged.update(found)
                results.setdefault((spelling, variant), []).append(merged)
    return results


# -- the report --------------------------------------------------------------------------


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _spread(values: list[float], unit: str = "x", digits: int = 2) -> tuple[str, str]:
    return (
        f"{statistics.median(values):.{digits}f}{unit}",
        f"{min(values):.{digits}f}-{max(values):.{digits}f}{unit}",
    )


def _print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in [*rows, header]) for i in range(len(header))]
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def report_times(label: str, times: dict[str, list[float]], sizes: dict[str, int]) -> None:
    def ratio(top: str, bottom: str) -> list[float]:
        return [a / b for a, b in zip(times[top], times[bottom], strict=True)]

    kinds = [kind for kind in ("stdlib", "fast") if f"{kind}/chat" in times]
    print(f"Allocator: {label}; {len(times['raw/chat'])} interleaved rounds\n")
    ms = [
        (name, *_spread([t * 1e3 for t in values], " ms", 1))
        for name, values in sorted(times.items())
    ]
    _print_table(("contender/measure/body", "median", "min-max"), ms)
    print()
    rows: list[tuple[str, ...]] = []
    for spelling in SPELLINGS:
        for kind in kinds:
            values = ratio(f"{kind}/all/{spelling}", f"raw/{spelling}")
            rows.append(
                (
                    f"imagestream.stream() every chunk / raw aiohttp, {kind}",
                    spelling,
                    *_spread(values),
                    "<= 2x",
                    "PASS" if statistics.median(values) <= 2.0 else "MISS",
                )
            )
        for kind in kinds:
            goal = 8.0 if kind == "fast" else 6.0
            values = ratio(f"openai/final/{spelling}", f"{kind}/final/{spelling}")
            rows.append(
                (
                    f"final image's bytes: openai client / imagestream, {kind}",
                    spelling,
                    *_spread(values),
                    f">= {goal:g}x",
                    "PASS" if statistics.median(values) >= goal else "MISS",
                )
            )
    for kind in kinds:
        rows.append(
            (
                f"chat, every chunk: imagestream / raw aiohttp, {kind}",
                "compact",
                *_spread(ratio(f"{kind}/chat", "raw/chat")),
                "(none)",
                "",
            )
        )
        rows.append(
            (
                f"chat, every chunk: openai client / imagestream, {kind}",
                "compact",
                *_spread(ratio("openai/chat", f"{kind}/chat")),
                "(none)",
                "",
            )
        )
    _print_table(("measure", "JSON", "median", "min-max", "goal", ""), rows)
    print()


def report_memory(results: dict[tuple[str, str], list[dict[str, float]]]) -> None:
    rows: list[tuple[str, ...]] = []
    for (spelling, variant), runs in results.items():
        faults = _spread([run["faults"] for run in runs], "", 0)
        if variant == "raw":
            rss = _spread([run["rss"] / 1e6 for run in runs], " MB", 1)
            rows.append(("raw aiohttp, body read and dropped", spelling, "", "", *rss, "", *faults))
            continue
        image = runs[0]["image"]
        peak = [run["peak"] / image for run in runs]
        rss_ratio = [run["rss"] / image for run in runs]
        verdict = (
            "PASS" if max(statistics.median(peak), statistics.median(rss_ratio)) <= 2 else "MISS"
        )
        rows.append(
            (
                f"imagestream stream + save {image / 1e6:.1f} MB image, {variant}",
                spelling,
                *_spread(peak),
                *_spread(rss_ratio),
                verdict,
                *faults,
            )
        )
    _print_table(
        (
            "memory (fresh process each run)",
            "JSON",
            "tracemalloc peak / image",
            "min-max",
            "RSS growth / image",
            "min-max",
            "<= 2x",
            "minor faults",
            "min-max",
        ),
        rows,
    )
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few rounds (a smoke test)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default 21)")
    parser.add_argument("--warm", action="store_true", help="also time with a warmed allocator")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--memory-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve()
        return 0
    if args.memory_child:
        memory_child(*args.memory_child)
        return 0
    rounds = args.rounds or (3 if args.quick else 21)
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port, sizes = json.loads(server.stdout.readline())
        base = f"http://127.0.0.1:{port}/v1"
        print(
            f"Python {platform.python_version()} on {platform.machine()} {platform.system()}, "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
        )
        print(
            "versions: "
            + ", ".join(
                f"{name} {_version(name)}"
                for name in ("imagestream-openai", "aiohttp", "openai", "orjson", "pybase64")
            )
        )
        print(
            f"bodies: images {sizes['images-compact'] / 1e6:.1f} MB (compact) / "
            f"{sizes['images-spaced'] / 1e6:.1f} MB (spaced), chat {sizes['chat'] / 1e6:.1f} MB "
            f"({CHAT_DELTAS} events), memory {sizes['memory-compact'] / 1e6:.1f} MB; "
            f"written in {PIECE // 1024} KiB pieces"
            + ("" if HAVE_FAST else "; the fast extra is not installed: stdlib rows only")
            + "\n"
        )
        for label, times in asyncio.run(measure(base, rounds, args.warm)):
            report_times(label, times, sizes)
        report_memory(measure_memory(base, 1 if args.quick else 3))
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
