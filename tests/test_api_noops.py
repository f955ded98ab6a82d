"""The Python API refuses what it would otherwise silently ignore, and does what its arguments say.

Postprocessor results of every reasonable type, unmarked hook methods, a
saver that saves, Provider objects where names go, misspelt request fields,
the Middleware protocol, Pillow conversion, the public progress display and
the total deadline.
"""

from __future__ import annotations

import asyncio
import io
import math
import subprocess
import sys
import types
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

import imagestream
from imagestream import (
    APITimeoutError,
    ConfigurationError,
    ImageData,
    ImageFinal,
    ImagePreview,
    ImageRequest,
    Pipeline,
    PluginError,
    TextDelta,
    Usage,
    ValidationError,
)
from imagestream.provider import Options, Provider, RunContext
from imagestream.testing import ScriptedProvider, make_image, make_png

PNG = make_png(16, 8)


def _script() -> list[Any]:
    return [
        TextDelta("drawing"),
        ImagePreview(ImageData.from_bytes(PNG), index=0, step=0, total_steps=2),
        ImageFinal(ImageData.from_bytes(PNG), mime_type="image/png", width=16, height=8),
        Usage(input_tokens=1, output_tokens=2),
    ]


async def _final_after(postprocessor: Any, original: bytes = PNG) -> ImageFinal:
    chunks = [ImageFinal(ImageData.from_bytes(original), width=1, height=1)]
    result = await Pipeline(
        ScriptedProvider("s", chunks), postprocessors=[postprocessor]
    ).agenerate("x")
    assert len(result.images) == 1
    return result.images[0]


# -- 1. what a postprocessor may return -----------------------------------------


async def test_postprocessor_may_return_image_data() -> None:
    other = make_png(4, 2, rgb=(0, 0, 255))
    final = await _final_after(lambda image, request: ImageData.from_bytes(other))
    assert final.image.data == other
    assert (final.width, final.height, final.mime_type) == (4, 2, "image/png")


async def test_postprocessor_may_return_image_bytes() -> None:
    jpeg = make_image("jpeg", width=40, height=24)

    async def to_jpeg(image: ImageFinal, request: ImageRequest) -> bytes:
        return jpeg

    final = await _final_after(to_jpeg)
    assert final.image.data == jpeg
    assert (final.width, final.height, final.mime_type) == (40, 24, "image/jpeg")


async def test_postprocessor_returning_non_image_bytes_is_a_typed_error() -> None:
    with pytest.raises(imagestream.ImageValidationError, match="not an image") as info:
        await _final_after(lambda image, request: b"hello, not a picture")
    assert "lambda" in str(info.value)


async def test_postprocessor_may_return_a_pil_image_kept_in_the_original_format() -> None:
    from PIL import Image

    jpeg = make_image("jpeg", width=40, height=20)

    def shrink(image: ImageFinal, request: ImageRequest) -> Image.Image:
        return image.image.to_pil().resize((10, 5))

    final = await _final_after(shrink, original=jpeg)
    assert final.mime_type == "image/jpeg"
    assert (final.width, final.height) == (10, 5)
    assert Image.open(io.BytesIO(final.image.data)).size == (10, 5)


async def test_pil_image_the_original_format_cannot_hold_becomes_png() -> None:
    from PIL import Image

    jpeg = make_image("jpeg")
    rgba = Image.new("RGBA", (3, 3), (1, 2, 3, 4))  # JPEG has no alpha
    final = await _final_after(lambda image, request: rgba, original=jpeg)
    assert final.mime_type == "image/png"
    assert (final.width, final.height) == (3, 3)


async def test_postprocessor_returning_none_keeps_the_image() -> None:
    final = await _final_after(lambda image, request: None)
    assert final.image.data == PNG and final.width == 1


async def test_postprocessor_returning_anything_else_is_a_type_error_naming_it() -> None:
    def stringify(image: ImageFinal, request: ImageRequest) -> str:
        return "a picture"

    with pytest.raises(TypeError) as info:
        await _final_after(stringify)
    message = str(info.value)
    assert "stringify" in message
    assert "builtins.str" in message


async def test_a_plugins_postprocess_hook_may_return_bytes_too() -> None:
    other = make_png(3, 3)

    class Replace:
        @imagestream.hookimpl
        def postprocess(self, image: ImageFinal) -> bytes:
            return other

    class Wrong:
        @imagestream.hookimpl
        def postprocess(self, image: ImageFinal) -> int:
            return 7

    result = await Pipeline(ScriptedProvider("s", _script()), plugins=[Replace()]).agenerate("x")
    assert result.images[0].image.data == other
    with pytest.raises(TypeError, match=r"plugin 'Wrong-0'.*builtins\.int"):
        await Pipeline(ScriptedProvider("s", _script()), plugins=[Wrong()]).agenerate("x")


# -- 2. hook methods without @hookimpl, objects with no hook --------------------


class Unmarked:
    def on_chunk(self, chunk: Any, context: Any) -> None:
        pass


class HalfMarked:
    @imagestream.hookimpl
    def on_request(self, request: Any, context: Any) -> None:
        pass

    def on_result(self, result: Any, context: Any) -> None:
        pass

    def on_error(self, error: Any, context: Any) -> None:
        pass


@pytest.mark.parametrize("where", ["middleware", "plugins"])
def test_unmarked_hook_methods_are_refused_when_the_pipeline_is_built(where: str) -> None:
    with pytest.raises(PluginError) as info:
        Pipeline(ScriptedProvider("s"), **{where: [Unmarked()]})
    message = str(info.value)
    assert "on_chunk()" in message
    assert "@imagestream.hookimpl" in message


def test_the_error_names_every_unmarked_method_and_only_those() -> None:
    with pytest.raises(PluginError) as info:
        Pipeline(ScriptedProvider("s"), middleware=[HalfMarked()])
    message = str(info.value)
    assert "on_error(), on_result()" in message
    assert "on_request()" not in message


def test_an_object_with_no_hook_is_refused() -> None:
    class Nothing:
        def helper(self) -> None:
            pass

    with pytest.raises(PluginError, match="implements no imagestream hook"):
        Pipeline(ScriptedProvider("s"), middleware=[Nothing()])


def test_module_plugins_are_checked_for_the_functions_they_define() -> None:
    source = (
        "import imagestream\n"
        "from imagestream import stream  # imported, not a hook\n"
        "@imagestream.hookimpl\n"
        "def on_request(request, context):\n"
        "    return None\n"
    )
    good = types.ModuleType("good_plugin")
    exec(source, good.__dict__)
    Pipeline(ScriptedProvider("s"), plugins=[good])

    bad = types.ModuleType("bad_plugin")
    exec(source + "def on_error(error, context):\n    pass\n", bad.__dict__)
    with pytest.raises(PluginError, match=r"module 'bad_plugin' has on_error\(\)"):
        Pipeline(ScriptedProvider("s"), plugins=[bad])


def test_a_provider_given_as_middleware_is_refused() -> None:
    with pytest.raises(PluginError, match="is a provider"):
        Pipeline(middleware=[ScriptedProvider("s")])


def test_manager_with_plugins_of_its_own_is_refused() -> None:
    manager = imagestream.PluginManager()
    with pytest.raises(TypeError, match="manager"):
        Pipeline(manager=manager, middleware=[imagestream.Validation()])
    with pytest.raises(TypeError, match="manager"):
        Pipeline(manager=manager, saver=True)


# -- 3. a saver saves -------------------------------------------------------------


def _pngs(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.rglob("*.png")}


async def test_saver_true_saves_without_being_asked_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    pipe = Pipeline(ScriptedProvider("s", _script()), saver=True)
    result = await pipe.agenerate("x")
    assert len(result.saved) == 1
    assert _pngs(tmp_path) == {result.saved[0].path.name: PNG}

    chunks = [c async for c in pipe.stream("x")]
    assert len(chunks) == 4
    assert len(_pngs(tmp_path)) == 2

    unsaved = await pipe.agenerate("x", save=False)
    assert unsaved.saved == []
    assert len(_pngs(tmp_path)) == 2


def test_saver_true_saves_from_sync_generate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = Pipeline(ScriptedProvider("s", _script()), saver=True).generate("x")
    assert len(result.saved) == 1 and result.saved[0].path.exists()


async def test_a_saver_function_saves_by_default() -> None:
    seen: list[imagestream.SaveOptions] = []

    async def saver(image: ImageFinal, options: imagestream.SaveOptions) -> imagestream.SavedImage:
        seen.append(options)
        return imagestream.SavedImage(path=Path("x.png"), mime_type=None, bytes=1, sha256="0")

    pipe = Pipeline(ScriptedProvider("s", _script()), saver=saver)
    result = await pipe.agenerate("x")
    assert seen == [imagestream.SaveOptions()] and len(result.saved) == 1
    await pipe.agenerate("x", save=False)
    assert len(seen) == 1


def test_save_must_be_a_flag_or_save_options() -> None:
    with pytest.raises(TypeError, match="SaveOptions"):
        Pipeline(ScriptedProvider("s"), saver=True).stream("x", save="out/")


async def test_without_a_saver_nothing_is_saved_by_default() -> None:
    result = await Pipeline(ScriptedProvider("s", _script())).agenerate("x")
    assert result.saved == [] and result.save_errors == []


# -- 4. a Provider object wherever a provider name goes ------------------------------


async def test_provider_objects_are_accepted_by_the_global_api() -> None:
    provider = ScriptedProvider("not-installed-anywhere", _script())
    chunks = [c async for c in imagestream.stream("x", provider=provider)]
    assert len(chunks) == 4
    result = await imagestream.agenerate("y", provider=provider)
    assert result.provider == "not-installed-anywhere" and len(result.images) == 1
    assert [r.prompt for r in provider.requests] == ["x", "y"]
    assert provider.requests[0].provider == "not-installed-anywhere"
    assert imagestream.get_provider(provider) is provider


def test_provider_objects_are_accepted_by_sync_generate() -> None:
    provider = ScriptedProvider("elsewhere", _script())
    assert len(imagestream.generate("x", provider=provider).images) == 1


async def test_pipeline_stream_takes_a_provider_object_per_run() -> None:
    default, other = ScriptedProvider("a", _script()), ScriptedProvider("b", _script())
    pipe = Pipeline(default)
    result = await pipe.agenerate("x", provider=other)
    assert result.provider == "b"
    assert other.requests and not default.requests


async def test_anything_else_as_provider_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="int"):
        imagestream.stream("x", provider=42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"pass an instance, ScriptedProvider\(\)"):
        imagestream.get_provider(ScriptedProvider)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Pipeline(object())  # type: ignore[arg-type]


# -- 5. a misspelt request field is named --------------------------------------------


class Strict(ScriptedProvider):
    """Refuses unknown options with the kit's reader, as provider plugins do."""

    def validate(self, request: ImageRequest) -> ImageRequest:
        Options(request.options, provider=self.name, known=("style", "stream"))
        return request


class HandWritten(ScriptedProvider):
    def validate(self, request: ImageRequest) -> ImageRequest:
        unknown = sorted(set(request.options) - {"style"})
        if unknown:
            raise ConfigurationError(f"{self.name}: unknown option(s) {', '.join(unknown)}")
        return request


@pytest.mark.parametrize("kind", [Strict, HandWritten])
async def test_a_refused_option_named_like_a_request_field_gets_did_you_mean(kind: type) -> None:
    provider = kind("strict", _script())
    with pytest.raises(ConfigurationError) as info:
        await Pipeline(provider).agenerate("x", step=5)
    assert "did you mean 'steps'?" in str(info.value)
    assert provider.requests == []


async def test_every_misspelt_field_is_named() -> None:
    with pytest.raises(ConfigurationError) as info:
        await Pipeline(Strict("strict", _script())).agenerate("x", sead=1, negative="blur")
    message = str(info.value)
    assert "did you mean 'seed'?" in message
    assert "did you mean 'negative_prompt'?" in message


async def test_options_far_from_any_field_get_no_field_hint() -> None:
    with pytest.raises(ConfigurationError) as info:
        await Pipeline(Strict("strict", _script())).agenerate("x", colour="red")
    assert "request field" not in str(info.value)


async def test_an_accepted_option_named_like_a_field_is_left_alone() -> None:
    provider = ScriptedProvider("open", _script())  # takes any option
    await Pipeline(provider).agenerate("x", step=5)
    assert provider.requests[0].options == {"step": 5}


# -- 6. Middleware and Postprocessor are public types ----------------------------------


async def test_middleware_protocol_subclass_registers_only_what_it_overrides() -> None:
    seen: list[str] = []

    class Counter(imagestream.Middleware):
        @imagestream.hookimpl
        def on_chunk(self, chunk: imagestream.Chunk, context: RunContext) -> None:
            seen.append(chunk.kind)

    pipe = Pipeline(ScriptedProvider("s", _script()), middleware=[Counter()])
    hooks = {
        caller.name
        for caller in pipe.manager.get_hookcallers(pipe.manager.get_plugin("Counter-0")) or ()
    }
    assert hooks == {"on_chunk"}
    await pipe.agenerate("x")
    assert seen == ["text_delta", "image_preview", "image_final", "usage"]


def test_middleware_protocol_overrides_still_need_hookimpl() -> None:
    class Forgot(imagestream.Middleware):
        def on_result(self, result: imagestream.GenerationResult, context: RunContext) -> None:
            pass

    with pytest.raises(PluginError, match=r"on_result\(\)"):
        Pipeline(ScriptedProvider("s"), middleware=[Forgot()])


def test_postprocessor_type_is_exported() -> None:
    def keep(image: ImageFinal, request: ImageRequest) -> None:
        return None

    typed: imagestream.Postprocessor = keep
    assert callable(typed)
    assert "Middleware" in imagestream.__all__ and "Postprocessor" in imagestream.__all__


# -- 7. Pillow, optional ----------------------------------------------------------------


def test_from_pil_and_to_pil_round_trip() -> None:
    from PIL import Image

    picture = Image.new("RGB", (7, 5), (10, 20, 30))
    data = ImageData.from_pil(picture)
    assert data.mime_type == "image/png" and data.size == (7, 5)
    jpeg = ImageData.from_pil(picture, format="jpeg")
    assert jpeg.mime_type == "image/jpeg"
    assert ImageData.from_pil(picture, format="image/webp").mime_type == "image/webp"
    back = jpeg.to_pil()
    assert back.size == (7, 5) and back.format == "JPEG"
    # A picture opened from a file keeps its format by default.
    assert ImageData.from_pil(back).mime_type == "image/jpeg"


def test_from_pil_refuses_what_pillow_cannot_write() -> None:
    from PIL import Image

    with pytest.raises(ConfigurationError, match="RGBA"):
        ImageData.from_pil(Image.new("RGBA", (2, 2)), format="jpeg")
    with pytest.raises(ConfigurationError):
        ImageData.from_pil(Image.new("RGB", (2, 2)), format="no-such-format")
    with pytest.raises(TypeError, match="bytes"):
        ImageData.from_pil(PNG)  # type: ignore[arg-type]


def test_to_pil_of_a_non_image_is_a_typed_error() -> None:
    with pytest.raises(imagestream.ImageValidationError):
        ImageData.from_bytes(b"not an image").to_pil()


def test_without_pillow_the_error_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "PIL", None)
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    with pytest.raises(ConfigurationError, match="pip install pillow"):
        ImageData.from_bytes(PNG).to_pil()
    with pytest.raises(ConfigurationError, match="pip install pillow"):
        ImageData.from_pil(object())  # type: ignore[arg-type]


# -- 8. the progress display is public -------------------------------------------------------


def test_progress_display_is_public_and_the_cli_uses_the_same_one() -> None:
    from imagestream.cli._progress import ProgressDisplay as CliProgress
    from imagestream.progress import ProgressDisplay

    assert imagestream.ProgressDisplay is ProgressDisplay is CliProgress
    assert imagestream.show_progress is imagestream.progress.show_progress


def test_progress_draws_nothing_when_not_in_a_terminal_or_notebook() -> None:
    with imagestream.ProgressDisplay() as progress:  # pytest captures stderr
        assert progress.enabled is False
        for chunk in _script():
            progress.update(chunk)


def test_progress_draws_on_a_console_given_to_it() -> None:
    from rich.console import Console

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=80)
    with imagestream.ProgressDisplay(console=console, transient=False) as progress:
        assert progress.enabled is True
        for chunk in _script():
            progress.update(chunk)
    text = out.getvalue()
    assert "image 1" in text and "done" in text


async def test_show_progress_passes_chunks_through_and_keeps_the_result() -> None:
    from rich.console import Console

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=80)
    provider = ScriptedProvider("s", _script())
    stream = imagestream.show_progress(Pipeline(provider).stream("x"), console=console)
    assert isinstance(stream, imagestream.ChunkStream)
    kinds = [chunk.kind async for chunk in stream]
    assert kinds == ["text_delta", "image_preview", "image_final", "usage"]
    assert len(stream.result.images) == 1
    assert "image 1" in out.getvalue()


async def test_show_progress_over_any_iterable_closes_it_early() -> None:
    closed: list[bool] = []

    async def chunks() -> AsyncIterator[imagestream.Chunk]:
        try:
            for chunk in _script():
                yield chunk
        finally:
            closed.append(True)

    shown = imagestream.show_progress(chunks())
    assert not isinstance(shown, imagestream.ChunkStream)
    async for chunk in shown:
        assert chunk.kind == "text_delta"
        break
    await shown.aclose()  # type: ignore[attr-defined]
    assert closed == [True]


def test_importing_the_progress_module_loads_neither_rich_nor_the_pipeline() -> None:
    script = (
        "import sys, imagestream.progress\n"
        "loaded = [m for m in ('rich', 'imagestream._pipeline', 'aiohttp') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


# -- 9. a deadline for the whole run ----------------------------------------------------------


def test_deadline_is_off_by_default_and_validated() -> None:
    assert ImageRequest("x").deadline is None
    assert ImageRequest("x", deadline=5).deadline == 5.0
    for bad in (0, -1, math.inf, math.nan):
        with pytest.raises(ValidationError, match="deadline"):
            ImageRequest("x", deadline=bad)
    for unreadable in ("5", True):
        with pytest.raises(ConfigurationError, match="deadline"):
            ImageRequest("x", deadline=unreadable)  # type: ignore[arg-type]


class Slow(Provider):
    """Sends a text and a preview, then takes far too long."""

    name: ClassVar[str] = "slow"

    def __init__(self, pause: float = 30.0) -> None:
        self.pause = pause
        self.closed = False

    async def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Any]:
        try:
            yield TextDelta("thinking")
            yield ImagePreview(ImageData.from_bytes(PNG), index=0)
            await asyncio.sleep(self.pause)
            yield ImageFinal(ImageData.from_bytes(PNG))
        finally:
            self.closed = True


async def test_a_run_past_its_deadline_fails_with_what_arrived() -> None:
    provider = Slow()
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(APITimeoutError) as info:
        await Pipeline(provider).agenerate("x", deadline=0.2)
    assert loop.time() - started < 5
    error = info.value
    assert "deadline of 0.2s" in str(error)
    assert error.provider == "slow"
    assert error.partial is not None
    assert error.partial.text == "thinking"
    assert len(error.partial.previews) == 1 and error.partial.images == []
    assert provider.closed


async def test_a_run_within_its_deadline_is_untouched() -> None:
    result = await Pipeline(Slow(pause=0.01)).agenerate("x", deadline=10)
    assert len(result.images) == 1


async def test_the_deadline_counts_the_time_queued_for_a_slot() -> None:
    class OneAtATime(Slow):
        max_concurrency: ClassVar[int | None] = 1

    provider = OneAtATime(pause=1.0)
    pipe = Pipeline(provider)
    first = asyncio.ensure_future(pipe.agenerate("first"))
    await asyncio.sleep(0.05)  # the first run holds the only slot
    with pytest.raises(APITimeoutError) as info:
        await pipe.agenerate("second", deadline=0.1)
    assert info.value.partial is not None and info.value.partial.text == ""
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_slow_consumer_gets_the_timeout_error_not_a_cancellation() -> None:
    class Ticking(Provider):
        name: ClassVar[str] = "ticking"

        async def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Any]:
            for number in range(3):
                await asyncio.sleep(0.01)
                yield TextDelta(str(number))

    seen = []

    async def consume() -> None:
        async for chunk in Pipeline(Ticking()).stream("x", deadline=0.1):
            seen.append(chunk)
            await asyncio.sleep(0.2)  # the consumer's own time counts too

    with pytest.raises(APITimeoutError) as info:
        await consume()
    assert len(seen) == 1
    assert info.value.partial is not None and info.value.partial.text == "0"
    # The task was not left cancelled: it can go on awaiting.
    await asyncio.sleep(0)
    current = asyncio.current_task()
    assert current is not None and current.cancelling() == 0


async def test_leaving_early_under_a_deadline_closes_the_provider() -> None:
    provider = Slow()
    stream = Pipeline(provider).stream("x", deadline=5)
    async with stream:
        async for chunk in stream:
            assert chunk.kind == "text_delta"
            break
    assert provider.closed


async def test_the_provider_own_timeout_errors_are_not_taken_for_the_deadline() -> None:
    class Raises(Provider):
        name: ClassVar[str] = "raises"

        async def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Any]:
            raise TimeoutError("the provider's own")
            yield  # pragma: no cover

    with pytest.raises(TimeoutError, match="provider's own") as info:
        await Pipeline(Raises()).agenerate("x", deadline=10)
    assert not isinstance(info.value, APITimeoutError)
