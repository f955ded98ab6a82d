"""Payload integrity end to end: base64 as servers send it, and images cut short.

Two holes an outside probe found: base64 that real servers send (wrapped at
76 columns, URL-safe, unpadded, behind a ``data:`` prefix) was refused, with
an error that said nothing of where; and a truncated image passed validation
(only its header was read) and was saved.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, features

import imagestream
from imagestream import (
    GenerationResult,
    ImageData,
    ImageFinal,
    ImagePreview,
    ImageValidationError,
    Pipeline,
    TextDelta,
    Validation,
)
from imagestream._base64 import decode_base64
from imagestream.testing import ScriptedProvider, make_png

PNG = make_png(16, 8)
STD = base64.b64encode(PNG).decode()


def _pillow(fmt: str, size: tuple[int, int] = (23, 17)) -> bytes:
    image = Image.frombytes(
        "RGB", size, bytes((i * 7 + 13) % 256 for i in range(size[0] * size[1] * 3))
    )
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


BIG = base64.b64encode(make_png(40, 40) + bytes(range(256)) * 8).decode()  # a few KB

# --- the forms of base64 servers send ---------------------------------------------------

Variant = Callable[[bytes], str]


def _mime_crlf(data: bytes) -> str:
    return "\r\n".join(textwrap.wrap(base64.b64encode(data).decode(), 76)) + "\r\n"


def _mime_lf(data: bytes) -> str:
    return "\n".join(textwrap.wrap(base64.b64encode(data).decode(), 76))


def _pem(data: bytes) -> str:
    return "\n".join(textwrap.wrap(base64.b64encode(data).decode(), 64)) + "\n"


def _url_safe(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def _unpadded(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def _everything(data: bytes) -> str:
    text = base64.urlsafe_b64encode(data).decode().rstrip("=")
    return "data:image/png;base64," + "\r\n".join(textwrap.wrap(text, 76))


VARIANTS: dict[str, Variant] = {
    "mime-crlf": _mime_crlf,
    "mime-lf": _mime_lf,
    "pem": _pem,
    "url-safe": _url_safe,
    "unpadded": _unpadded,
    "data-url": _data_url,
    "all-at-once": _everything,
}


@pytest.mark.parametrize("name", VARIANTS)
def test_each_accepted_form_decodes_to_the_original(name: str) -> None:
    text = VARIANTS[name](PNG)
    assert text != STD
    image = ImageData.from_base64(text)
    assert image.nbytes == len(PNG), "the size is known without decoding"
    assert image.head(8) == PNG[:8] and image.tail(12) == PNG[-12:]
    assert image.mime_type == "image/png"
    assert image.arrived_as_base64, "head, tail and size decode only the ends"
    assert image.data == PNG
    assert image.b64 == STD, "passed on in canonical form"
    assert image.b64_bytes() == STD.encode()


@pytest.mark.parametrize("name", VARIANTS)
def test_relayed_events_carry_canonical_base64(name: str) -> None:
    """The relay splices b64 into JSON unescaped: a line break there would break the event."""
    chunk = ImageFinal(ImageData.from_base64(VARIANTS[name](PNG)))
    event = imagestream.chunk_to_sse(chunk)
    (line,) = [line for line in event.split(b"\n") if line.startswith(b"data: ")]
    payload = json.loads(line.removeprefix(b"data: "))
    assert payload["image"]["b64"] == STD
    assert imagestream.chunk_to_dict(chunk)["image"]["b64"] == STD


def test_a_data_url_declares_the_type() -> None:
    assert ImageData.from_base64("data:image/webp;base64,QUJD").declared_mime_type == "image/webp"
    assert ImageData.from_base64("data:image/webp;base64,QUJD", "image/png").declared_mime_type == (
        "image/png"
    )
    assert ImageData.from_base64("data:;base64,QUJD").declared_mime_type is None


@pytest.mark.parametrize(
    ("text", "offset", "what"),
    [
        (BIG[:1234] + "*" + BIG[1235:], 1234, "'*' at offset 1234 is not a base64 character"),
        (BIG[:40] + " " + BIG[41:], 40, "whitespace inside the data"),
        ("ab+c" + _url_safe(b"\xfb\xff\xfe"), 4, "'+' at offset 2 from the standard one"),
        ("QUJD" * 10 + "=" + "QUJD", 40, "'=' at offset 40 is padding inside the data"),
        ("QUJD" * 10 + "Q", 40, "one character into a 4-character group"),
        ("QUJD====", 4, "4 '=' of padding at offset 4"),
        ("data:image/png," + STD, 0, "data: URL at offset 0 is not base64"),
        ("data:image/png;base64," + STD[:30] + "\u00e9" + STD[31:], 52, "'é' at offset 52"),
    ],
)
def test_refused_forms_say_what_and_where(text: str, offset: int, what: str) -> None:
    with pytest.raises(ImageValidationError) as info:
        _ = ImageData.from_base64(text).data
    message = str(info.value)
    assert message.startswith("image payload is not valid base64: ")
    assert f"offset {offset}" in message and what in message
    assert "starting with nothing" not in message


def test_a_refused_final_says_where_in_header_mode_too() -> None:
    chunk = ImageFinal(ImageData.from_base64(STD[:20] + "%" + STD[21:]))
    with pytest.raises(ImageValidationError, match="'%' at offset 20 is not a base64 character"):
        Validation().check_image(chunk, full=False)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=600), name=st.sampled_from(sorted(VARIANTS)))
def test_every_accepted_form_round_trips(data: bytes, name: str) -> None:
    text = VARIANTS[name](data)
    assert decode_base64(text) == data
    image = ImageData.from_base64(text)
    assert image.nbytes == len(data)
    assert image.head(20) == data[:20] and image.tail(20) == data[-20:]
    assert image.b64 == base64.b64encode(data).decode()
    assert image.data == data


# --- images cut short ---------------------------------------------------------------------


def _files(folder: Path) -> list[Path]:
    return list(folder.iterdir())


COMPLETE = [
    pytest.param(PNG, id="png"),
    pytest.param(_pillow("JPEG"), id="jpeg"),
    pytest.param(_pillow("GIF"), id="gif"),
    pytest.param(
        _pillow("WEBP") if features.check("webp") else b"",
        id="webp",
        marks=pytest.mark.skipif(not features.check("webp"), reason="Pillow built without WebP"),
    ),
]


@pytest.mark.parametrize("data", COMPLETE)
@pytest.mark.parametrize("as_base64", [False, True])
@pytest.mark.parametrize("full", [False, True])
def test_a_truncated_final_is_refused(data: bytes, as_base64: bool, full: bool) -> None:
    cut = data[:-3]
    image = ImageData.from_base64(base64.b64encode(cut)) if as_base64 else ImageData.from_bytes(cut)
    with pytest.raises(ImageValidationError, match="incomplete image/.* of .* bytes") as info:
        Validation().check_image(ImageFinal(image), full=full)
    assert info.value.hint is not None
    whole = (
        ImageData.from_base64(base64.b64encode(data)) if as_base64 else ImageData.from_bytes(data)
    )
    Validation().check_image(ImageFinal(whole), full=full)  # the whole image passes


def test_base64_cut_inside_a_group_is_reported_as_such() -> None:
    cut = STD[: len(STD) // 4 * 4 - 7]  # one character into a group
    with pytest.raises(ImageValidationError, match="one character into a 4-character group"):
        Validation().check_image(ImageFinal(ImageData.from_base64(cut)), full=False)


def _script(*middle: imagestream.Chunk, final: bytes | str) -> list[imagestream.Chunk]:
    image = ImageData.from_base64(final) if isinstance(final, str) else ImageData.from_bytes(final)
    return [TextDelta("drawing"), *middle, ImageFinal(image)]


def _preview(payload: bytes | str, index: int) -> ImagePreview:
    image = (
        ImageData.from_base64(payload)
        if isinstance(payload, str)
        else ImageData.from_bytes(payload)
    )
    return ImagePreview(image, index=index, step=index)


@pytest.mark.parametrize("final", [PNG[:-1], STD[:-8]], ids=["bytes", "base64"])
async def test_a_truncated_final_fails_the_run_keeping_what_arrived(
    final: bytes | str, tmp_path: Path
) -> None:
    script = _script(_preview(PNG, 0), _preview(STD, 1), final=final)
    pipe = Pipeline(ScriptedProvider("s", script), middleware=[Validation()], saver=True)
    with pytest.raises(ImageValidationError, match="incomplete image/png") as info:
        await pipe.agenerate("x", save=imagestream.SaveOptions(out_dir=tmp_path))
    partial = info.value.partial
    assert isinstance(partial, GenerationResult)
    assert partial.text == "drawing"
    assert [p.index for p in partial.previews] == [0, 1]
    assert partial.images == [] and partial.saved == []
    assert _files(tmp_path) == [], "nothing truncated is saved"


async def test_broken_previews_are_dropped_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    script = _script(
        _preview(PNG, 0),
        _preview(PNG[:-12], 1),  # no IEND
        _preview(STD[: len(STD) // 8 * 4 + 1], 2),  # base64 cut one character into a group
        _preview(STD, 3),
        final=PNG,
    )
    seen: list[imagestream.Chunk] = []

    class Spy:
        @imagestream.hookimpl
        def on_chunk(self, chunk: imagestream.Chunk, context: object) -> None:
            seen.append(chunk)

    pipe = Pipeline(ScriptedProvider("s", script), middleware=[Validation(), Spy()])
    with caplog.at_level(logging.DEBUG, logger="imagestream"):
        chunks = [chunk async for chunk in pipe.stream("x")]
        result = await pipe.agenerate("x")
    yielded = [c.index for c in chunks if isinstance(c, ImagePreview)]
    assert yielded == [0, 3]
    assert [c.index for c in seen if isinstance(c, ImagePreview)][:2] == [0, 3], (
        "no on_chunk hook sees a dropped preview"
    )
    assert [p.index for p in result.previews] == [0, 3]
    assert result.dropped_previews == 2
    assert result.images[0].image.data == PNG
    dropped = [r.getMessage() for r in caplog.records if "dropped preview" in r.getMessage()]
    assert len(dropped) == 4  # two per run
    assert "dropped preview 1 (step 1): preview is an incomplete image/png" in dropped[0]
    assert "one character into a 4-character group" in dropped[1]


async def test_dropped_previews_are_counted_on_a_failed_run_too() -> None:
    script = _script(_preview(PNG[:-1], 0), _preview(PNG, 1), final=PNG[:-1])
    pipe = Pipeline(ScriptedProvider("s", script), middleware=[Validation()])
    with pytest.raises(ImageValidationError) as info:
        await pipe.agenerate("x")
    assert info.value.partial is not None
    assert info.value.partial.dropped_previews == 1
    assert [p.index for p in info.value.partial.previews] == [1]


async def test_previews_not_checked_are_not_dropped() -> None:
    script = _script(_preview(PNG[:-1], 0), final=PNG)
    pipe = Pipeline(ScriptedProvider("s", script), middleware=[Validation(check_previews=False)])
    result = await pipe.agenerate("x")
    assert len(result.previews) == 1 and result.dropped_previews == 0


async def test_other_preview_faults_still_fail_the_run() -> None:
    script = _script(_preview(b"<html>busy</html>", 0), final=PNG)
    pipe = Pipeline(ScriptedProvider("s", script), middleware=[Validation()])
    with pytest.raises(ImageValidationError, match="preview payload is not a PNG"):
        await pipe.agenerate("x")


async def test_the_built_in_validation_drops_and_refuses(
    imagestream_plugins: imagestream.testing.PluginHarness,
) -> None:
    """Through imagestream.agenerate and the registered plugins (cache included)."""
    imagestream_plugins.register_provider(
        ScriptedProvider("cut", _script(_preview(PNG[:-1], 0), final=PNG[:-1])),
        ScriptedProvider("whole", _script(_preview(PNG[:-1], 0), _preview(PNG, 1), final=PNG)),
    )
    result = await imagestream.agenerate("x", provider="whole")
    assert [p.index for p in result.previews] == [1] and result.dropped_previews == 1
    with pytest.raises(ImageValidationError, match="incomplete image/png"):
        await imagestream.agenerate("x", provider="cut")
