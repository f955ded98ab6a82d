"""Throughput of the ``sse`` decoder plugin against other Python SSE decoders.

Run ``python bench/bench_sse.py`` (``--quick`` for a smoke run whose numbers
mean little). The script builds seeded corpora (``_corpora_sse.py``) and
decodes the same pieces with every decoder, in one process:

* **image**: the OpenAI Images API streaming shape, three
  ``image_generation.partial_image`` events and an ``image_generation.completed``,
  each a real 1.5 MB PNG as 2 MB of base64 in one ``data`` line (8 MB), in
  compact JSON (``"b64_json":"..."``, as OpenAI writes it) and spaced JSON
  (``"b64_json": "..."``, as a proxy that re-serialises events writes it);
* **text**: a Responses API stream of 20,000 small
  ``response.output_text.delta`` events (4.2 MB, some of it not ASCII);
* one 8 MB event, fed in 1,448-byte pieces (one TCP segment) and in 64 KiB pieces.

Each stream is fed in 16 KiB and 64 KiB pieces. A round runs every decoder
once, in a new shuffled order; each ratio (their time over ours) is taken
within a round, so that load coming and going on a shared machine hits both
sides of it alike, and the report gives its median and min-max over the
rounds. Times are wall-clock (``time.perf_counter``); the allocator is left
at its defaults (no ``mallopt``, no ``malloc_trim``).

Decoders, each driven the way its own streaming API drives it:

* ``ours``: :class:`imagestream_sse.SSEDecoder`, every event's data as text.
* ``ours+sink``: the same with the ``openai`` plugin's data sink
  (:class:`imagestream_openai._json.ImageLifter`), as the openai provider runs
  it: each image is read out of the bytes as they arrive (decoded with the
  ``fast`` extra, kept as references without it) and only the rest of the
  JSON becomes text. Skipped when the openai plugin is not installed.
* ``openai``: ``openai._streaming.SSEDecoder().iter_bytes`` over an iterator
  of the pieces (what ``Stream`` does with a response body).
* ``httpx-sse``: its ``SSELineDecoder`` and ``SSEDecoder`` fed with text from
  an incremental UTF-8 decoder, line by line, as ``EventSource.iter_sse``
  does over ``response.iter_text()``.
* ``raw``: ``b"".join(pieces).split(b"\\n\\n")``, a floor that only finds
  event boundaries and decodes nothing.

openai and httpx-sse are optional: a peer that cannot be imported is
reported as skipped. The script prints PASS / MISS against the median of each
ratio and always exits 0: it is a report, not a test.
"""

from __future__ import annotations

import argparse
import codecs
import gc
import importlib
import importlib.metadata
import importlib.util
import os
import platform
import random
import statistics
import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _corpora_sse as corpora

from imagestream_sse import SSEDecoder

KiB = 1024
Run = Callable[[list[bytes]], int]  # decodes the pieces, returns the number of events


def run_ours(chunks: list[bytes]) -> int:
    decoder = SSEDecoder()
    feed = decoder.feed
    count = 0
    for chunk in chunks:
        count += len(feed(chunk))
    return count + len(decoder.close())


def load_ours_with_sink() -> Run | None:
    try:
        from imagestream_openai._json import ImageLifter
    except ImportError:
        return None

    def run(chunks: list[bytes]) -> int:
        decoder = SSEDecoder(data_sink=ImageLifter())
        feed = decoder.feed
        count = 0
        for chunk in chunks:
            count += len(feed(chunk))
        return count + len(decoder.close())

    return run


def run_raw(chunks: list[bytes]) -> int:
    return len(b"".join(chunks).split(b"\n\n")) - 1


def load_openai() -> Run | None:
    try:
        from openai._streaming import SSEDecoder as OpenAIDecoder
    except ImportError:
        return None

    def run(chunks: list[bytes]) -> int:
        return sum(1 for _ in OpenAIDecoder().iter_bytes(iter(chunks)))

    return run


def _import_httpx_sse_decoders() -> Any:
    try:
        return importlib.import_module("httpx_sse._decoders")
    except ImportError:
        pass
    # The package's __init__ imports httpx for its client helpers; the
    # decoders themselves need only the standard library. When httpx is not
    # installed, load the decoders without running that __init__.
    spec = importlib.util.find_spec("httpx_sse")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("httpx_sse is not installed")
    package = types.ModuleType("httpx_sse")
    package.__path__ = list(spec.submodule_search_locations)
    saved = sys.modules.get("httpx_sse")
    sys.modules["httpx_sse"] = package
    try:
        return importlib.import_module("httpx_sse._decoders")
    finally:
        if saved is not None:
            sys.modules["httpx_sse"] = saved


def load_httpx_sse() -> Run | None:
    try:
        decoders = _import_httpx_sse_decoders()
    except ImportError:
        return None
    line_decoder_cls = decoders.SSELineDecoder
    decoder_cls = decoders.SSEDecoder

    def lines(chunks: list[bytes]) -> Iterator[str]:
        # response.iter_text() decodes with an incremental UTF-8 decoder.
        text_decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        line_decoder = line_decoder_cls()
        for chunk in chunks:
            text = text_decoder.decode(chunk)
            if text:
                yield from line_decoder.decode(text)
        text = text_decoder.decode(b"", True)
        if text:
            yield from line_decoder.decode(text)
        yield from line_decoder.flush()

    def run(chunks: list[bytes]) -> int:
        decoder = decoder_cls()
        count = 0
        for line in lines(chunks):
            if decoder.decode(line.rstrip("\n")) is not None:
                count += 1
        return count

    return run


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def interleaved(
    runs: dict[str, tuple[Run, list[bytes], int]], rounds: int, rng: random.Random
) -> dict[str, list[float]]:
    """Seconds of each run in each round; every round runs all of them, in a new order."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        order = list(runs)
        rng.shuffle(order)
        for name in order:
            run, chunks, expected = runs[name]
            gc.collect()
            start = time.perf_counter()
            count = run(chunks)
            times[name].append(time.perf_counter() - start)
            if count != expected:
                raise SystemExit(f"{name}: {count} events, expected {expected}")
    return times


def _spread(values: list[float], unit: str = "x") -> tuple[str, str]:
    return f"{statistics.median(values):.2f}{unit}", f"{min(values):.2f}-{max(values):.2f}{unit}"


def _print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in [*rows, header]) for i in range(len(header))]
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


TARGETS = {
    "image": {"openai": 10.0, "httpx-sse": 2.0, "raw": 1.0},
    "text": {"openai": 3.0, "httpx-sse": 1.5},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small corpora, few rounds")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per stream (default 15)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 15)
    rng = random.Random(11)

    streams: list[tuple[str, str, bytes, int]] = []  # (kind, label, body, events)
    for spelling in corpora.SPELLINGS:
        size = 150_000 if args.quick else 2_000_000
        body, events = corpora.image_stream(b64_size=size, spelling=spelling)
        streams.append(("image", f"image {spelling}", body, len(events)))
    text, text_events = corpora.text_stream(deltas=2_000 if args.quick else 20_000)
    streams.append(("text", "text", text, len(text_events)))
    big, _ = corpora.single_event(size=2**20 if args.quick else 8 * 2**20)

    runs: dict[str, Run] = {"ours": run_ours}
    for peer, loaded in (
        ("ours+sink", load_ours_with_sink()),
        ("openai", load_openai()),
        ("httpx-sse", load_httpx_sse()),
    ):
        if loaded is None:
            print(f"{peer}: not installed, skipped")
        else:
            runs[peer] = loaded
    runs["raw"] = run_raw
    print(
        f"Python {platform.python_version()} on {platform.machine()} {platform.system()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    print(
        "versions: "
        + ", ".join(f"{d} {_version(d)}" for d in ("openai", "httpx-sse", "orjson", "pybase64"))
    )
    print(
        f"{rounds} interleaved rounds; wall time; MB = 10^6 bytes; "
        "speed-up = their time / ours, within each round\n"
    )

    timing_rows: list[tuple[str, ...]] = []
    verdicts: list[tuple[str, ...]] = []
    for kind, label, body, expected in streams:
        for size in (16 * KiB, 64 * KiB):
            chunks = corpora.pieces(body, size)
            case = f"{label} {len(body) / 1e6:.1f}MB @{size // KiB}K"
            times = interleaved(
                {name: (run, chunks, expected) for name, run in runs.items()}, rounds, rng
            )
            ours = times["ours"]
            for name, values in times.items():
                median = statistics.median(values)
                speedup = (
                    ("", "")
                    if name == "ours"
                    else _spread([theirs / mine for theirs, mine in zip(values, ours, strict=True)])
                )
                timing_rows.append(
                    (
                        case if name == "ours" else "",
                        name,
                        f"{median * 1e3:.2f}",
                        f"{len(body) / median / 1e6:.0f}",
                        *speedup,
                    )
                )
                goal = TARGETS[kind].get(name)
                if goal is not None:
                    ratios = [theirs / mine for theirs, mine in zip(values, ours, strict=True)]
                    verdicts.append(
                        (
                            case,
                            f"{name} / ours >= {goal:g}x",
                            *_spread(ratios),
                            "PASS" if statistics.median(ratios) >= goal else "MISS",
                        )
                    )
    _print_table(("stream", "decoder", "median ms", "MB/s", "speed-up", "min-max"), timing_rows)
    print()

    times = interleaved(
        {
            "1448": (run_ours, corpora.pieces(big, 1448), 1),
            "64K": (run_ours, corpora.pieces(big, 64 * KiB), 1),
        },
        rounds,
        rng,
    )
    ratios = [a / b for a, b in zip(times["1448"], times["64K"], strict=True)]
    label = f"1 event {len(big) / 1e6:.1f}MB"
    print(
        f"{label}: {statistics.median(times['1448']) * 1e3:.2f} ms in 1448-byte pieces, "
        f"{statistics.median(times['64K']) * 1e3:.2f} ms in 64 KiB pieces\n"
    )
    verdicts.append(
        (
            label,
            "1448 B / 64K time <= 2.5",
            *_spread(ratios, ""),
            "PASS" if statistics.median(ratios) <= 2.5 else "MISS",
        )
    )
    _print_table(("case", "target", "median", "min-max", ""), verdicts)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
