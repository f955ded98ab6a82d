"""Throughput of the ``sse`` decoder plugin against other Python SSE decoders.

Run ``python bench/bench_sse.py`` (``--quick`` for a fast smoke run). The
script builds seeded corpora (``_corpora_sse.py``), times each decoder on the
same pieces in one process, and prints the median of the repeated runs as
MB/s, the speed-up of ``imagestream_sse`` over each peer, and a table of
targets with PASS / MISS. It always exits 0: it is a report, not a test.

Peers, each driven the way its own streaming API drives it:

* ``openai``: ``openai._streaming.SSEDecoder().iter_bytes`` over an iterator
  of the pieces (what ``Stream`` does with a response body).
* ``httpx-sse``: its ``SSELineDecoder`` and ``SSEDecoder`` fed with text from
  an incremental UTF-8 decoder, line by line, as ``EventSource.iter_sse``
  does over ``response.iter_text()``.
* ``raw``: ``b"".join(pieces).split(b"\\n\\n")``, a floor that only finds
  event boundaries and decodes nothing.

openai and httpx-sse are optional: a peer that cannot be imported is
reported as skipped.
"""

from __future__ import annotations

import argparse
import codecs
import gc
import importlib
import importlib.metadata
import importlib.util
import platform
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


def interleaved_medians(
    runs: dict[str, tuple[Run, list[bytes]]], repeats: int, expected: int
) -> dict[str, float]:
    """Median seconds of each run on its pieces, over ``repeats`` rounds.

    Each round runs every decoder once, so that a burst of load from other
    processes on a shared machine slows all of them alike instead of
    skewing one decoder's median.
    """
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, (run, chunks) in runs.items():
            gc.collect()
            start = time.perf_counter()
            count = run(chunks)
            times[name].append(time.perf_counter() - start)
            if count != expected:
                raise SystemExit(f"{name}: {count} events, expected {expected}")
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small corpora, few repeats")
    parser.add_argument("--repeats", type=int, default=None, help="runs per measurement")
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 15)

    if args.quick:
        image, image_events = corpora.image_stream(b64_size=150_000)
        text, text_events = corpora.text_stream(deltas=2_000)
        big, _ = corpora.single_event(size=2**20)
    else:
        image, image_events = corpora.image_stream()
        text, text_events = corpora.text_stream()
        big, _ = corpora.single_event()

    runs: dict[str, Run] = {"ours": run_ours}
    for peer, loaded in (("openai", load_openai()), ("httpx-sse", load_httpx_sse())):
        if loaded is None:
            print(f"{peer}: not installed, skipped")
        else:
            runs[peer] = loaded
    runs["raw"] = run_raw
    print(f"Python {platform.python_version()} on {platform.machine()} {platform.system()}")
    print("versions: " + ", ".join(f"{d} {_version(d)}" for d in ("openai", "httpx-sse")))
    print(f"median of {repeats} interleaved runs; MB = 10^6 bytes; speed-up = their time / ours\n")

    targets = {
        "image": {"openai": 10.0, "httpx-sse": 2.0, "raw": 1.0},
        "text": {"openai": 3.0, "httpx-sse": 1.5},
    }
    verdicts: list[tuple[str, str, str, str]] = []
    header = f"{'stream':<20}{'decoder':<12}{'median ms':>11}{'MB/s':>9}{'speed-up':>10}"
    print(header)
    print("-" * len(header))
    for name, stream, expected, size in (
        ("image", image, len(image_events), 16 * KiB),
        ("image", image, len(image_events), 64 * KiB),
        ("text", text, len(text_events), 16 * KiB),
        ("text", text, len(text_events), 64 * KiB),
    ):
        chunks = corpora.pieces(stream, size)
        label = f"{name} {len(stream) / 1e6:.1f}MB @{size // KiB}K"
        medians = interleaved_medians(
            {decoder: (run, chunks) for decoder, run in runs.items()}, repeats, expected
        )
        ours = medians["ours"]
        for decoder, seconds in medians.items():
            first = label if decoder == "ours" else ""
            mbs = len(stream) / seconds / 1e6
            speedup = "" if decoder == "ours" else f"{seconds / ours:.1f}x"
            print(f"{first:<20}{decoder:<12}{seconds * 1e3:>11.2f}{mbs:>9.0f}{speedup:>10}")
            goal = targets[name].get(decoder)
            if goal is not None:
                ratio = seconds / ours
                verdict = "PASS" if ratio >= goal else "MISS"
                verdicts.append((label, f"vs {decoder} >= {goal:g}x", f"{ratio:.2f}x", verdict))
        print()

    medians = interleaved_medians(
        {
            "1448": (run_ours, corpora.pieces(big, 1448)),
            "64K": (run_ours, corpora.pieces(big, 64 * KiB)),
        },
        repeats,
        1,
    )
    ratio = medians["1448"] / medians["64K"]
    label = f"1 event {len(big) / 1e6:.1f}MB"
    print(
        f"{label}: {medians['1448'] * 1e3:.2f} ms in 1448-byte pieces, "
        f"{medians['64K'] * 1e3:.2f} ms in 64 KiB pieces"
    )
    verdicts.append(
        (label, "1448 B / 64K time <= 2.5", f"{ratio:.2f}", "PASS" if ratio <= 2.5 else "MISS")
    )

    print()
    widths = (20, 26, 10, 6)
    print(
        "".join(
            f"{h:<{w}}" for h, w in zip(("case", "target", "measured", ""), widths, strict=True)
        )
    )
    print("-" * sum(widths))
    for row in verdicts:
        print("".join(f"{cell:<{w}}" for cell, w in zip(row, widths, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
