"""Base64 held in pieces (``ImageData.from_base64_pieces``) behaves as the joined text does.

Whatever the text (canonical, the accepted deviations, garbage) and however it
is cut, with bytes pieces or ``(buffer, start, end)`` references: the same
bytes or the same error, the same head, tail, size, canonical text and
declared type as ``ImageData.from_base64`` of the joined text. And decoding
lets each piece go once it is decoded.
"""

from __future__ import annotations

import base64
import gc
import os
import pickle
import sys
import tracemalloc
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagestream import ImageData, _base64
from imagestream.errors import ImageValidationError

Piece = bytes | tuple[bytes, int, int]


@pytest.fixture(params=["stdlib", "pybase64"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "stdlib":
        monkeypatch.setattr(_base64, "_pybase64", None)
    elif _base64._pybase64 is None:
        pytest.skip("pybase64 (the fast extra) is not installed")
    return str(request.param)


def _outcome(call: Any) -> tuple[str, Any]:
    try:
        return "ok", call()
    except (ImageValidationError, UnicodeEncodeError) as exc:
        return "error", str(exc)


def _cut(text: bytes, cuts: list[int], padding: list[int]) -> list[Piece]:
    bounds = [0, *sorted({min(cut, len(text)) for cut in cuts}), len(text)]
    pieces: list[Piece] = []
    for index, (a, b) in enumerate(pairwise(bounds)):
        pad = padding[index % len(padding)] if padding else 0
        if pad:
            pieces.append((b"#" * pad + text[a:b] + b"%" * pad, pad, pad + b - a))
        else:
            pieces.append(text[a:b])
    return pieces


def _texts() -> st.SearchStrategy[str]:
    raw = st.binary(max_size=400)
    canonical = raw.map(lambda data: base64.b64encode(data).decode())
    return st.one_of(
        canonical,
        canonical.map(lambda text: text.rstrip("=")),
        raw.map(lambda data: base64.urlsafe_b64encode(data).decode()),
        canonical.map(lambda text: "data:image/webp;base64," + text),
        canonical.map(lambda text: "\n".join(text[i : i + 76] for i in range(0, len(text), 76))),
        st.tuples(canonical, st.integers(0, 500), st.sampled_from(list(" =-_!é\r\n\x00A"))).map(
            lambda t: t[0][: t[1]] + t[2] + t[0][t[1] :]
        ),
        st.text(alphabet="ABCDab01+/=-_ \n", max_size=40),
        st.sampled_from(["", "QR==", "A", "====", " QUFB", "QUFB ", "data:,QUFB"]),
    )


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    text=_texts(),
    cuts=st.lists(st.integers(0, 800), max_size=8),
    padding=st.lists(st.integers(0, 3), max_size=3),
)
def test_pieces_read_as_the_joined_text(
    text: str, cuts: list[int], padding: list[int], mode: str
) -> None:
    encoded = text.encode("utf-8")
    pieces = _cut(encoded, cuts, padding)
    whole = ImageData.from_base64(text)  # the text a JSON parser reads from those bytes

    def fresh() -> ImageData:
        return ImageData.from_base64_pieces(pieces)

    image = fresh()
    assert image.arrived_as_base64
    assert image.declared_mime_type == whole.declared_mime_type
    assert image.nbytes == whole.nbytes
    for n in (0, 1, 3, 16, 100):
        assert image.head(n) == whole.head(n), n
        assert image.tail(n) == whole.tail(n), n
    assert _outcome(image.b64_bytes) == _outcome(whole.b64_bytes)
    assert _outcome(lambda: fresh().b64) == _outcome(lambda: whole.b64)
    assert _outcome(lambda: image.data) == _outcome(lambda: whole.data)
    assert _outcome(lambda: image.data) == _outcome(lambda: whole.data)  # again: same outcome
    if _outcome(lambda: whole.data)[0] == "ok":
        assert not image.arrived_as_base64
        assert image == whole and hash(image) == hash(whole)
    # After a decode (good or bad) the rest still reads the same.
    assert _outcome(lambda: image.b64) == _outcome(lambda: whole.b64)
    assert image.nbytes == whole.nbytes
    assert image.head(16) == whole.head(16) and image.tail(16) == whole.tail(16)
    again = pickle.loads(pickle.dumps(fresh()))
    assert _outcome(lambda: again.data) == _outcome(lambda: whole.data)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    text=_texts(),
    cuts=st.lists(st.integers(0, 800), max_size=12),
    padding=st.lists(st.integers(0, 3), max_size=3),
)
@pytest.mark.parametrize("vouch", [False, True], ids=["unvouched", "vouched"])
def test_a_receiver_filled_piece_by_piece_reads_as_the_joined_text(
    text: str, cuts: list[int], padding: list[int], mode: str, vouch: bool
) -> None:
    # With pybase64 the receiver decodes as pieces arrive; without, it keeps them.
    # Vouched: each piece that is ASCII without a line feed is added saying so,
    # as the openai plugin's lifter does (the others are left to be scanned).
    encoded = text.encode("utf-8")
    whole = ImageData.from_base64(text)  # the text a JSON parser reads from those bytes

    def fresh() -> ImageData:
        receiver = ImageData.base64_receiver()
        for piece in _cut(encoded, cuts, padding):
            buffer, start, end = piece if isinstance(piece, tuple) else (piece, 0, len(piece))
            data = buffer[start:end]
            ascii_line = vouch and data.isascii() and b"\n" not in data
            receiver.add(buffer, start, end, ascii_line=ascii_line)
        return ImageData.from_base64_pieces(receiver)

    image = fresh()
    assert image.arrived_as_base64
    assert image.declared_mime_type == whole.declared_mime_type
    assert image.nbytes == whole.nbytes
    for n in (0, 1, 16, 100):
        assert image.head(n) == whole.head(n), n
        assert image.tail(n) == whole.tail(n), n
    assert _outcome(lambda: image.data) == _outcome(lambda: whole.data)
    assert _outcome(lambda: image.b64) == _outcome(lambda: whole.b64)
    assert _outcome(lambda: fresh().b64) == _outcome(lambda: whole.b64)
    assert _outcome(lambda: fresh().b64_bytes()) == _outcome(whole.b64_bytes)
    again = pickle.loads(pickle.dumps(fresh()))
    assert _outcome(lambda: again.data) == _outcome(lambda: whole.data)


def test_a_receiver_with_pybase64_holds_no_text() -> None:
    if _base64._pybase64 is None:
        pytest.skip("pybase64 (the fast extra) is not installed")
    raw = os.urandom(3 * 2**20)
    text = base64.b64encode(raw)
    receiver = ImageData.base64_receiver()
    step = 65536
    pieces = [text[i : i + step] for i in range(0, len(text), step)]
    before = [sys.getrefcount(piece) for piece in pieces]
    for index in range(len(pieces)):
        receiver.add(pieces[index], 0, len(pieces[index]))
    # Nothing kept a reference to the pieces: each was decoded and let go
    # (but a last piece shorter than 64 bytes, which waits in the carry).
    after = [sys.getrefcount(piece) for piece in pieces]
    assert after[:-1] == before[:-1]
    image = ImageData.from_base64_pieces(receiver, "image/png")
    assert image.arrived_as_base64 and image.nbytes == len(raw)
    assert image.data == raw and not image.arrived_as_base64
    assert image.b64_bytes() == text


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    text=_texts(),
    cuts=st.lists(st.integers(0, 800), max_size=12),
    hold=st.integers(0, 600),
)
def test_a_stdlib_receiver_that_starts_decoding_midway_reads_as_the_joined_text(
    text: str, cuts: list[int], hold: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without pybase64 a receiver holds up to _HOLD characters, then decodes
    # what it holds and goes on decoding as pieces arrive: wherever that
    # happens (in a piece, in the carry, before a deviation), nothing changes.
    monkeypatch.setattr(_base64, "_pybase64", None)
    monkeypatch.setattr(_base64, "_HOLD", hold)
    whole = ImageData.from_base64(text)

    def fresh() -> ImageData:
        receiver = ImageData.base64_receiver()
        for piece in _cut(text.encode("utf-8"), cuts, [0, 1]):
            receiver.add(*piece) if isinstance(piece, tuple) else receiver.add(piece, 0, len(piece))
        return ImageData.from_base64_pieces(receiver)

    image = fresh()
    assert image.nbytes == whole.nbytes
    for n in (0, 1, 16, 100):
        assert image.head(n) == whole.head(n), n
        assert image.tail(n) == whole.tail(n), n
    assert _outcome(lambda: image.data) == _outcome(lambda: whole.data)
    assert _outcome(lambda: fresh().b64) == _outcome(lambda: whole.b64)
    assert _outcome(lambda: fresh().b64_bytes()) == _outcome(whole.b64_bytes)


def test_a_stdlib_receiver_holds_no_more_text_than_its_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A streamed final image must not hold all its base64 and all its bytes
    # at once: past the budget, held pieces are decoded and let go.
    monkeypatch.setattr(_base64, "_pybase64", None)
    raw = os.urandom(5 * 2**20)
    text = base64.b64encode(raw)
    step = 65536
    pieces = [text[i : i + step] for i in range(0, len(text), step)]

    def kept() -> list[bool]:  # which pieces something else holds a reference to
        return [now > then for now, then in zip(refs(), before, strict=True)]

    def refs() -> list[int]:
        return [sys.getrefcount(piece) for piece in pieces]

    before = refs()
    receiver = ImageData.base64_receiver()
    held = []
    for piece in pieces:
        receiver.add(piece, 0, len(piece))
        held.append(sum(kept()))
    assert max(held) * step <= _base64._HOLD + step
    assert held[-1] <= 1  # the last group waits in the carry
    preview = ImageData.base64_receiver(decode_early=False)  # asked to wait: holds it all
    for piece in pieces:
        preview.add(piece, 0, len(piece))
    assert all(kept())
    image = ImageData.from_base64_pieces(receiver, "image/png")
    assert image.nbytes == len(raw) and image.data == raw
    assert image.b64_bytes() == text
    assert ImageData.from_base64_pieces(preview).data == raw


def test_large_canonical_image_in_many_pieces(mode: str) -> None:
    raw = os.urandom(1_000_003)
    text = base64.b64encode(raw)
    cuts = sorted({int.from_bytes(os.urandom(3), "big") % len(text) for _ in range(50)})
    image = ImageData.from_base64_pieces(_cut(text, cuts, [0, 2]), "image/png")
    assert image.nbytes == len(raw)
    assert image.head(16) == raw[:16] and image.tail(16) == raw[-16:]
    assert image.b64_bytes() == text
    assert image.data == raw
    assert image.b64 == text.decode()


def test_one_large_reference_decodes_without_slicing(mode: str) -> None:
    raw = os.urandom(600_001)
    body = b'{"b64_json":"' + base64.b64encode(raw) + b'"}'
    image = ImageData.from_base64_pieces([(body, 13, len(body) - 2)])
    assert image.data == raw


def test_decoding_lets_each_piece_go() -> None:
    # 4 MB of base64 in 64 pieces decodes to 3 MB: the peak must stay far
    # below holding both (7 MB), since each piece goes once decoded.
    raw = os.urandom(3 * 2**20)
    text = base64.b64encode(raw)
    step = len(text) // 64
    pieces = [text[i : i + step] for i in range(0, len(text), step)]
    del text
    image = ImageData.from_base64_pieces(pieces)
    del pieces
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        data = image.data
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert data == raw
    assert peak < len(raw) + 2**20, peak


def test_a_vouch_is_taken_at_its_word() -> None:
    """Pieces vouched for as ASCII lines are not scanned again (a wrong vouch shows it)."""
    text = b"QUFB\nQUFB\nQUFB\nQUFB"

    def nbytes(vouch: bool) -> int:
        receiver = ImageData.base64_receiver(decode_early=False)
        receiver.add(text, 0, len(text), ascii_line=vouch)
        return ImageData.from_base64_pieces(receiver).nbytes

    assert nbytes(False) == ImageData.from_base64(text.decode()).nbytes == 12
    assert nbytes(True) == 14  # the line feeds counted as data: nothing looked for them


def test_bad_piece_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        ImageData.from_base64_pieces([(b"QUFB", 2, 9)])
