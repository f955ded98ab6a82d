"""The pipeline: hooks in order, fake streaming, early exit, errors with partial results."""

from __future__ import annotations

import asyncio
import base64
import gc
import weakref
from pathlib import Path
from typing import Any

import attrs
import pytest

import imagestream
from imagestream import (
    ImageData,
    ImageFinal,
    ImagePreview,
    Pipeline,
    ProviderResponse,
    TextDelta,
    Usage,
)
from imagestream.testing import ScriptedProvider, make_png

PNG = make_png(16, 8)


def _script() -> list[Any]:
    return [
        TextDelta("drawing"),
        ImagePreview(ImageData.from_bytes(PNG), index=0, step=0, total_steps=2),
        ImagePreview(ImageData.from_bytes(PNG), index=1, step=1, total_steps=2),
        ImageFinal(ImageData.from_base64(base64.b64encode(PNG).decode())),
        Usage(input_tokens=4, output_tokens=10),
    ]


class Recorder:
    """A middleware plugin that records the hooks it sees."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    @imagestream.hookimpl
    def on_request(self, request: imagestream.ImageRequest, context: Any) -> None:
        self.calls.append("request")

    @imagestream.hookimpl
    def on_chunk(self, chunk: Any, context: Any) -> None:
        self.calls.append(chunk.kind)

    @imagestream.hookimpl
    async def on_result(self, result: Any, context: Any) -> None:
        self.calls.append("result")

    @imagestream.hookimpl
    def on_error(self, error: BaseException, context: Any) -> None:
        self.calls.append(f"error:{type(error).__name__}")


async def test_chunks_flow_through_middleware_in_order() -> None:
    recorder = Recorder()
    pipe = Pipeline(ScriptedProvider("s", _script()), middleware=[recorder])
    chunks = [c async for c in pipe.stream("a red circle")]
    assert [c.kind for c in chunks] == [
        "text_delta",
        "image_preview",
        "image_preview",
        "image_final",
        "usage",
    ]
    assert recorder.calls == ["request", *[c.kind for c in chunks], "result"]


async def test_plugins_registered_or_removed_between_runs_take_effect_at_the_next_run() -> None:
    # A pipeline binds its hook calls once; a change of plugins must still show.
    first, second = Recorder(), Recorder()
    pipe = Pipeline(ScriptedProvider("s", _script()), middleware=[first])
    assert [c async for c in pipe.stream("one")]
    pipe.manager.register(second, "second")
    assert [c async for c in pipe.stream("two")]
    pipe.manager.unregister(first)
    assert [c async for c in pipe.stream("three")]
    runs = len(["result" for call in first.calls if call == "result"])
    assert runs == 2 and second.calls.count("result") == 2
    assert second.calls.count("request") == 2 and second.calls.count("image_final") == 2


async def test_result_collects_everything() -> None:
    pipe = Pipeline(
        ScriptedProvider("s", _script()), middleware=[imagestream.AnalyticsMiddleware()]
    )
    result = await pipe.agenerate("x")
    assert result.text == "drawing"
    assert len(result.previews) == 2
    assert result.images[0].image.data == PNG
    assert result.usage == Usage(input_tokens=4, output_tokens=10)
    assert result.analytics is not None
    assert result.analytics.chunks == {
        "text_delta": 1,
        "image_preview": 2,
        "image_final": 1,
        "usage": 1,
    }
    assert result.analytics.first_preview_s is not None
    assert result.analytics.first_final_s >= result.analytics.first_preview_s  # type: ignore[operator]
    assert result.analytics.image_bytes == 3 * len(PNG)


async def test_generate_only_provider_is_fake_streamed_and_marked_synthetic() -> None:
    response = ProviderResponse(
        images=[
            ImageFinal(ImageData.from_bytes(PNG)),
            ImageFinal(ImageData.from_bytes(PNG), sample=1),
        ],
        text="a caption",
        usage=Usage(output_tokens=3),
    )
    chunks = [c async for c in Pipeline(ScriptedProvider("g", response=response)).stream("x")]
    assert [type(c) for c in chunks] == [TextDelta, ImageFinal, ImageFinal, Usage]
    assert all(c.synthetic for c in chunks)
    assert [c.sample for c in chunks if isinstance(c, ImageFinal)] == [0, 1]


async def test_fake_streaming_adds_no_delay() -> None:
    response = ProviderResponse(images=[ImageFinal(ImageData.from_bytes(PNG))])
    loop = asyncio.get_running_loop()
    started = loop.time()
    await Pipeline(ScriptedProvider("g", response=response)).agenerate("x")
    # Generous: only proves there is no sleep-per-chunk style pacing.
    assert loop.time() - started < 0.5


async def test_breaking_out_closes_the_provider_stream() -> None:
    provider = ScriptedProvider("s", _script())
    stream = Pipeline(provider).stream("x")
    async with stream:
        async for chunk in stream:
            if isinstance(chunk, ImagePreview):
                break
    assert provider.closed == 1


async def test_break_without_context_manager_still_closes() -> None:
    provider = ScriptedProvider("s", _script())

    async def consume() -> None:
        async for chunk in Pipeline(provider).stream("x"):
            if isinstance(chunk, ImagePreview):
                break

    await consume()
    for _ in range(10):  # the async generator finaliser runs on the loop
        if provider.closed:
            break
        await asyncio.sleep(0.01)
    assert provider.closed == 1


async def test_cancellation_closes_stream_and_reaches_on_error() -> None:
    gate = asyncio.Event()

    class Slow(ScriptedProvider):
        async def stream(self, request: Any, context: Any) -> Any:
            try:
                yield TextDelta("one")
                await gate.wait()
                yield TextDelta("never")
            finally:
                self.closed += 1

    provider = Slow("slow")
    recorder = Recorder()
    received: list[Any] = []

    async def consume() -> None:
        async for chunk in Pipeline(provider, middleware=[recorder]).stream("x"):
            received.append(chunk)

    task = asyncio.create_task(consume())
    for _ in range(100):
        if received:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert provider.closed == 1
    assert recorder.calls[-1] == "error:CancelledError"


async def test_error_mid_stream_keeps_what_arrived() -> None:
    script = [*_script()[:3], imagestream.StreamInterruptedError("connection lost", provider="s")]
    recorder = Recorder()
    pipe = Pipeline(
        ScriptedProvider("s", script), middleware=[recorder, imagestream.AnalyticsMiddleware()]
    )
    with pytest.raises(imagestream.StreamInterruptedError) as info:
        await pipe.agenerate("x")
    partial = info.value.partial
    assert partial is not None
    assert partial.text == "drawing"
    assert len(partial.previews) == 2
    assert partial.analytics is not None and partial.analytics.chunks["image_preview"] == 2
    assert recorder.calls[-1] == "error:StreamInterruptedError"


async def _drain(chunks: imagestream.ChunkStream) -> None:
    async with chunks:
        async for _ in chunks:
            pass


class _FreshPreviews(ScriptedProvider):
    """Streams ``count`` previews made as they are sent (it keeps none), then a final."""

    def __init__(self, count: int, end: BaseException | None = None) -> None:
        super().__init__("fresh")
        self.count = count
        self.end = end

    async def stream(self, request: Any, context: Any) -> Any:
        for index in range(self.count):
            await asyncio.sleep(0)
            yield ImagePreview(ImageData.from_bytes(make_png(8, 8)), index=index)
        if self.end is not None:
            raise self.end
        yield ImageFinal(ImageData.from_bytes(PNG))


async def test_a_stream_holds_only_its_latest_preview() -> None:
    # The loop is handed every preview; once it lets one go, nothing else
    # holds it: a run's memory does not grow with its previews.
    pipe = Pipeline(_FreshPreviews(5), middleware=[imagestream.AnalyticsMiddleware()])
    gone: list[weakref.ref[ImagePreview]] = []
    async with pipe.stream("x") as chunks:
        async for chunk in chunks:
            if isinstance(chunk, ImagePreview):
                gone.append(weakref.ref(chunk))
            del chunk
            gc.collect()
            assert all(ref() is None for ref in gone[:-1])
    result = chunks.result
    assert [preview.index for preview in result.previews] == [4]
    assert result.preview_count == 5 and len(result.images) == 1
    assert result.analytics is not None and result.analytics.chunks["image_preview"] == 5


async def test_generate_keeps_every_preview() -> None:
    result = await Pipeline(_FreshPreviews(5)).agenerate("x")
    assert [preview.index for preview in result.previews] == [0, 1, 2, 3, 4]
    assert result.preview_count == 5


async def test_a_stream_that_fails_keeps_its_latest_preview_for_the_error() -> None:
    lost = imagestream.StreamInterruptedError("connection lost", provider="fresh")
    pipe = Pipeline(_FreshPreviews(3, end=lost))
    with pytest.raises(imagestream.StreamInterruptedError) as info:
        await _drain(pipe.stream("x"))
    partial = info.value.partial
    assert partial is not None and partial.preview_count == 3
    assert [preview.index for preview in partial.previews] == [2]


async def test_a_run_without_an_image_counts_the_previews_that_came() -> None:
    pipe = Pipeline(ScriptedProvider("s", _script()[:3]))
    with pytest.raises(imagestream.NoImageError, match=r"\(2 preview\(s\) arrived\)"):
        await _drain(pipe.stream("x"))


async def test_on_request_can_refuse_before_the_provider_runs() -> None:
    provider = ScriptedProvider("s", _script())
    pipe = Pipeline(provider, middleware=[imagestream.Validation(blocklist=["forbidden"])])
    with pytest.raises(imagestream.ValidationError, match="forbidden"):
        await pipe.agenerate("something Forbidden here")
    assert provider.requests == []


async def test_on_request_can_rewrite_and_later_hooks_see_it() -> None:
    seen: list[str] = []

    class Upper:
        @imagestream.hookimpl
        def on_request(
            self, request: imagestream.ImageRequest, context: Any
        ) -> imagestream.ImageRequest:
            return attrs.evolve(request, prompt=request.prompt.upper())

    class Spy:
        @imagestream.hookimpl(trylast=True)
        def on_request(self, request: imagestream.ImageRequest, context: Any) -> None:
            seen.append(request.prompt)

    provider = ScriptedProvider("s", _script())
    await Pipeline(provider, middleware=[Spy(), Upper()]).agenerate("abc")
    assert seen == ["ABC"]
    assert provider.requests[0].prompt == "ABC"


async def test_postprocessors_chain_in_order() -> None:
    def first(image: ImageFinal, request: Any) -> ImageFinal:
        return attrs.evolve(image, extra={"order": ["first"]})

    async def second(image: ImageFinal, request: Any) -> ImageFinal:
        return attrs.evolve(image, extra={"order": [*image.extra["order"], "second"]})

    def untouched(image: ImageFinal, request: Any) -> None:
        return None

    pipe = Pipeline(ScriptedProvider("s", _script()), postprocessors=[first, untouched, second])
    result = await pipe.agenerate("x")
    assert result.images[0].extra["order"] == ["first", "second"]


async def test_saving_writes_each_final(tmp_path: Path) -> None:
    pipe = Pipeline(ScriptedProvider("s", _script()), saver=True)
    result = await pipe.agenerate("x", save=imagestream.SaveOptions(out_dir=tmp_path))
    assert len(result.saved) == 1
    saved = result.saved[0]
    assert saved.path.parent == tmp_path
    assert saved.path.suffix == ".png"
    assert saved.path.read_bytes() == PNG
    assert (saved.width, saved.height) == (16, 8)


async def test_failed_save_is_typed_and_keeps_the_image(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the directory should be")
    pipe = Pipeline(ScriptedProvider("s", _script()), saver=True)
    with pytest.raises(imagestream.SaveError) as info:
        await pipe.agenerate("x", save=imagestream.SaveOptions(out_dir=blocker / "sub"))
    assert info.value.partial is not None
    assert info.value.partial.images[0].image.data == PNG


async def test_custom_saver_function(tmp_path: Path) -> None:
    saved: list[ImageFinal] = []

    def saver(image: ImageFinal, options: imagestream.SaveOptions) -> imagestream.SavedImage:
        saved.append(image)
        return imagestream.SavedImage(
            path=tmp_path / "x.png", mime_type="image/png", bytes=1, sha256="0"
        )

    result = await Pipeline(ScriptedProvider("s", _script()), saver=saver).agenerate("x", save=True)
    assert len(saved) == 1 and result.saved[0].path.name == "x.png"


async def test_a_save_under_way_when_the_run_is_cancelled_is_still_recorded(
    tmp_path: Path,
) -> None:
    # A saver writing in a thread finishes its file whatever happens to the
    # task awaiting it: the run must record it, or Ctrl-C leaves a file on
    # disk that nothing names.
    import time

    loop = asyncio.get_running_loop()
    writing = asyncio.Event()

    def write() -> imagestream.SavedImage:
        loop.call_soon_threadsafe(writing.set)
        time.sleep(0.2)
        path = tmp_path / "x.png"
        path.write_bytes(PNG)
        return imagestream.SavedImage(path=path, mime_type="image/png", bytes=len(PNG), sha256="0")

    async def saver(image: ImageFinal, options: imagestream.SaveOptions) -> imagestream.SavedImage:
        return await asyncio.to_thread(write)

    chunks = Pipeline(ScriptedProvider("s", _script()), saver=saver).stream("x", save=True)

    async def consume() -> None:
        async with chunks:
            async for _ in chunks:
                pass

    task = asyncio.create_task(consume())
    await asyncio.wait_for(writing.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (tmp_path / "x.png").exists()
    assert [saved.path.name for saved in chunks.result.saved] == ["x.png"]


async def test_request_fields_and_options_are_split() -> None:
    provider = ScriptedProvider("s", _script())
    await Pipeline(provider, model="m1").agenerate("x", size="64x32", quality="high", stream="sse")
    request = provider.requests[0]
    assert request.model == "m1"
    assert request.size == "64x32"
    assert request.quality == "high"
    assert request.options == {"stream": "sse"}


async def test_private_pipeline_does_not_touch_global_plugins(imagestream_plugins: Any) -> None:
    recorder = Recorder()
    await Pipeline(ScriptedProvider("s", _script()), middleware=[recorder]).agenerate("x")
    names = {info.name for info in imagestream.get_plugin_manager().plugin_infos()}
    assert not any(name.startswith("Recorder") for name in names)


def test_sync_generate_refuses_inside_a_running_loop() -> None:
    async def inner() -> None:
        with pytest.raises(RuntimeError, match="agenerate"):
            Pipeline(ScriptedProvider("s", _script())).generate("x")

    asyncio.run(inner())


def test_sync_generate_works() -> None:
    result = Pipeline(ScriptedProvider("s", _script())).generate("x")
    assert len(result.images) == 1


async def test_disabled_fake_streaming_gives_a_clear_error(
    imagestream_plugins: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("IMAGESTREAM_DISABLE_PLUGINS", "fake_streaming")
    imagestream._plugins.reset_plugin_manager()
    response = ProviderResponse(images=[ImageFinal(ImageData.from_bytes(PNG))])
    imagestream_plugins.register_provider(ScriptedProvider("gen", response=response))
    with pytest.raises(imagestream.PluginError, match="fake_streaming"):
        await imagestream.agenerate("x", provider="gen")


async def test_global_api_uses_registered_provider(imagestream_plugins: Any) -> None:
    imagestream_plugins.register_provider(ScriptedProvider("mine", _script()))
    chunks = await imagestream_plugins.arun("x", provider="mine")
    assert len(chunks) == 5
    with pytest.raises(imagestream.UnknownProviderError, match="mine"):
        await imagestream.agenerate("x", provider="nope")


async def test_hook_implementations_are_called_however_they_take_their_arguments() -> None:
    """All of a hook's arguments, a subset, positional-only or by keyword: each gets its own."""
    seen: list[tuple[str, str]] = []

    class AllByName:
        @imagestream.hookimpl
        def on_chunk(self, chunk: Any, context: Any) -> None:
            seen.append(("all", chunk.kind))

    class Subset:
        @imagestream.hookimpl
        def on_chunk(self, chunk: Any) -> None:
            seen.append(("subset", chunk.kind))

    class PositionalOnly:
        @imagestream.hookimpl
        def on_chunk(self, chunk: Any, context: Any, /) -> None:
            seen.append(("positional", chunk.kind))

    class KeywordOrder:
        @imagestream.hookimpl
        def on_chunk(self, context: Any, chunk: Any) -> None:
            seen.append(("reordered", chunk.kind))

    pipeline = imagestream.Pipeline(
        ScriptedProvider("s", _script()),
        middleware=[AllByName(), Subset(), PositionalOnly(), KeywordOrder()],
    )
    kinds = [chunk.kind async for chunk in pipeline.stream("x")]
    assert kinds
    for name in ("all", "subset", "positional", "reordered"):
        assert [kind for who, kind in seen if who == name] == kinds, name
