"""chunk_to_sse is the inverse of the sse decoder plus chunk_from_dict."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagestream import (
    ImageData,
    ImageFinal,
    ImagePreview,
    TextDelta,
    Usage,
    chunk_from_dict,
    chunk_to_dict,
    chunk_to_sse,
    get_decoder,
)
from imagestream.testing import make_png

CHUNKS = [
    TextDelta('line one\nline two\r\n\u2028 and "quotes" \x00'),
    ImagePreview(ImageData.from_bytes(make_png(4, 4)), index=1, step=3, total_steps=20, sigma=0.5),
    ImageFinal(ImageData.from_bytes(make_png(3, 2)), sample=1, seed=7, revised_prompt="a\nb"),
    Usage(input_tokens=3, output_tokens=9, cost_usd=0.01, raw={"x": [1, 2]}),
]


@pytest.mark.parametrize("chunk", CHUNKS, ids=lambda c: type(c).__name__)
def test_round_trip_through_the_sse_decoder(chunk: object) -> None:
    encoded = chunk_to_sse(chunk, event_id="42")  # type: ignore[arg-type]
    decoder = get_decoder("sse")
    events = decoder.feed(encoded) + decoder.close()
    assert len(events) == 1
    event = events[0]
    assert event.event == type(chunk).kind  # type: ignore[attr-defined]
    assert event.id == "42"
    assert chunk_from_dict(json.loads(event.data)) == chunk
    assert json.loads(event.data) == chunk_to_dict(chunk)  # type: ignore[arg-type]


@given(st.text(), st.integers(min_value=1, max_value=50))
def test_any_text_survives_any_split(text: str, piece: int) -> None:
    encoded = chunk_to_sse(TextDelta(text)) * 2
    decoder = get_decoder("sse")
    events = []
    for start in range(0, len(encoded), piece):
        events += decoder.feed(encoded[start : start + piece])
    events += decoder.close()
    assert [chunk_from_dict(json.loads(e.data)) for e in events] == [TextDelta(text)] * 2


def test_the_wire_format() -> None:
    assert chunk_to_sse(TextDelta("hi")) == (
        b'event: text_delta\ndata: {"text":"hi","synthetic":false,"thought":false,"type":"text_delta"}\n\n'
    )


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\0b"])
def test_an_id_that_sse_cannot_carry_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="line break or NUL"):
        chunk_to_sse(TextDelta("x"), event_id=bad)


@pytest.mark.parametrize(
    "chunk",
    [
        *CHUNKS,
        ImageFinal(
            ImageData.from_base64(ImageData.from_bytes(make_png(5, 5)).b64),
            revised_prompt='tricky: "b64":"\x00imagestream-image\x00" \u2028',
            extra={"b64": "\x00imagestream-image\x00"},
        ),
    ],
    ids=lambda c: type(c).__name__,
)
def test_the_spliced_image_equals_plain_json(chunk: object) -> None:
    """The fast path (base64 spliced into the JSON) writes exactly what json.dumps would."""
    plain = json.dumps(chunk_to_dict(chunk), separators=(",", ":"), ensure_ascii=False)  # type: ignore[arg-type]
    assert chunk_to_sse(chunk) == f"event: {type(chunk).kind}\ndata: {plain}\n\n".encode()  # type: ignore[arg-type,attr-defined]


def test_relaying_caches_no_base64_copy() -> None:
    image = ImageData.from_bytes(make_png(4, 4))
    chunk_to_sse(ImageFinal(image))
    assert not image.arrived_as_base64 and image._b64 is None


_IMAGE = ImageData.from_bytes(make_png(2, 2))
_TEXT = st.text(max_size=20)
_EXTRA = st.dictionaries(
    _TEXT,
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TEXT,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
        max_leaves=6,
    ),
    max_size=3,
)
_OPTIONAL_INT = st.none() | st.integers(min_value=0, max_value=10**6)


@given(
    st.builds(
        ImagePreview,
        image=st.just(_IMAGE),
        index=st.integers(min_value=0, max_value=1000),
        sample=st.integers(min_value=0, max_value=8),
        step=_OPTIONAL_INT,
        total_steps=_OPTIONAL_INT,
        sigma=st.none() | st.floats(allow_nan=False),
        mime_type=st.none() | _TEXT,
        width=_OPTIONAL_INT,
        height=_OPTIONAL_INT,
        synthetic=st.booleans(),
        extra=_EXTRA,
    )
    | st.builds(
        ImageFinal,
        image=st.just(_IMAGE),
        sample=st.integers(min_value=0, max_value=8),
        mime_type=st.none() | _TEXT,
        revised_prompt=st.none() | _TEXT,
        seed=_OPTIONAL_INT,
        synthetic=st.booleans(),
        extra=_EXTRA,
    )
)
def test_any_image_chunk_is_written_as_plain_json_would_be(chunk: object) -> None:
    plain = json.dumps(chunk_to_dict(chunk), separators=(",", ":"), ensure_ascii=False)  # type: ignore[arg-type]
    assert chunk_to_sse(chunk) == f"event: {type(chunk).kind}\ndata: {plain}\n\n".encode()  # type: ignore[arg-type,attr-defined]


def test_provider_facts_json_cannot_take_go_through_the_converter() -> None:
    """An attrs object in ``extra`` is unstructured by the converter, as chunk_to_dict does."""
    fact = Usage(input_tokens=1)
    chunk = ImageFinal(_IMAGE, extra={"usage": fact})
    event = chunk_to_sse(chunk)
    assert json.loads(event.split(b"data: ", 1)[1]) == json.loads(json.dumps(chunk_to_dict(chunk)))
