"""Test streams for the msgpack decoder, good and bad, with what each must give.

Every case in ``CASES`` is a complete byte stream plus the expected outcome:
the values decoded, then either a clean end or one typed error at one
offset. Tests that take a ``case`` argument run once per case (see
``pytest_generate_tests``); the split tests feed each case in many pieces and
demand the same outcome.
"""

from __future__ import annotations

import random
import struct
import sys
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import msgpack
import pytest

from imagestream.errors import DecoderLimitError, StreamDecodeError, StreamTruncatedError
from imagestream_msgpack import MsgpackDecoder

JPEG_MAGIC = b"\xff\xd8\xff\xe0"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def frame(payload: bytes) -> bytes:
    """A length-prefixed frame around raw payload bytes."""
    return struct.pack(">I", len(payload)) + payload


def frames(*values: Any) -> bytes:
    return b"".join(frame(pack(v)) for v in values)


def novelai_events(previews: int = 3, preview_bytes: int = 3000, final_bytes: int = 5000,
                   seed: int = 7) -> list[dict[str, Any]]:
    """Events shaped like NovelAI's stream, with seeded random image bytes."""
    rng = random.Random(seed)
    gen_id = f"{rng.getrandbits(64):016x}"
    events: list[dict[str, Any]] = [
        {
            "event_type": "intermediate",
            "samp_ix": 0,
            "step_ix": step,
            "gen_id": gen_id,
            "sigma": 14.6 - step,
            "image": JPEG_MAGIC + rng.randbytes(preview_bytes),
        }
        for step in range(previews)
    ]
    events.append(
        {
            "event_type": "final",
            "samp_ix": 0,
            "step_ix": previews,
            "gen_id": gen_id,
            "sigma": 0.0,
            "image": PNG_MAGIC + rng.randbytes(final_bytes),
        }
    )
    return events


EVERY_TYPE: list[Any] = [
    None, True, False, 0, -1, 127, 128, -33, 2**32, -(2**63), 2**64 - 1, 1.5, -0.25,
    "", "é", "x" * 40, "y" * 300, "z" * 70_000, b"", b"\x00" * 300, [], [1, [2, [3]]],
    {}, {"k": {"n": [None]}}, msgpack.ExtType(5, b"abc"),
]
"""One value of every msgpack family and size class (fix, 8, 16, 32 bits)."""


@dataclass(frozen=True)
class Case:
    """A whole stream and what decoding it must give."""

    name: str
    stream: bytes
    values: list[Any]
    framing: str = "length-prefixed"
    options: dict[str, int] = field(default_factory=dict)
    error: type[StreamDecodeError] | None = None
    offset: int | None = None
    limit: str | None = None

    def decoder(self) -> MsgpackDecoder:
        return MsgpackDecoder(framing=self.framing, **self.options)  # type: ignore[arg-type]


@dataclass
class Outcome:
    """What a decoder gave for a stream: values, then a clean end or an error."""

    values: list[Any]
    error: StreamDecodeError | None

    def summary(self) -> tuple[Any, ...]:
        err = self.error
        if err is None:
            return (self.values, None, None, None)
        return (self.values, type(err), err.offset, getattr(err, "limit", None))


def run(decoder: MsgpackDecoder, pieces: list[Any]) -> Outcome:
    """Feed ``pieces`` then close, collecting values until the first error."""
    values: list[Any] = []
    try:
        for piece in pieces:
            values += decoder.feed(piece)
        values += decoder.close()
    except StreamDecodeError as err:
        return Outcome(values, err)
    return Outcome(values, None)


def split_every(stream: bytes, size: int) -> list[bytes]:
    return [stream[i : i + size] for i in range(0, len(stream), size)]


def _length_prefixed_cases() -> list[Case]:
    nai = novelai_events()
    nai_stream = frames(*nai)
    big = {"event_type": "final", "image": PNG_MAGIC + random.Random(3).randbytes(150_000)}
    one = frames({"a": 1})  # 4 + 4 bytes
    bad_utf8 = b"\x81\xa1s\xa2\xff\xfe"  # {"s": <invalid UTF-8>}
    int_key = b"\x81\x01\x02"  # {1: 2}: strict_map_key refuses it
    deep = b"\x91" * 2000 + b"\xc0"  # [[[...[nil]...]]], nested beyond msgpack's limit
    huge = 2 * 2**20
    image = PNG_MAGIC + bytes(range(256)) * 2  # a bin far larger than max_items=10
    return [
        Case("empty stream", b"", []),
        Case("one frame", one, [{"a": 1}]),
        Case("novelai", nai_stream, nai),
        Case("frame over 64 KiB", frames({"n": 1}, big, {"n": 2}), [{"n": 1}, big, {"n": 2}]),
        Case("every type", frames(*EVERY_TYPE), EVERY_TYPE),
        Case("frame at exactly max_frame_bytes", frame(pack(b"x" * 98)), [b"x" * 98],
             options={"max_frame_bytes": 100}),
        Case("truncated in the length prefix", nai_stream + b"\x00\x00", nai,
             error=StreamTruncatedError, offset=len(nai_stream)),
        Case("truncated after the length prefix", one + struct.pack(">I", 8), [{"a": 1}],
             error=StreamTruncatedError, offset=len(one)),
        Case("truncated in the payload", nai_stream + frame(pack(nai[0]))[:-10], nai,
             error=StreamTruncatedError, offset=len(nai_stream)),
        Case("0xc1 as a whole payload", one + frame(b"\xc1"), [{"a": 1}],
             error=StreamDecodeError, offset=len(one) + 4),
        Case("0xc1 inside a map", one + frame(b"\x82\xa1a\x01\xa1b\xc1"), [{"a": 1}],
             error=StreamDecodeError, offset=len(one) + 4 + 6),
        Case("absurd length prefix", one + b"\xff\xff\xff\xff" + b"\x00" * 100, [{"a": 1}],
             error=DecoderLimitError, offset=len(one), limit="max_frame_bytes"),
        Case("absurd length prefix alone", b"\xff\xff\xff\xff", [],
             error=DecoderLimitError, offset=0, limit="max_frame_bytes"),
        Case("oversized frame", one + frame(pack(b"x" * huge)), [{"a": 1}],
             options={"max_frame_bytes": 2**20},
             error=DecoderLimitError, offset=len(one), limit="max_frame_bytes"),
        Case("frame one byte over max_frame_bytes", frame(pack(b"x" * 99)), [],
             options={"max_frame_bytes": 100},
             error=DecoderLimitError, offset=0, limit="max_frame_bytes"),
        Case("trailing bytes in a frame", one + frame(pack({"b": 2}) + b"\x00\x01"), [{"a": 1}],
             error=StreamDecodeError, offset=len(one) + 4 + len(pack({"b": 2}))),
        Case("too few bytes in a frame", one + frame(pack({"b": "long"})[:-2]) + b"ng",
             [{"a": 1}], error=StreamDecodeError, offset=len(one)),
        Case("empty frame", one + frame(b""), [{"a": 1}],
             error=StreamDecodeError, offset=len(one)),
        Case("invalid UTF-8", one + frame(bad_utf8), [{"a": 1}], error=StreamDecodeError,
             offset=len(one) + 4 + len(bad_utf8) - 1),
        Case("integer map key", one + frame(int_key), [{"a": 1}], error=StreamDecodeError,
             offset=len(one) + 4 + 2),
        Case("nesting too deep", one + frame(deep), [{"a": 1}], error=StreamDecodeError,
             offset=len(one) + 4 + 1024),
        Case("error after values in one chunk", one + one + frame(b"\xc1"), [{"a": 1}] * 2,
             error=StreamDecodeError, offset=2 * len(one) + 4),
        # max_items: what a frame decodes to is bounded, not only its bytes.
        Case("max_items: exactly max_items values", frames([None] * 10), [[None] * 10],
             options={"max_items": 10}),
        Case("max_items: an image is one value", frames(image, image), [image, image],
             options={"max_items": 10}),
        Case("max_items: one value too many", one + frames([None] * 11), [{"a": 1}],
             options={"max_items": 10},
             error=DecoderLimitError, offset=len(one) + 4, limit="max_items"),
        Case("max_items: counted over nested containers", one + frames([[None] * 4] * 3),
             [{"a": 1}], options={"max_items": 10},
             error=DecoderLimitError, offset=len(one) + 4 + 6, limit="max_items"),
        Case("max_items: a map entry is two values", one + frames({str(i): i for i in range(6)}),
             [{"a": 1}], options={"max_items": 10},
             error=DecoderLimitError, offset=len(one) + 4, limit="max_items"),
        Case("max_items: after a large bin", one + frames({"image": b"x" * 100, "l": [0] * 20}),
             [{"a": 1}], options={"max_items": 10},
             error=DecoderLimitError, offset=len(one) + 4 + 1 + 6 + 2 + 100 + 2,
             limit="max_items"),
        Case("max_items: a huge array header, refused before the frame is complete",
             one + struct.pack(">I", 60_000_005) + b"\xdd\x03\x93\x87\x00" + b"\xc0" * 500,
             [{"a": 1}], error=DecoderLimitError, offset=len(one) + 4, limit="max_items"),
        Case("max_items: a huge array header in a truncated frame",
             one + struct.pack(">I", 60_000_005) + b"\xdd\x03\x93\x87\x00",
             [{"a": 1}], error=DecoderLimitError, offset=len(one) + 4, limit="max_items"),
        Case("max_items: too many values in a truncated frame",
             one + struct.pack(">I", 2000) + pack([[None] * 5] * 3)[:-1],
             [{"a": 1}], options={"max_items": 10},
             error=DecoderLimitError, offset=len(one) + 4 + 7, limit="max_items"),
        Case("max_items: a truncated frame within the limit",
             one + struct.pack(">I", 2000) + pack([[None] * 5] * 3)[:7],
             [{"a": 1}], options={"max_items": 10},
             error=StreamTruncatedError, offset=len(one)),
    ]


def _plain_cases() -> list[Case]:
    nai = novelai_events()
    nai_stream = b"".join(pack(v) for v in nai)
    two = pack({"a": 1}) + pack([1, 2])
    big = b"y" * 150_000
    small = [{"i": i} for i in range(500)]
    small_stream = b"".join(pack(v) for v in small)
    image = PNG_MAGIC + bytes(range(256)) * 2  # a bin far larger than max_items=10
    return [
        Case("plain: empty stream", b"", [], framing="plain"),
        Case("plain: novelai", nai_stream, nai, framing="plain"),
        Case("plain: every type", b"".join(pack(v) for v in EVERY_TYPE), EVERY_TYPE,
             framing="plain"),
        Case("plain: object over 64 KiB", two + pack(big) + two,
             [{"a": 1}, [1, 2], big, {"a": 1}, [1, 2]], framing="plain"),
        Case("plain: many small objects under a small limit", small_stream, small,
             framing="plain", options={"max_buffer_bytes": 16}),
        Case("plain: object of exactly max_buffer_bytes", pack(b"x" * 98) * 2, [b"x" * 98] * 2,
             framing="plain", options={"max_buffer_bytes": 100}),
        Case("plain: garbage between objects", two + b"\xc1" + two, [{"a": 1}, [1, 2]],
             framing="plain", error=StreamDecodeError, offset=len(two)),
        Case("plain: garbage inside an object", two + b"\x93\x01\x02\xc1", [{"a": 1}, [1, 2]],
             framing="plain", error=StreamDecodeError, offset=len(two) + 3),
        Case("plain: truncated object", two + pack(big)[:-1], [{"a": 1}, [1, 2]],
             framing="plain", error=StreamTruncatedError, offset=len(two)),
        Case("plain: truncated header", two + b"\xc5\x01", [{"a": 1}, [1, 2]],
             framing="plain", error=StreamTruncatedError, offset=len(two)),
        Case("plain: object one byte over max_buffer_bytes", two + pack(b"x" * 99),
             [{"a": 1}, [1, 2]], framing="plain", options={"max_buffer_bytes": 100},
             error=DecoderLimitError, offset=len(two), limit="max_buffer_bytes"),
        Case("plain: an object that never completes", two + b"\xc6\x7f\xff\xff\xff" + b"z" * 5000,
             [{"a": 1}, [1, 2]], framing="plain", options={"max_buffer_bytes": 4096},
             error=DecoderLimitError, offset=len(two), limit="max_buffer_bytes"),
        Case("plain: invalid UTF-8", two + b"\xa2\xff\xfe", [{"a": 1}, [1, 2]],
             framing="plain", error=StreamDecodeError, offset=len(two) + 2),
        Case("plain: exactly max_items values", pack([None] * 10) * 2, [[None] * 10] * 2,
             framing="plain", options={"max_items": 10}),
        Case("plain: an image is one value", two + pack(image), [{"a": 1}, [1, 2], image],
             framing="plain", options={"max_items": 10}),
        Case("plain: an array over max_items", two + pack([None] * 11), [{"a": 1}, [1, 2]],
             framing="plain", options={"max_items": 10},
             error=DecoderLimitError, offset=len(two), limit="max_items"),
        Case("plain: a map over max_items", two + pack({str(i): i for i in range(6)}),
             [{"a": 1}, [1, 2]], framing="plain", options={"max_items": 10},
             error=DecoderLimitError, offset=len(two), limit="max_items"),
        Case("plain: counted over nested containers", two + pack([[None] * 4] * 3) + two,
             [{"a": 1}, [1, 2]], framing="plain", options={"max_items": 10},
             error=DecoderLimitError, offset=len(two), limit="max_items"),
        Case("plain: counted over open containers", two + pack([None] * 5 + [[None] * 5 + [0]]),
             [{"a": 1}, [1, 2]], framing="plain", options={"max_items": 10},
             error=DecoderLimitError, offset=len(two), limit="max_items"),
        Case("plain: a large object of few values", two + pack({"image": image, "n": [1, 2]}) + two,
             [{"a": 1}, [1, 2], {"image": image, "n": [1, 2]}, {"a": 1}, [1, 2]],
             framing="plain", options={"max_items": 10}),
        Case("plain: a small truncated object announcing many", two + b"\x92\x99\xc0",
             [{"a": 1}, [1, 2]], framing="plain", options={"max_items": 10},
             error=StreamTruncatedError, offset=len(two)),
        Case("plain: garbage inside a large object", two + pack([b"x" * 50, None])[:-1] + b"\xc1",
             [{"a": 1}, [1, 2]], framing="plain", options={"max_items": 10},
             error=StreamDecodeError, offset=len(two) + 1 + 2 + 50),
        Case("plain: a huge array header", two + b"\xdd\x03\x93\x87\x00" + b"\xc0" * 64,
             [{"a": 1}, [1, 2]], framing="plain",
             error=DecoderLimitError, offset=len(two), limit="max_items"),
    ]


CASES: list[Case] = _length_prefixed_cases() + _plain_cases()


@pytest.fixture(scope="module")
def kit() -> ModuleType:
    """This module, for its helpers.

    Test modules cannot import a conftest under ``--import-mode=importlib``;
    they take this fixture instead and call ``kit.frames(...)``, ``kit.run(...)``.
    """
    return sys.modules[__name__]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" in metafunc.fixturenames:
        metafunc.parametrize("case", CASES, ids=[c.name for c in CASES])
