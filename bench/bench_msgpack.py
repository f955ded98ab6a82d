"""Benchmark of the msgpack stream decoder (plugin ``imagestream-msgpack``).

Run ``python bench/bench_msgpack.py`` (``--quick`` for a fast smoke run).

The stream has the shape of a NovelAI ``/ai/generate-image-stream`` answer:
28 "intermediate" frames with a JPEG preview of about 200 KB each, then one
"final" frame with a 1.5 MB PNG. Image bytes are random but seeded, behind
the real magic numbers, so every run decodes the same bytes.

Each variant is fed the stream cut into 16 KiB and into 64 KiB pieces (cut
before timing starts, as a network library would hand them over):

ours, length-prefixed
    ``MsgpackDecoder()`` on the length-prefixed stream: what the NovelAI
    provider runs.
ideal: unpackb per frame
    ``msgpack.unpackb`` once per frame on one contiguous buffer whose frame
    offsets are already known: no chunking, no framing work, no copy to
    assemble a frame. Nothing that receives the stream in pieces can beat it;
    the target is ours within 1.5 times its time.
msgpack.Unpacker (plain)
    ``msgpack.Unpacker`` fed the same-sized pieces of the *payload-only*
    stream (the same msgpack maps back to back, without length prefixes,
    which Unpacker cannot read). This is the library's own streaming decoder.
ours plain
    ``MsgpackDecoder(framing="plain")`` on that payload-only stream: what our
    plain framing adds on top of Unpacker (truncation check, limit, offsets).

Timing: every variant decodes the whole stream once per round and keeps the
decoded values, as a caller would; the order of the variants rotates from
round to round; the median of each is reported as MB/s (10**6 bytes per
second of the length-prefixed stream) and as ratios of medians. Times are
process CPU time, which on a shared machine is steadier than wall time and
still includes page faults.

The heap matters more than anything else here: each run produces 7 MB of
image ``bytes``, and whether that memory is still mapped from the previous
run or must be faulted in again from the kernel changes every variant's time
several-fold. glibc's default trims the heap now and then, so a variant's
time would depend on which variant ran before it. ``--heap`` makes it
deterministic (glibc only; elsewhere the default heap is used and said so):

cold (default)
    ``malloc_trim(0)`` before every run: each run starts from a heap that
    gave its free memory back, so it pays for every page it touches, like a
    process decoding a fresh stream.
warm
    glibc never trims (``mallopt``): runs reuse mapped memory, and what is
    left is the decoders' CPU work alone (copies and Python overhead).
default
    glibc untouched.

The script always exits 0.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import platform
import random
import statistics
import struct
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgpack  # type: ignore[import-untyped]

from imagestream_msgpack import MsgpackDecoder

JPEG_MAGIC = b"\xff\xd8\xff\xe0"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SEED = 1729
PIECE_SIZES = (16 * 1024, 64 * 1024)
TARGET_VS_IDEAL = 1.5
TARGET_PLAIN_VS_UNPACKER = 1.5


def build_payloads(
    previews: int = 28, preview_bytes: int = 200_000, final_bytes: int = 1_500_000
) -> list[bytes]:
    """The msgpack maps of one generation, in order, deterministically."""
    rng = random.Random(SEED)
    gen_id = f"{rng.getrandbits(64):016x}"
    payloads = []
    for step in range(previews):
        size = preview_bytes + rng.randrange(-20_000, 20_001)
        event = {
            "event_type": "intermediate",
            "samp_ix": 0,
            "step_ix": step,
            "gen_id": gen_id,
            "sigma": 14.6 * (1 - step / previews) + 0.03,
            "image": JPEG_MAGIC + rng.randbytes(size - len(JPEG_MAGIC)),
        }
        payloads.append(msgpack.packb(event))
    final = {
        "event_type": "final",
        "samp_ix": 0,
        "step_ix": previews,
        "gen_id": gen_id,
        "sigma": 0.0,
        "image": PNG_MAGIC + rng.randbytes(final_bytes - len(PNG_MAGIC)),
    }
    payloads.append(msgpack.packb(final))
    return payloads


def length_prefixed(payloads: Sequence[bytes]) -> bytes:
    return b"".join(struct.pack(">I", len(p)) + p for p in payloads)


def frame_spans(payloads: Sequence[bytes]) -> list[tuple[int, int]]:
    """Where each payload lies in the length-prefixed stream."""
    spans, pos = [], 0
    for payload in payloads:
        spans.append((pos + 4, pos + 4 + len(payload)))
        pos += 4 + len(payload)
    return spans


def cut(stream: bytes, size: int) -> list[bytes]:
    return [stream[i : i + size] for i in range(0, len(stream), size)]


def run_ours(pieces: Sequence[bytes], framing: str) -> list[Any]:
    decoder = MsgpackDecoder(framing=framing)  # type: ignore[arg-type]
    out: list[Any] = []
    for piece in pieces:
        out += decoder.feed(piece)
    out += decoder.close()
    return out


def run_unpacker(pieces: Sequence[bytes]) -> list[Any]:
    unpacker = msgpack.Unpacker(raw=False, max_buffer_size=64 * 2**20)
    out: list[Any] = []
    for piece in pieces:
        unpacker.feed(piece)
        out.extend(unpacker)
    return out


def run_ideal(stream: bytes, spans: Sequence[tuple[int, int]]) -> list[Any]:
    view = memoryview(stream)
    unpackb = msgpack.unpackb
    return [unpackb(view[start:stop], raw=False) for start, stop in spans]


def glibc() -> Any:
    """glibc's handle, or None elsewhere."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


def prepare_heap(mode: str) -> tuple[str, Callable[[], object]]:
    """Set the heap up for ``mode``; return its description and a per-run reset."""
    libc = glibc() if mode != "default" else None
    if libc is None:
        return ("glibc default" if mode == "default" else "default (not glibc)"), lambda: None
    if mode == "warm":
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 32 * 2**20)
        libc.mallopt(m_trim_threshold, 2**30)
        return "warm (glibc never trims)", lambda: None
    return "cold (malloc_trim(0) before each run)", lambda: libc.malloc_trim(0)


def measure(
    variants: dict[str, Callable[[], object]], rounds: int, reset: Callable[[], object]
) -> dict[str, float]:
    """Median CPU seconds of each variant, in an order that rotates every round."""
    names = list(variants)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            reset()
            start = time.process_time()
            result = variants[name]()
            times[name].append(time.process_time() - start)
            del result  # freed before the next reset, outside the timing
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds: a smoke run")
    parser.add_argument("--rounds", type=int, help="rounds per variant (default 41)")
    parser.add_argument(
        "--heap", choices=["cold", "warm", "default"], default="cold", help="see the docstring"
    )
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 41)
    heap, reset = prepare_heap(args.heap)

    payloads = build_payloads()
    stream = length_prefixed(payloads)
    plain = b"".join(payloads)
    spans = frame_spans(payloads)
    megabytes = len(stream) / 1e6
    # Every input is cut before anything is timed and stays alive to the end.
    lp_pieces = {size: cut(stream, size) for size in PIECE_SIZES}
    plain_pieces = {size: cut(plain, size) for size in PIECE_SIZES}

    # The variants must agree before their speed means anything.
    expected = run_ideal(stream, spans)
    assert [e["step_ix"] for e in expected] == list(range(len(payloads)))
    for size in PIECE_SIZES:
        assert run_ours(lp_pieces[size], "length-prefixed") == expected
        assert run_ours(plain_pieces[size], "plain") == expected
        assert run_unpacker(plain_pieces[size]) == expected
    del expected

    variants: dict[str, Callable[[], object]] = {"ideal": lambda: run_ideal(stream, spans)}
    for size in PIECE_SIZES:
        lp, pl = lp_pieces[size], plain_pieces[size]
        variants[f"ours {size}"] = lambda lp=lp: run_ours(lp, "length-prefixed")  # type: ignore[misc]
        variants[f"unpacker {size}"] = lambda pl=pl: run_unpacker(pl)  # type: ignore[misc]
        variants[f"plain {size}"] = lambda pl=pl: run_ours(pl, "plain")  # type: ignore[misc]
    medians = measure(variants, rounds, reset)
    rate = {name: megabytes / seconds for name, seconds in medians.items()}

    print(
        f"msgpack stream decoder: {len(payloads)} frames, {len(stream):,} bytes; "
        f"median of {rounds} rounds; Python {platform.python_version()}, "
        f"msgpack {'.'.join(map(str, msgpack.version))}, {platform.machine()} "
        f"{platform.system()}; heap: {heap}"
    )
    print()
    print(
        "| pieces | ours length-prefixed | ideal: unpackb per frame | ours / ideal "
        "| msgpack.Unpacker (plain) | ours plain | ours plain / Unpacker |"
    )
    print("|---|---|---|---|---|---|---|")
    verdicts = []
    for size in PIECE_SIZES:
        ours, unpacker, ours_plain = (f"{v} {size}" for v in ("ours", "unpacker", "plain"))
        vs_ideal = medians[ours] / medians["ideal"]
        vs_unpacker = medians[ours_plain] / medians[unpacker]
        print(
            f"| {size // 1024} KiB | {rate[ours]:,.0f} MB/s | {rate['ideal']:,.0f} MB/s "
            f"| {vs_ideal:.2f} | {rate[unpacker]:,.0f} MB/s | {rate[ours_plain]:,.0f} MB/s "
            f"| {vs_unpacker:.2f} |"
        )
        label = f"{size // 1024} KiB pieces"
        verdicts.append((f"{label}: ours length-prefixed / ideal", vs_ideal, TARGET_VS_IDEAL))
        verdicts.append(
            (f"{label}: ours plain / msgpack.Unpacker", vs_unpacker, TARGET_PLAIN_VS_UNPACKER)
        )
    print()
    print("| target | measured | limit | result |")
    print("|---|---|---|---|")
    for label, value, limit in verdicts:
        print(f"| {label} | {value:.2f} | <= {limit} | {'PASS' if value <= limit else 'MISS'} |")
    if args.quick:
        print("\n(--quick: too few rounds for the numbers to mean much)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
