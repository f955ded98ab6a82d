"""Tests of the cookbook's recipes, offline: procedural and a scripted provider."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest
from notebook_progress import LivePreview, generate_in_notebook, generate_with_progress
from PIL import Image, ImageSequence
from previews_gif import previews_to_gif
from two_providers import draft_then_final
from watermark import watermark

import imagestream
from imagestream.testing import ScriptedProvider, make_png

PROMPT = "a blue square on yellow"


# -- watermark ------------------------------------------------------------------


def test_the_watermark_marks_the_corner_and_keeps_the_rest() -> None:
    plain = imagestream.Pipeline("procedural").generate(PROMPT, steps=4, seed=3)
    marked = imagestream.Pipeline("procedural", postprocessors=[watermark]).generate(
        PROMPT, steps=4, seed=3
    )
    before = plain.images[0].image.to_pil().convert("RGB")
    after = marked.images[0].image.to_pil()

    assert after.size == before.size
    assert after.mode == "RGB"
    assert marked.images[0].mime_type == "image/png"
    width, height = before.size
    corner = (width * 2 // 3, height * 5 // 6, width, height)
    assert before.crop(corner).tobytes() != after.crop(corner).tobytes()
    top_left = (0, 0, width // 2, height // 2)
    assert before.crop(top_left).tobytes() == after.crop(top_left).tobytes()


def test_the_watermark_keeps_transparency() -> None:
    clear = Image.new("RGBA", (120, 80), (0, 0, 0, 0))
    final = imagestream.ImageFinal(imagestream.ImageData.from_pil(clear, "png"))

    marked = watermark(final, imagestream.ImageRequest(prompt="x"))

    assert marked.mode == "RGBA"
    alpha = marked.getchannel("A")
    assert alpha.getextrema() != (0, 0)  # the text is opaque
    assert alpha.getpixel((0, 0)) == 0  # the rest stays clear


# -- progress in a notebook -----------------------------------------------------


async def test_progress_passes_every_chunk_through() -> None:
    result = await generate_with_progress(PROMPT, steps=5, seed=1)

    assert result.preview_count == 5
    assert len(result.images) == 1


class FakeHandle:
    def __init__(self, shown: Any) -> None:
        self.shown = [shown]

    def update(self, obj: Any) -> None:
        self.shown.append(obj)


@pytest.fixture
def ipython_display(monkeypatch: pytest.MonkeyPatch) -> list[FakeHandle]:
    """A stand-in for ``IPython.display``: records what would be displayed."""
    handles: list[FakeHandle] = []

    def display(obj: Any, display_id: bool = False) -> FakeHandle:
        assert display_id, (
            "LivePreview updates its output in place: it needs a display id"
        )
        handles.append(FakeHandle(obj))
        return handles[-1]

    def image(data: bytes, width: int) -> tuple[bytes, int]:
        return data, width

    module = types.ModuleType("IPython.display")
    module.display = display  # type: ignore[attr-defined]
    module.Image = image  # type: ignore[attr-defined]
    package = types.ModuleType("IPython")
    package.display = module  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", package)
    monkeypatch.setitem(sys.modules, "IPython.display", module)
    return handles


async def test_the_live_preview_shows_every_preview_then_the_final(
    ipython_display: list[FakeHandle],
) -> None:
    result = await generate_in_notebook(PROMPT, steps=4, seed=2)

    (handle,) = ipython_display
    placeholder, *images = handle.shown
    assert isinstance(placeholder, str)
    # Every preview, then the final image (the result keeps the latest preview).
    assert len(images) == result.preview_count + 1 == 5
    assert [data for data, _ in images[-2:]] == [
        result.previews[-1].image.data,
        result.images[0].image.data,
    ]
    assert {width for _, width in images} == {256}


def test_the_live_preview_ignores_other_chunks(
    ipython_display: list[FakeHandle],
) -> None:
    preview = LivePreview()
    preview.update(imagestream.TextDelta("a blue square"))
    assert preview.shown == 0


# -- previews as a GIF ------------------------------------------------------------


async def test_the_gif_has_a_frame_per_preview_and_holds_the_final(
    tmp_path: Path,
) -> None:
    path = await previews_to_gif(
        PROMPT, tmp_path / "square.gif", steps=6, seed=4, size="96x64"
    )

    with Image.open(path) as gif:
        assert gif.format == "GIF"
        assert gif.size == (96, 64)
        assert gif.info.get("loop") == 0
        durations = [frame.info["duration"] for frame in ImageSequence.Iterator(gif)]
    assert durations == [80] * 6 + [1500]  # six previews, then the final image, held


async def test_a_run_without_images_is_an_error(tmp_path: Path) -> None:
    silent = ScriptedProvider(
        "silent", chunks=[imagestream.TextDelta("nothing to draw")]
    )

    # The run itself fails: a run that ends without an image is a NoImageError.
    with pytest.raises(imagestream.NoImageError, match="nothing to draw"):
        await previews_to_gif(PROMPT, tmp_path / "none.gif", provider=silent)
    assert not (tmp_path / "none.gif").exists()


# -- two providers -----------------------------------------------------------------


def studio() -> ScriptedProvider:
    """The "expensive" provider of the recipe: one final image, no previews."""
    final = imagestream.ImageFinal(
        imagestream.ImageData.from_bytes(make_png(32, 32, (0, 0, 255)))
    )
    return ScriptedProvider("studio", chunks=[final])


async def test_the_draft_comes_first_then_the_final_provider() -> None:
    final_provider = studio()
    seen = [
        (stage, chunk.kind)
        async for stage, chunk in draft_then_final(
            PROMPT, final=final_provider, draft_params={"steps": 3}, seed=9
        )
    ]

    drafts = [kind for stage, kind in seen if stage == "draft"]
    assert drafts.count("image_preview") == 3
    assert "image_final" in drafts
    assert seen[-1] == ("final", "image_final")
    assert [stage for stage, _ in seen] == sorted(
        stage for stage, _ in seen
    )  # drafts first
    (request,) = final_provider.requests
    assert request.prompt == PROMPT
    assert request.seed == 9


async def test_stopping_after_the_draft_never_calls_the_final_provider() -> None:
    final_provider = studio()
    stream = draft_then_final(PROMPT, final=final_provider, draft_params={"steps": 2})
    async for stage, chunk in stream:
        assert stage == "draft"
        if isinstance(chunk, imagestream.ImageFinal):
            break
    await stream.aclose()

    assert final_provider.requests == []
