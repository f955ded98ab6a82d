"""Reliability holes found by probing from outside, each pinned by a regression test.

1. Leaving a loop early: ``async with`` closes the connection at once; a
   stream abandoned open warns (``ResourceWarning``) and is still closed.
2. A run that ends with no image is a :class:`NoImageError`, never a success.
3. Control characters in a saved path are refused as unsafe, the image kept.
4. File names up to the file system's limit save; longer ones say why.
5. The procedural provider refuses more partial images than steps, and a
   pipeline's default key never prints.
"""

from __future__ import annotations

import asyncio
import gc
import os
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import imagestream
from imagestream import (
    ImageData,
    ImageFinal,
    ImagePreview,
    ImageRequest,
    NoImageError,
    Pipeline,
    Provider,
    RunContext,
    SaveError,
    SaveOptions,
    TextDelta,
    UnsafePathError,
)
from imagestream.testing import ScriptedProvider, make_png

Serve = Callable[[Callable[[web.Request], Awaitable[web.StreamResponse]]], Awaitable[str]]
PNG = make_png(4, 4)


def _final(sample: int = 0) -> ImageFinal:
    return ImageFinal(image=ImageData.from_bytes(PNG, "image/png"), sample=sample)


# -- 1. leaving a loop early --------------------------------------------------


class _Drip:
    """A server that sends a piece every 20 ms until the client hangs up."""

    def __init__(self) -> None:
        self.connected = asyncio.Event()
        self.hung_up = asyncio.Event()

    async def handler(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        self.connected.set()
        try:
            for _ in range(1500):  # 30 s at most
                await response.write(b"x" * 64)
                await asyncio.sleep(0.02)
        except (ConnectionError, asyncio.CancelledError):
            self.hung_up.set()
            raise
        finally:
            # aiohttp cancels the handler of a closed connection; a write to it fails.
            transport = request.transport
            if transport is None or transport.is_closing():
                self.hung_up.set()
        return response


class _DripProvider(Provider):
    """Streams a preview per piece of body from ``base_url`` (through the run's HTTP client)."""

    name = "drip"

    async def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Any]:
        assert request.base_url
        response = await context.http.send("GET", request.base_url + "/drip", provider=self.name)
        index = 0
        async for _ in context.http.iter_body(response, provider=self.name):
            yield ImagePreview(image=ImageData.from_bytes(PNG, "image/png"), index=index)
            index += 1


async def _started(serve: Serve) -> tuple[_Drip, str]:
    drip = _Drip()
    return drip, await serve(drip.handler)


async def test_async_with_closes_the_connection_on_break(
    serve: Serve, imagestream_plugins: Any
) -> None:
    drip, url = await _started(serve)
    async with imagestream.stream("x", provider=_DripProvider(), base_url=url) as chunks:
        async for chunk in chunks:
            assert isinstance(chunk, ImagePreview)
            if chunk.index == 2:
                break
    await asyncio.wait_for(drip.hung_up.wait(), timeout=1.0)
    assert chunks.result.preview_count == 3
    assert [preview.index for preview in chunks.result.previews] == [2]


async def test_a_stream_left_open_stays_open_until_closed(
    serve: Serve, imagestream_plugins: Any
) -> None:
    # The documented caveat: breaking out of a bare loop over a stream that is
    # still referenced does not close it; aclose() does.
    drip, url = await _started(serve)
    chunks = imagestream.stream("x", provider=_DripProvider(), base_url=url)
    async for _ in chunks:
        break
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.shield(drip.hung_up.wait()), timeout=0.3)
    await chunks.aclose()
    await asyncio.wait_for(drip.hung_up.wait(), timeout=1.0)


async def test_an_abandoned_open_stream_warns_and_is_closed(
    serve: Serve, imagestream_plugins: Any
) -> None:
    drip, url = await _started(serve)
    chunks = imagestream.stream("x", provider=_DripProvider(), base_url=url)
    async for _ in chunks:
        break
    with pytest.warns(ResourceWarning, match=r"async with imagestream\.stream"):
        del chunks  # the last reference: collected here
    # asyncio's async-generator finaliser closes the run on the loop.
    await asyncio.wait_for(drip.hung_up.wait(), timeout=1.0)


async def test_the_bare_loop_form_warns_when_left_early(imagestream_plugins: Any) -> None:
    provider = ScriptedProvider(chunks=[TextDelta("a"), TextDelta("b"), _final()])

    async def leave_early() -> None:
        async for _ in imagestream.stream("x", provider=provider):
            break

    with pytest.warns(ResourceWarning, match="ChunkStream"):
        await leave_early()
    for _ in range(5):
        await asyncio.sleep(0)
    assert provider.closed == 1


async def test_an_abandoned_iterator_that_is_not_a_generator_is_closed_too() -> None:
    from imagestream import GenerationResult

    class Endless:
        closed = False

        def __aiter__(self) -> Endless:
            return self

        async def __anext__(self) -> TextDelta:
            return TextDelta("x")

        async def aclose(self) -> None:
            self.closed = True

    endless = Endless()
    chunks = imagestream.ChunkStream(endless, GenerationResult("x"))
    assert await anext(chunks) == TextDelta("x")
    with pytest.warns(ResourceWarning, match="aclose"):
        del chunks
    for _ in range(5):
        await asyncio.sleep(0)
    assert endless.closed


async def test_streams_that_finish_fail_or_close_do_not_warn(imagestream_plugins: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        # Run to the end.
        async for _ in imagestream.stream("x", provider=ScriptedProvider(chunks=[_final()])):
            pass
        # Failed.
        failing = ScriptedProvider(chunks=[TextDelta("a"), RuntimeError("boom")])
        with pytest.raises(RuntimeError):
            async for _ in imagestream.stream("x", provider=failing):
                pass
        # Closed by async with, and never started.
        async with imagestream.stream("x", provider=ScriptedProvider(chunks=[_final()])) as s:
            async for _ in s:
                break
        imagestream.stream("x", provider=ScriptedProvider(chunks=[_final()]))
        gc.collect()


# -- 2. no image is an error --------------------------------------------------


async def test_a_run_that_ends_without_an_image_is_a_no_image_error(
    imagestream_plugins: Any,
) -> None:
    preview = ImagePreview(image=ImageData.from_bytes(PNG, "image/png"), index=0)
    provider = ScriptedProvider(chunks=[TextDelta("I can't draw "), preview, TextDelta("that.")])
    with pytest.raises(NoImageError) as info:
        await imagestream.agenerate("x", provider=provider)
    error = info.value
    assert error.provider == "scripted"
    assert error.text == "I can't draw that."
    assert "I can't draw that." in str(error) and "1 preview" in str(error)
    assert error.partial is not None
    assert error.partial.text == "I can't draw that."
    assert len(error.partial.previews) == 1 and error.partial.images == []


async def test_a_generate_only_provider_without_images_is_a_no_image_error(
    imagestream_plugins: Any,
) -> None:
    from imagestream import ProviderResponse

    provider = ScriptedProvider(response=ProviderResponse(text="Which colour?"))
    with pytest.raises(NoImageError, match="Which colour"):
        await imagestream.agenerate("x", provider=provider)


async def test_on_error_hooks_see_the_no_image_error() -> None:
    seen: list[BaseException] = []

    class Watch:
        @imagestream.hookimpl
        def on_error(self, error: BaseException, context: RunContext) -> None:
            seen.append(error)

    pipe = Pipeline(ScriptedProvider(chunks=[TextDelta("no")]), middleware=[Watch()])
    with pytest.raises(NoImageError):
        await pipe.agenerate("x")
    assert [type(error) for error in seen] == [NoImageError]


# -- 3. control characters in saved paths -------------------------------------


@pytest.mark.parametrize("char", ["\x00", "\n", "\t", "\x1b", "\x7f"])
@pytest.mark.parametrize("where", ["output", "out_dir", "filename"])
async def test_control_characters_are_refused_and_the_image_kept(
    tmp_path: Path, where: str, char: str
) -> None:
    options = {
        "output": SaveOptions(output=tmp_path / f"bad{char}name.png"),
        "out_dir": SaveOptions(out_dir=tmp_path / f"bad{char}dir"),
        "filename": SaveOptions(out_dir=tmp_path, filename=f"bad{char}name.png"),
    }[where]
    pipe = Pipeline(ScriptedProvider(chunks=[_final(0), _final(1)]), saver=True)
    chunks = pipe.stream("x", save=options)
    seen: list[Any] = []

    async def consume() -> None:
        async with chunks:
            async for chunk in chunks:
                seen.append(chunk)

    with pytest.raises(UnsafePathError, match="control character") as info:
        await consume()
    # Both images reached the caller and the result; each failed save is recorded.
    assert len(seen) == 2 and len(chunks.result.images) == 2
    assert [type(error) for error in chunks.result.save_errors] == [UnsafePathError] * 2
    assert info.value.partial is chunks.result
    assert isinstance(info.value, SaveError)
    assert os.listdir(tmp_path) == []  # nothing written, no directory made


async def test_a_saver_that_fails_any_way_keeps_the_image() -> None:
    def broken(image: ImageFinal, options: SaveOptions) -> Any:
        raise ValueError("embedded null byte")

    pipe = Pipeline(ScriptedProvider(chunks=[_final()]), saver=broken)
    with pytest.raises(SaveError, match="ValueError: embedded null byte") as info:
        await pipe.agenerate("x")
    assert info.value.partial is not None and len(info.value.partial.images) == 1
    assert isinstance(info.value.__cause__, ValueError)


def test_image_data_save_refuses_a_nul_byte(tmp_path: Path) -> None:
    with pytest.raises(UnsafePathError, match="control character"):
        ImageData.from_bytes(PNG, "image/png").save(tmp_path / "a\x00b.png")


# -- 4. long file names -------------------------------------------------------


@pytest.mark.parametrize("length", [241, 242, 250, 255])
def test_names_up_to_the_limit_save(tmp_path: Path, length: int) -> None:
    from imagestream._saving import write_atomic

    name = "n" * (length - 4) + ".png"
    written = write_atomic(tmp_path / name, PNG)
    assert written == tmp_path / name and written.read_bytes() == PNG
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary left


def test_a_taken_255_byte_name_gets_a_numbered_name_that_fits(tmp_path: Path) -> None:
    from imagestream._saving import write_atomic

    name = "n" * 251 + ".png"
    first = write_atomic(tmp_path / name, PNG)
    second = write_atomic(tmp_path / name, PNG)
    assert first.name == name
    assert second != first and second.name.endswith("-1.png")
    assert len(second.name.encode()) == 255


def test_multibyte_names_are_shortened_on_character_boundaries(tmp_path: Path) -> None:
    from imagestream._saving import write_atomic

    name = "é" * 125 + ".png"  # 254 bytes
    assert write_atomic(tmp_path / name, PNG).name == name
    second = write_atomic(tmp_path / name, PNG)
    assert second.name.endswith("-1.png") and len(second.name.encode()) <= 255


async def test_a_name_over_the_limit_says_how_long_it_is(tmp_path: Path) -> None:
    name = "n" * 300 + ".png"
    pipe = Pipeline(ScriptedProvider(chunks=[_final()]), saver=True)
    with pytest.raises(SaveError, match=r"file name is 304 bytes long") as info:
        await pipe.agenerate("x", save=SaveOptions(output=tmp_path / name))
    assert str(tmp_path) not in info.value.message  # the name is to blame, not the folder
    assert info.value.partial is not None and len(info.value.partial.images) == 1
    assert os.listdir(tmp_path) == []


# -- 5. partial images and steps; a pipeline's key ----------------------------


def test_procedural_refuses_more_partial_images_than_steps() -> None:
    pytest.importorskip("imagestream_procedural")
    from imagestream_procedural._provider import ProceduralProvider

    with pytest.raises(imagestream.ValidationError) as info:
        ProceduralProvider().validate(ImageRequest("x", steps=2, partial_images=1000))
    assert "partial_images=1000" in str(info.value) and "steps=2" in str(info.value)
    # As many as there are steps is fine.
    ProceduralProvider().validate(ImageRequest("x", steps=2, partial_images=2))


async def test_a_pipeline_default_key_never_prints() -> None:
    key = "sk-holes-secret-123456"
    seen: list[ImageRequest] = []

    class Refusing(ScriptedProvider):
        def validate(self, request: ImageRequest) -> ImageRequest:
            seen.append(request)
            raise imagestream.ValidationError(f"refused {request!r}")

    pipe = Pipeline(Refusing(), api_key=key)
    assert isinstance(pipe.defaults["api_key"], imagestream.Secret)
    assert key not in repr(pipe) and key not in repr(pipe.defaults)
    assert key not in str(pipe.defaults)
    with pytest.raises(imagestream.ValidationError) as info:
        await pipe.agenerate("x")
    assert key not in str(info.value) and key not in repr(info.value)
    assert info.value.partial is not None and key not in repr(info.value.partial)
    # The key still reaches the provider.
    assert seen[0].api_key is not None and seen[0].api_key.get() == key
