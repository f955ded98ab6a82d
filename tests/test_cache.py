"""The generation cache: replay of identical seeded runs, what misses, what is never stored, the store, the CLI."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import imagestream
from imagestream import (
    ImageData,
    ImageFinal,
    ImagePreview,
    ImageRequest,
    Pipeline,
    ProviderResponse,
    SaveOptions,
    TextDelta,
    Usage,
)
from imagestream._builtins.cache import cache_key
from imagestream._cachestore import CacheStore, parse_byte_size
from imagestream._plugins import reset_plugin_manager
from imagestream.testing import ScriptedProvider, make_png

PNG_A = make_png(16, 8, (255, 0, 0))
PNG_B = make_png(16, 8, (0, 0, 255))
PNG_FINAL = make_png(32, 16, (0, 255, 0))


def _script(cost: float | None = 0.04) -> list[Any]:
    return [
        TextDelta("drawing"),
        ImagePreview(ImageData.from_bytes(PNG_A), index=0, step=0, total_steps=2),
        ImagePreview(ImageData.from_bytes(PNG_B), index=1, step=1, total_steps=2),
        ImageFinal(ImageData.from_bytes(PNG_FINAL), seed=7, extra={"quality": "high"}),
        Usage(input_tokens=4, output_tokens=10, cost_usd=cost, raw={"total": 14}),
    ]


class SlowProvider(ScriptedProvider):
    """A streaming provider that takes a while before its first chunk, like a real one."""

    def __init__(self, delay: float = 0.3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delay = delay

    async def stream(self, request: ImageRequest, context: Any) -> AsyncIterator[Any]:
        await asyncio.sleep(self.delay)
        async for chunk in super().stream(request, context):
            yield chunk


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv("IMAGESTREAM_CACHE_DIR", str(directory))
    monkeypatch.delenv("IMAGESTREAM_CACHE_MAX_BYTES", raising=False)
    return directory


def _entries(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.msgpack")) if directory.exists() else []


# -- replay --------------------------------------------------------------------


async def test_second_identical_run_is_replayed_without_the_provider(cache_dir: Path) -> None:
    provider = SlowProvider(delay=0.3, name="slow", chunks=_script())
    pipe = Pipeline(provider, middleware=[imagestream.AnalyticsMiddleware()])

    started = time.perf_counter()
    first = await pipe.agenerate("a red circle", seed=7, cache=True)
    first_s = time.perf_counter() - started
    assert len(provider.requests) == 1
    assert not first.replayed
    assert len(_entries(cache_dir)) == 1

    started = time.perf_counter()
    second = await pipe.agenerate("a red circle", seed=7, cache=True)
    replay_s = time.perf_counter() - started

    assert len(provider.requests) == 1, "the provider was called again"
    assert provider.closed == 1
    assert replay_s < 0.1, f"replay took {replay_s:.3f} s"
    assert first_s >= 0.3
    assert second.replayed
    assert second.image is not None and first.image is not None
    assert second.image.image.data == first.image.image.data == PNG_FINAL
    assert [p.image.data for p in second.previews] == [PNG_A, PNG_B]
    assert second.text == "drawing"
    # Every image chunk says where it came from; the first run's did not.
    assert all(p.extra.get("replayed") is True for p in second.previews)
    assert second.image.extra == {"quality": "high", "replayed": True}
    assert second.image.seed == 7
    assert "replayed" not in first.image.extra
    # Nothing was billed: cost 0, the original kept beside it.
    assert second.usage is not None
    assert second.usage.cost_usd == 0.0
    assert second.usage.input_tokens == 4
    assert second.usage.raw == {"total": 14, "replayed": {"original_cost_usd": 0.04}}
    assert second.analytics is not None and second.analytics.cost_usd == 0.0
    assert first.analytics is not None and first.analytics.cost_usd == 0.04


async def test_replayed_chunks_come_in_the_stored_order(cache_dir: Path) -> None:
    provider = ScriptedProvider("s", _script())
    pipe = Pipeline(provider)
    first = [c async for c in pipe.stream("x", seed=1, cache=True)]
    second = [c async for c in pipe.stream("x", seed=1, cache=True)]
    assert [c.kind for c in second] == [c.kind for c in first]
    assert len(provider.requests) == 1


async def test_original_cost_comes_from_the_price_table_when_not_reported(
    cache_dir: Path,
) -> None:
    class Priced(ScriptedProvider):
        default_model = "m"
        models = (imagestream.ModelInfo("m", pricing=imagestream.Pricing(per_image=0.5)),)

    provider = Priced("p", _script(cost=None))
    pipe = Pipeline(provider, middleware=[imagestream.AnalyticsMiddleware()])
    await pipe.agenerate("x", seed=1, cache=True)
    second = await pipe.agenerate("x", seed=1, cache=True)
    assert second.usage is not None
    assert second.usage.cost_usd == 0.0
    assert second.usage.raw["replayed"] == {"original_cost_usd": 0.5}
    assert second.analytics is not None and second.analytics.cost_usd == 0.0


async def test_replayed_finals_go_through_postprocess_and_saving(
    cache_dir: Path, tmp_path: Path
) -> None:
    seen: list[bool] = []

    def postprocess(image: ImageFinal, request: ImageRequest) -> None:
        seen.append(bool(image.extra.get("replayed")))

    provider = ScriptedProvider("s", _script())
    pipe = Pipeline(provider, postprocessors=[postprocess], saver=True)
    out = SaveOptions(out_dir=tmp_path / "out")
    first = await pipe.agenerate("x", seed=3, cache=True, save=out)
    second = await pipe.agenerate("x", seed=3, cache=True, save=out)
    assert second.replayed
    assert seen == [False, True]
    assert len(first.saved) == len(second.saved) == 1
    assert first.saved[0].path != second.saved[0].path
    assert second.saved[0].path.read_bytes() == PNG_FINAL
    assert len(provider.requests) == 1


async def test_a_provider_that_only_generates_is_cached_too(cache_dir: Path) -> None:
    response = ProviderResponse(
        images=[ImageFinal(ImageData.from_bytes(PNG_FINAL))], text="a caption"
    )
    provider = ScriptedProvider("g", response=response)
    pipe = Pipeline(provider)
    await pipe.agenerate("x", seed=1, cache=True)
    chunks = [c async for c in pipe.stream("x", seed=1, cache=True)]
    assert len(provider.requests) == 1
    assert [type(c) for c in chunks] == [TextDelta, ImageFinal]
    assert all(c.synthetic for c in chunks)
    final = chunks[1]
    assert isinstance(final, ImageFinal) and final.extra["replayed"] is True


# -- what misses ---------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"prompt": "a blue circle"},
        {"seed": 8},
        {"style": "ink"},
        {"model": "other"},
        {"size": "512x512"},
        {"steps": 4},
        {"n": 2},
        {"negative_prompt": "red"},
        {"base_url": "http://127.0.0.1:9/other"},
    ],
    ids=lambda change: next(iter(change)),
)
async def test_a_different_request_misses(cache_dir: Path, change: dict[str, Any]) -> None:
    provider = ScriptedProvider("s", _script())
    pipe = Pipeline(provider)
    base: dict[str, Any] = {"prompt": "a red circle", "seed": 7, "base_url": "http://127.0.0.1:9"}
    await pipe.agenerate(**base, cache=True)
    result = await pipe.agenerate(**{**base, **change}, cache=True)
    assert not result.replayed
    assert len(provider.requests) == 2
    assert len(_entries(cache_dir)) == 2


async def test_key_timeout_and_credentials_do_not_matter(cache_dir: Path) -> None:
    provider = ScriptedProvider("s", _script())
    pipe = Pipeline(provider)
    await pipe.agenerate(
        "x", seed=1, api_key="sk-one", timeout=5, base_url="http://a:b@127.0.0.1:9/", cache=True
    )
    result = await pipe.agenerate(
        "x", seed=1, api_key="sk-two", timeout=60, base_url="http://127.0.0.1:9", cache=True
    )
    assert result.replayed
    assert len(provider.requests) == 1


async def test_the_providers_default_model_is_the_model(cache_dir: Path) -> None:
    class WithDefault(ScriptedProvider):
        default_model = "m1"

    provider = WithDefault("d", _script())
    pipe = Pipeline(provider)
    await pipe.agenerate("x", seed=1, cache=True)
    assert (await pipe.agenerate("x", seed=1, model="m1", cache=True)).replayed
    assert not (await pipe.agenerate("x", seed=1, model="m2", cache=True)).replayed


def test_an_input_file_is_keyed_by_its_content(tmp_path: Path) -> None:
    provider = ScriptedProvider("s")
    photo = tmp_path / "photo.png"
    photo.write_bytes(PNG_A)
    as_path = ImageRequest("x", seed=1, options={"image": photo})
    as_text = ImageRequest("x", seed=1, options={"image": str(photo)})
    before = (cache_key(as_path, provider), cache_key(as_text, provider))
    photo.write_bytes(PNG_B)
    after = (cache_key(as_path, provider), cache_key(as_text, provider))
    assert before[0] != after[0]
    assert before[1] != after[1]
    # Payloads in memory are keyed by their content too.
    as_bytes = ImageRequest("x", seed=1, options={"image": PNG_B})
    assert cache_key(as_bytes, provider) == cache_key(
        ImageRequest("x", seed=1, options={"image": bytearray(PNG_B)}), provider
    )
    assert cache_key(as_bytes, provider) != cache_key(
        ImageRequest("x", seed=1, options={"image": PNG_A}), provider
    )
    as_image = ImageRequest("x", seed=1, options={"image": ImageData.from_bytes(PNG_B)})
    assert cache_key(as_image, provider) == cache_key(
        ImageRequest(
            "x", seed=1, options={"image": ImageData.from_base64(as_image.options["image"].b64)}
        ),
        provider,
    )


def test_values_of_different_types_give_different_keys() -> None:
    provider = ScriptedProvider("s")
    keys = {
        cache_key(ImageRequest("x", seed=1, options={"v": value}), provider)
        for value in (1, 1.0, True, "1", [1], (1,), {"1": 1}, None)
    }
    assert len(keys) == 7  # [1] and (1,) are the same list of options


async def test_an_option_the_key_cannot_describe_is_not_cached(cache_dir: Path) -> None:
    provider = ScriptedProvider("s", _script())
    pipe = Pipeline(provider)
    for _ in range(2):
        result = await pipe.agenerate("x", seed=1, cache=True, thing=object())
        assert not result.replayed
    assert len(provider.requests) == 2
    assert _entries(cache_dir) == []


# -- what is never stored --------------------------------------------------------


async def test_without_a_seed_nothing_is_cached(
    cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    provider = ScriptedProvider("s", _script())
    pipe = Pipeline(provider)
    with caplog.at_level(logging.DEBUG, logger="imagestream"):
        for _ in range(2):
            assert not (await pipe.agenerate("x", cache=True)).replayed
    assert len(provider.requests) == 2
    assert _entries(cache_dir) == []
    assert "no seed" in caplog.text


async def test_without_the_switch_nothing_is_cached(cache_dir: Path) -> None:
    provider = ScriptedProvider("s", _script())
    pipe = Pipeline(provider)
    await pipe.agenerate("x", seed=1)
    await pipe.agenerate("x", seed=1, cache=False)
    assert len(provider.requests) == 2
    assert _entries(cache_dir) == []


async def test_the_switch_can_be_a_pipeline_default(cache_dir: Path) -> None:
    provider = ScriptedProvider("s", _script())
    pipe = Pipeline(provider, cache=True, seed=5)
    await pipe.agenerate("x")
    assert (await pipe.agenerate("x")).replayed
    assert len(provider.requests) == 1


async def test_a_failed_run_stores_nothing(cache_dir: Path) -> None:
    script = [*_script()[:3], imagestream.ServerError("boom")]
    provider = ScriptedProvider("s", script)
    pipe = Pipeline(provider)
    for _ in range(2):
        with pytest.raises(imagestream.ServerError):
            await pipe.agenerate("x", seed=1, cache=True)
    assert len(provider.requests) == 2
    assert _entries(cache_dir) == []


async def test_a_run_refused_by_middleware_stores_nothing(cache_dir: Path) -> None:
    class RefuseFinals:
        @imagestream.hookimpl
        def on_chunk(self, chunk: Any, context: Any) -> None:
            if isinstance(chunk, ImageFinal):
                raise imagestream.ImageValidationError("no")

    provider = ScriptedProvider("s", _script())
    with pytest.raises(imagestream.ImageValidationError):
        await Pipeline(provider, middleware=[RefuseFinals()]).agenerate("x", seed=1, cache=True)
    assert _entries(cache_dir) == []


async def test_an_early_close_stores_nothing(cache_dir: Path) -> None:
    provider = ScriptedProvider("s", _script())
    pipe = Pipeline(provider)
    stream = pipe.stream("x", seed=1, cache=True)
    async with stream:
        async for chunk in stream:
            if isinstance(chunk, ImagePreview):
                break
    assert provider.closed == 1
    assert _entries(cache_dir) == []
    assert not (await pipe.agenerate("x", seed=1, cache=True)).replayed
    assert len(provider.requests) == 2


async def test_an_early_close_of_a_replay_is_fine(cache_dir: Path) -> None:
    provider = ScriptedProvider("s", _script())
    pipe = Pipeline(provider)
    await pipe.agenerate("x", seed=1, cache=True)
    stream = pipe.stream("x", seed=1, cache=True)
    async with stream:
        async for chunk in stream:
            assert isinstance(chunk, TextDelta)
            break
    assert len(_entries(cache_dir)) == 1
    assert (await pipe.agenerate("x", seed=1, cache=True)).replayed


# -- the store ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    [b"", b"\xc1not msgpack", b"\x92\x01\x02", b"\x81\xa6format\x01", None],
    ids=["empty", "invalid", "a-list", "no-chunks", "truncated"],
)
async def test_a_corrupt_entry_is_deleted_and_missed(
    cache_dir: Path, caplog: pytest.LogCaptureFixture, garbage: bytes | None
) -> None:
    provider = ScriptedProvider("s", _script())
    pipe = Pipeline(provider)
    await pipe.agenerate("x", seed=1, cache=True)
    (entry,) = _entries(cache_dir)
    good = entry.read_bytes()
    entry.write_bytes(good[: len(good) // 2] if garbage is None else garbage)
    with caplog.at_level(logging.DEBUG, logger="imagestream"):
        result = await pipe.agenerate("x", seed=1, cache=True)
    assert not result.replayed
    assert len(provider.requests) == 2
    assert "corrupt entry" in caplog.text
    assert entry in _entries(cache_dir)  # stored anew by the run that missed
    assert (await pipe.agenerate("x", seed=1, cache=True)).replayed


async def test_a_chunk_from_an_unknown_type_is_corrupt_too(cache_dir: Path) -> None:
    import msgpack

    provider = ScriptedProvider("s", _script())
    pipe = Pipeline(provider)
    await pipe.agenerate("x", seed=1, cache=True)
    (entry,) = _entries(cache_dir)
    record = msgpack.unpackb(entry.read_bytes())
    record["chunks"].append({"type": "hologram"})
    entry.write_bytes(msgpack.packb(record))
    assert not (await pipe.agenerate("x", seed=1, cache=True)).replayed
    assert len(provider.requests) == 2


def _digest(n: int) -> str:
    return f"{n:064x}"


def _fill(store: CacheStore, n: int) -> None:
    final = ImageFinal(ImageData.from_bytes(PNG_FINAL))
    assert store.save(_digest(n), [final])


def test_least_recently_used_entries_go_first(tmp_path: Path) -> None:
    store = CacheStore(tmp_path / "c", max_bytes=10**9)
    for n in range(3):
        _fill(store, n)
    size = store.path_for(_digest(0)).stat().st_size
    now = time.time()
    for n in range(3):  # 0 oldest, 2 newest
        os.utime(store.path_for(_digest(n)), (now - 100 + n, now - 100 + n))
    assert store.load(_digest(0)) is not None  # a hit makes 0 the most recent
    assert store.path_for(_digest(0)).stat().st_mtime > now - 50
    store.max_bytes = 3 * size
    _fill(store, 3)  # one too many: the least recently used, 1, goes
    left = {p.name[:64] for p in _entries(store.directory)}
    assert left == {_digest(0), _digest(2), _digest(3)}
    assert store.stats().bytes <= store.max_bytes


async def test_the_cap_comes_from_the_environment(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = ScriptedProvider("s", _script())
    pipe = Pipeline(provider)
    await pipe.agenerate("x", seed=1, cache=True)
    (entry,) = _entries(cache_dir)
    monkeypatch.setenv("IMAGESTREAM_CACHE_MAX_BYTES", str(entry.stat().st_size * 2 + 10))
    old = time.time() - 100
    os.utime(entry, (old, old))
    await pipe.agenerate("x", seed=2, cache=True)
    await pipe.agenerate("x", seed=3, cache=True)  # evicts seed 1, the oldest
    assert len(_entries(cache_dir)) == 2
    assert entry not in _entries(cache_dir)
    assert (await pipe.agenerate("x", seed=3, cache=True)).replayed
    assert not (await pipe.agenerate("x", seed=1, cache=True)).replayed


async def test_an_entry_over_the_cap_is_not_stored(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGESTREAM_CACHE_MAX_BYTES", "100")
    pipe = Pipeline(ScriptedProvider("s", _script()))
    await pipe.agenerate("x", seed=1, cache=True)
    assert _entries(cache_dir) == []


async def test_a_malformed_cap_is_a_configuration_error(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGESTREAM_CACHE_MAX_BYTES", "lots")
    provider = ScriptedProvider("s", _script())
    with pytest.raises(imagestream.ConfigurationError, match="IMAGESTREAM_CACHE_MAX_BYTES"):
        await Pipeline(provider).agenerate("x", seed=1, cache=True)
    assert provider.requests == []


def test_byte_sizes() -> None:
    assert parse_byte_size("1024") == 1024
    assert parse_byte_size("512M") == 512 * 2**20
    assert parse_byte_size(" 2 GiB ") == 2 * 2**30
    assert parse_byte_size("64k") == 64 * 2**10
    with pytest.raises(imagestream.ConfigurationError):
        parse_byte_size("-1")


async def test_an_unwritable_directory_is_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("IMAGESTREAM_CACHE_DIR", str(blocker / "cache"))
    provider = ScriptedProvider("s", _script())
    pipe = Pipeline(provider)
    assert (await pipe.agenerate("x", seed=1, cache=True)).image is not None
    assert not (await pipe.agenerate("x", seed=1, cache=True)).replayed
    assert len(provider.requests) == 2


def test_the_default_directory_is_the_user_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    import platformdirs

    monkeypatch.delenv("IMAGESTREAM_CACHE_DIR", raising=False)
    store = CacheStore.from_env()
    assert store.directory == Path(platformdirs.user_cache_dir("imagestream")) / "generations"


# -- switching it off --------------------------------------------------------------


async def test_the_global_api_caches(imagestream_plugins: Any, cache_dir: Path) -> None:
    provider = ScriptedProvider("scripted-cache", _script())
    imagestream_plugins.register_provider(provider)
    await imagestream.agenerate("x", provider="scripted-cache", seed=1, cache=True)
    result = await imagestream.agenerate("x", provider="scripted-cache", seed=1, cache=True)
    assert result.replayed
    assert len(provider.requests) == 1


async def test_disabling_the_plugin_makes_the_switch_do_nothing(
    imagestream_plugins: Any, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGESTREAM_DISABLE_PLUGINS", "cache")
    reset_plugin_manager()
    provider = ScriptedProvider("scripted-cache", _script())
    imagestream_plugins.register_provider(provider)
    statuses = {i.name: i.status for i in imagestream.get_plugin_manager().plugin_infos()}
    assert statuses["cache"] == "disabled"
    for _ in range(2):
        result = await imagestream.agenerate("x", provider="scripted-cache", seed=1, cache=True)
        assert not result.replayed
    assert len(provider.requests) == 2
    assert _entries(cache_dir) == []


async def test_a_pipeline_can_block_it(cache_dir: Path) -> None:
    provider = ScriptedProvider("s", _script())
    pipe = Pipeline(provider)
    pipe.manager.set_blocked("cache")
    await pipe.agenerate("x", seed=1, cache=True)
    await pipe.agenerate("x", seed=1, cache=True)
    assert len(provider.requests) == 2
    assert _entries(cache_dir) == []


# -- the command line --------------------------------------------------------------


def test_cli_info_and_clear(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from imagestream.cli import main

    monkeypatch.setenv("IMAGESTREAM_CACHE_MAX_BYTES", "64M")
    runner = CliRunner()

    empty = runner.invoke(main, ["cache", "info", "--json"])
    assert empty.exit_code == 0, empty.output
    assert json.loads(empty.output) == {
        "path": str(cache_dir),
        "entries": 0,
        "bytes": 0,
        "max_bytes": 64 * 2**20,
        "disabled": False,
    }

    pipe = Pipeline(ScriptedProvider("s", _script()))
    for seed in (1, 2):
        pipe.generate("x", seed=seed, cache=True)
    total = sum(p.stat().st_size for p in _entries(cache_dir))

    info = runner.invoke(main, ["cache", "info", "--json"])
    assert info.exit_code == 0, info.output
    data = json.loads(info.output)
    assert (data["entries"], data["bytes"]) == (2, total)

    text = runner.invoke(main, ["cache", "info"])
    assert text.exit_code == 0, text.output
    assert str(cache_dir) in text.output
    assert "entries: 2" in text.output
    assert "64.0 MiB" in text.output

    cleared = runner.invoke(main, ["cache", "clear"])
    assert cleared.exit_code == 0, cleared.output
    assert "removed 2 entries" in cleared.output
    assert _entries(cache_dir) == []

    again = runner.invoke(main, ["cache", "clear"])
    assert "removed 0 entries" in again.output


def test_cli_info_says_when_the_plugin_is_disabled(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imagestream.cli import main

    monkeypatch.setenv("IMAGESTREAM_DISABLE_PLUGINS", "analytics, cache")
    result = CliRunner().invoke(main, ["cache", "info"])
    assert result.exit_code == 0, result.output
    assert "IMAGESTREAM_DISABLE_PLUGINS" in result.output


def test_cli_reports_a_malformed_cap(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from imagestream.cli import main

    monkeypatch.setenv("IMAGESTREAM_CACHE_MAX_BYTES", "lots")
    result = CliRunner().invoke(main, ["cache", "info"])
    assert result.exit_code == 1
    assert "IMAGESTREAM_CACHE_MAX_BYTES" in result.output
