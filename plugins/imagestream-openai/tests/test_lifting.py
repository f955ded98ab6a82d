"""Images read out of the stream as it arrives give the same chunks as parsing each event whole.

The provider hands every long ``data`` line to an :class:`ImageLifter` (the
SSE decoder's data sink) and parses the rest of the JSON with the images put
back as pieces of the stream. Each test here decodes the same body two ways,
that way and the plain way (the decoder buffers and decodes each event,
``loads`` parses it, images are base64 strings), cut into pieces anywhere,
and checks that the same chunks come out, or the same error: for the
recordings with real-size images, in compact JSON and with a space after each
colon, in other key orders, and for strings that only look like image fields.
"""

from __future__ import annotations

import base64
import json
import random
import re
import struct
import zlib
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import attrs
import pytest
from _openai_server import OpenAIServer, Script
from _support import kinds
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import imagestream
from imagestream import ImageFinal, ImagePreview
from imagestream.errors import ImagestreamError, ImageValidationError, StreamDecodeError
from imagestream_openai._events import ImagesEvents, ResponsesEvents
from imagestream_openai._json import ImageLifter, LiftedBase64, loads, loads_body
from imagestream_sse import SSEDecoder


@pytest.fixture(autouse=True, params=["decoded as it arrives", "kept, decoded when used"])
def base64_receivers(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test twice: with pybase64 receivers decode as pieces arrive, without they keep them."""
    if request.param.startswith("kept"):
        monkeypatch.setattr("imagestream._base64._pybase64", None)
    else:
        pytest.importorskip("pybase64")


def noisy_png(b64_chars: int, seed: int) -> bytes:
    """A valid PNG of random pixels whose base64 is about ``b64_chars`` long."""
    rng = random.Random(seed)
    width = max(8, int((b64_chars * 3 // 4 / 3) ** 0.5))
    height = max(8, b64_chars * 3 // 4 // (3 * width + 1))
    rows = b"".join(b"\x00" + rng.randbytes(3 * width) for _ in range(height))

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows, 0))
        + chunk(b"IEND", b"")
    )


def b64_png(b64_chars: int, seed: int) -> str:
    return base64.b64encode(noisy_png(b64_chars, seed)).decode("ascii")


# -- the two ways -----------------------------------------------------------------

Machine = Callable[[], Any]
MACHINES: dict[str, Machine] = {
    "images": lambda: ImagesEvents(1),
    "images-n2": lambda: ImagesEvents(2),
    "responses": lambda: ResponsesEvents("gpt-image-1", "gpt-5"),
}


def _image_view(image: Any) -> tuple[Any, ...]:
    try:
        data: Any = image.data
    except ImageValidationError as exc:
        data = ("error", str(exc))
    return (data, image.declared_mime_type, image.nbytes, image.head(16), image.tail(16))


def _view(chunk: Any) -> Any:
    """A chunk as comparable values (an image's bytes, or its error, in place of the image)."""
    if isinstance(chunk, ImagePreview | ImageFinal):
        fields = {f.name: getattr(chunk, f.name) for f in attrs.fields(type(chunk))}
        fields["image"] = _image_view(chunk.image)
        return (type(chunk).__name__, fields)
    return chunk


LIFTED: list[int] = []  # how many images each lifted decoding lifted


def decode(
    pieces: list[bytes], machine: Machine, *, lifted: bool, threshold: int = 1024
) -> list[Any]:
    """The chunks (as :func:`_view`) of a body, then ``"end"``, or the error it raised."""
    lifter = ImageLifter()
    if lifted:
        LIFTED.append(0)
    decoder = (
        SSEDecoder(data_sink=lifter, data_sink_min_bytes=threshold) if lifted else SSEDecoder()
    )
    parse = lifter.loads if lifted else loads
    events_to_chunks = machine()
    out: list[Any] = []
    try:
        for piece in pieces:
            for event in decoder.feed(piece):
                if event.data.startswith("[DONE]"):
                    break
                try:
                    payload = parse(event.data)
                except ValueError as exc:
                    out.append(("not json", type(exc).__name__, str(exc)))
                    continue
                out += map(_view, events_to_chunks.handle(payload, event.event))
        decoder.close()
        events_to_chunks.finish()
        out.append("end")
    except ImagestreamError as exc:
        out.append(("error", type(exc).__name__, str(exc)))
    if lifted:
        LIFTED[-1] = lifter._count
    return out


def cut(body: bytes, rng: random.Random, count: int) -> list[bytes]:
    points = sorted({rng.randrange(len(body) + 1) for _ in range(count)} | {0, len(body)})
    return [body[a:b] for a, b in pairwise(points)]


def check_same(body: bytes, machine: Machine, seed: int = 0) -> list[Any]:
    """Both ways agree on ``body`` whole, in 64 KiB pieces and in random pieces."""
    rng = random.Random(seed)
    LIFTED.clear()
    expected = decode([body], machine, lifted=False)
    cuts = [
        [body],
        [body[i : i + 65536] for i in range(0, len(body), 65536)],
        cut(body, rng, 40),
        cut(body, rng, 400),
    ]
    for pieces in cuts:
        for threshold in (16, 1024, 16384):
            assert decode(pieces, machine, lifted=True, threshold=threshold) == expected
    return expected


def frame(events: list[tuple[str, str]]) -> bytes:
    return "".join(f"event: {name}\ndata: {data}\n\n" for name, data in events).encode()


def spellings(payload: Any) -> dict[str, str]:
    """The payload as OpenAI writes it (compact, UTF-8 as it is) and as proxies rewrite it."""
    return {
        "compact": json.dumps(payload, separators=(",", ":"), ensure_ascii=False),
        "spaced": json.dumps(payload),  # and every character outside ASCII escaped
        "reordered": json.dumps(dict(reversed(list(payload.items()))), ensure_ascii=False),
        "tabs": json.dumps(payload, separators=(",\t", " :\t"), ensure_ascii=False),
    }


# -- streams ------------------------------------------------------------------------


def images_stream(spelling: str, size: int = 40_000) -> bytes:
    events = []
    for index in range(2):
        payload = {
            "type": "image_generation.partial_image",
            "b64_json": b64_png(size, index),
            "output_format": "png",
            "partial_image_index": index,
            "size": "1024x1024",
        }
        events.append((payload["type"], spellings(payload)[spelling]))
    final = {
        "type": "image_generation.completed",
        "b64_json": b64_png(size, 9),
        "output_format": "png",
        "revised_prompt": "a lighthouse, “at dusk”",
        "usage": {"input_tokens": 5, "output_tokens": 6, "total_tokens": 11},
    }
    events.append((final["type"], spellings(final)[spelling]))
    return frame(events)


@pytest.mark.parametrize("spelling", ["compact", "spaced", "reordered", "tabs"])
def test_images_api_stream_in_every_spelling(spelling: str) -> None:
    expected = check_same(images_stream(spelling), MACHINES["images"])
    assert min(LIFTED) == 3  # every image, every way it was cut
    names = [row[0] if isinstance(row, tuple) else type(row).__name__ for row in expected]
    assert names == ["ImagePreview", "ImagePreview", "ImageFinal", "Usage", "str"]


@pytest.mark.parametrize("spelling", ["compact", "spaced"])
def test_lifted_images_are_pieces_of_the_stream_decoded_once(spelling: str) -> None:
    # Compact keeps the revised prompt's curly quotes as UTF-8 next to the image.
    body = images_stream(spelling, size=200_000)
    assert (b"\xe2\x80\x9c" in body) is (spelling == "compact")
    lifter = ImageLifter()
    decoder = SSEDecoder(data_sink=lifter)
    machine = ImagesEvents(1)
    chunks = []
    for i in range(0, len(body), 65536):
        for event in decoder.feed(body[i : i + 65536]):
            payload = lifter.loads(event.data)
            if "b64_json" in payload:
                assert isinstance(payload["b64_json"], LiftedBase64)
                # The event's own text is small: the image is not in it.
                assert len(event.data) < 1000
            chunks += machine.handle(payload, event.event)
    final = chunks[2]
    assert isinstance(final, ImageFinal) and final.image.arrived_as_base64
    assert final.image.data == noisy_png(200_000, 9)
    assert lifter._lifted == {}  # every lifted image went to its event


# -- the recordings, with real-size images --------------------------------------------

_IMAGE_FIELD = re.compile(r'"(partial_image_b64|result|b64_json)":(\s*)"([A-Za-z0-9+/=.]*)"')


def _big_images(line: str) -> str:
    counter = iter(range(100))
    return _IMAGE_FIELD.sub(
        lambda m: f'"{m[1]}":{m[2]}"{b64_png(30_000 + 999 * next(counter), len(m[3]))}"', line
    )


def _recording_bodies(recordings: Path) -> dict[str, bytes]:
    bodies = {}
    for path in sorted(recordings.glob("*.chunks.txt")):
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        for spelling in ("compact", "spaced", "reordered"):
            events = []
            for line in lines:
                payload = json.loads(_big_images(line))
                events.append((payload["type"], spellings(payload)[spelling]))
            bodies[f"{path.name}-{spelling}"] = frame(events)
    return bodies


def test_every_recording_in_every_spelling(recordings: Path) -> None:
    bodies = _recording_bodies(recordings)
    assert len(bodies) >= 9
    for name, body in bodies.items():
        for machine in MACHINES.values():
            expected = check_same(body, machine, seed=len(name))
            assert expected, name
            if "error" not in name:
                assert min(LIFTED) > 0, name


# -- strings that only look like image fields, and other strange payloads -------------

BIG = b64_png(20_000, 3)
TRICKY: dict[str, Any] = {
    "image key inside a string": {
        "type": "image_generation.completed",
        "revised_prompt": f'"b64_json":"{BIG}"',
        "b64_json": b64_png(20_000, 4),
    },
    "image key as a value": {
        "type": "image_generation.completed",
        "note": "b64_json",
        "other": ["result", BIG],
        "b64_json": BIG,
    },
    "escaped slash": {"type": "image_generation.completed", "b64_json": BIG},  # see below
    "url-safe, unpadded": {
        "type": "image_generation.completed",
        "b64_json": BIG.replace("+", "-").replace("/", "_").rstrip("="),
    },
    "data url": {"type": "image_generation.completed", "b64_json": "data:image/png;base64," + BIG},
    "not base64": {"type": "image_generation.completed", "b64_json": BIG[:5000] + " " + BIG},
    "short image": {"type": "image_generation.completed", "b64_json": BIG[:1000]},
    "result of another item": {
        "type": "response.output_item.done",
        "item": {"type": "function_call", "result": BIG},
    },
    "image in an error": {"type": "error", "error": {"message": "no", "result": BIG}},
    "placeholder look-alike": {
        "type": "image_generation.completed",
        "b64_json": BIG,
        "x": "\u0000imagestream-image-0",
    },
    "non-ascii next to the image": {
        "type": "image_generation.completed",
        "revised_prompt": "灯台 🌊",
        "b64_json": BIG,
    },
    "two images": {
        "type": "response.completed",
        "response": {
            "output": [
                {"type": "image_generation_call", "id": "a", "result": BIG},
                {"type": "image_generation_call", "id": "b", "result": b64_png(20_000, 5)},
            ]
        },
    },
}


@pytest.mark.parametrize("name", sorted(TRICKY))
@pytest.mark.parametrize("spelling", ["compact", "spaced", "tabs"])
def test_strange_payloads_parse_as_the_plain_way(name: str, spelling: str) -> None:
    text = spellings(TRICKY[name])[spelling]
    if name == "escaped slash":
        text = text.replace("/", "\\/")
    if name == "placeholder look-alike":
        text = text.replace("\\u0000imagestream-image-0", "\\u0000" + "0" * 16 + "-0")
    body = frame([(TRICKY[name]["type"], text)])
    for machine in MACHINES.values():
        check_same(body, machine)


@pytest.mark.parametrize(
    "text",
    [
        '{"type":"image_generation.completed","b64_json":"' + BIG,  # the string never ends
        '{"type":"image_generation.completed","b64_json":"' + BIG + '",}',  # a stray comma
        '{"type":"image_generation.completed","b64_json":"' + BIG + '"',  # no closing brace
        '{"type":"image_generation.completed","b64_json":"' + BIG + '","b64_json":"AAAA"}',
        '{"type":"image_generation.completed","b64_json" : "' + BIG + '"} trailing',
        '["b64_json", "' + BIG + '"]',
    ],
)
def test_broken_json_fails_as_the_plain_way(text: str) -> None:
    body = frame([("image_generation.completed", text)])
    for machine in MACHINES.values():
        check_same(body, machine)


def test_duplicate_image_keys_keep_the_last() -> None:
    lifter = ImageLifter()
    decoder = SSEDecoder(data_sink=lifter)
    text = '{"b64_json":"' + BIG + '","b64_json":"' + b64_png(20_000, 8) + '"}'
    (event,) = decoder.feed(frame([("x", text)]))
    payload = lifter.loads(event.data)
    value = payload["b64_json"]
    assert (value if isinstance(value, str) else value.text()) == b64_png(20_000, 8)


# -- any JSON, as the property tests build it --------------------------------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.text(max_size=8)
    | st.sampled_from(["b64_json", "result", '"b64_json":"', "\\", BIG[:100], "é"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["b64_json", "partial_image_b64", "result", "type", "a"])
            | st.text(max_size=4),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


def _plain(node: Any) -> Any:
    """``node`` with every lifted image turned back into its text."""
    if isinstance(node, LiftedBase64):
        return node.text()
    if isinstance(node, dict):
        return {key: _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(value) for value in node]
    return node


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    value=JSON,
    images=st.lists(st.sampled_from([BIG, BIG[:4096], BIG[:5001], "AB/+" * 2000]), max_size=3),
    separators=st.sampled_from([(",", ":"), (", ", ": "), (",", " :  ")]),
    cuts=st.lists(st.integers(0, 60_000), max_size=10),
    threshold=st.sampled_from([8, 200, 4096]),
)
def test_any_json_parses_as_loads_does(
    value: Any,
    images: list[str],
    separators: tuple[str, str],
    cuts: list[int],
    threshold: int,
) -> None:
    if isinstance(value, dict):
        for index, image in enumerate(images):
            value[("b64_json", "result", "partial_image_b64")[index]] = image
    else:
        value = {"type": "x", "items": [value, *({"result": image} for image in images)]}
    text = json.dumps(value, separators=separators)
    body = b"data: " + text.encode() + b"\n\n"
    points = sorted({min(c, len(body)) for c in cuts} | {0, len(body)})
    pieces = [body[a:b] for a, b in pairwise(points)]
    lifter = ImageLifter()
    decoder = SSEDecoder(data_sink=lifter, data_sink_min_bytes=threshold)
    events = [event for piece in pieces for event in decoder.feed(piece)]
    assert len(events) == 1
    assert _plain(lifter.loads(events[0].data)) == loads(text)
    assert lifter._lifted == {}


# -- whole bodies and the provider end to end ------------------------------------------


@pytest.mark.parametrize("spelling", ["compact", "spaced"])
def test_whole_bodies_lift_their_images(spelling: str) -> None:
    body = {"created": 1, "data": [{"b64_json": BIG}, {"b64_json": b64_png(20_000, 6)}]}
    text = json.dumps(body) if spelling == "spaced" else json.dumps(body, separators=(",", ":"))
    parsed = loads_body(text.encode())
    assert [type(item["b64_json"]) for item in parsed["data"]] == [LiftedBase64, LiftedBase64]
    assert _plain(parsed) == body
    with pytest.raises(ValueError):  # noqa: PT011 - the parser's own error
        loads_body(text[:-1].encode())


@pytest.mark.parametrize("spelling", ["compact", "spaced"])
async def test_the_provider_streams_large_images_in_both_spellings(
    server: OpenAIServer, spelling: str
) -> None:
    body = images_stream(spelling, size=300_000)
    server.script(Script(raw=body))
    chunks = imagestream.stream(
        "a lighthouse",
        provider="openai",
        model="gpt-image-1",
        partial_images=2,
        base_url=server.base_url,
        api_key=server.key,
        timeout=10,
    )
    async with chunks:
        got = [chunk async for chunk in chunks]
    assert kinds(got) == ["ImagePreview", "ImagePreview", "ImageFinal", "Usage"]
    assert got[2].image.data == noisy_png(300_000, 9)
    assert got[2].revised_prompt == "a lighthouse, “at dusk”"
    assert [chunk.image.data for chunk in got[:2]] == [noisy_png(300_000, i) for i in range(2)]


def test_an_event_that_is_not_json_is_still_reported() -> None:
    body = frame([("image_generation.completed", '{"b64_json":"' + BIG + '"')])
    (row, *_) = decode([body], MACHINES["images"], lifted=True)
    assert row[0] == "not json"
    assert StreamDecodeError  # the provider turns it into this (tested elsewhere)
