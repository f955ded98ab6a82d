"""What is refused, and how: typed errors with a hint, before any work where that can be known."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import imagestream

SIZE = "64x64"


async def run(pipeline: imagestream.Pipeline, model: str, **params: Any) -> list[Any]:
    params.setdefault("steps", 2)
    params.setdefault("size", SIZE)
    async with pipeline.stream("a fox", model=model, **params) as stream:
        return [chunk async for chunk in stream]


def no_worker_started(before: set[int]) -> bool:
    return not [
        t
        for t in threading.enumerate()
        if t.name == "imagestream-diffusers" and t.ident not in before
    ]


def thread_ids() -> set[int]:
    return {t.ident for t in threading.enumerate() if t.ident is not None}


@pytest.fixture
def hf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face home of the test's own; the Hub is never asked."""
    home = tmp_path / "hf-home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


# -- the model -------------------------------------------------------------------


@pytest.mark.parametrize("model", ["/no/such/model-folder", "./models/missing", "~/nothing/here/x"])
async def test_a_missing_model_folder(pipeline: imagestream.Pipeline, model: str) -> None:
    before = thread_ids()
    with pytest.raises(imagestream.ConfigurationError) as caught:
        await run(pipeline, model)
    assert f"no model folder {model}" in caught.value.message
    assert "model_index.json" in (caught.value.hint or "")
    assert no_worker_started(before)


async def test_a_hub_id_that_is_not_in_the_cache(
    pipeline: imagestream.Pipeline, hf_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(imagestream.ConfigurationError) as caught:
        await run(pipeline, "someone/tiny-model")
    error = caught.value
    assert "someone/tiny-model is not in the Hugging Face cache" in error.message
    assert str(hf_home / "hub") in error.message
    assert "hf download someone/tiny-model" in (error.hint or "")
    assert "-o download true" in (error.hint or "")


async def test_downloading_is_refused_while_offline(
    pipeline: imagestream.Pipeline, hf_home: Path
) -> None:
    with pytest.raises(imagestream.ConfigurationError) as caught:
        await run(pipeline, "someone/tiny-model", download=True)
    assert "HF_HUB_OFFLINE" in caught.value.message


async def test_a_hub_id_is_loaded_from_the_users_cache(
    pipeline: imagestream.Pipeline, tiny_model: Path, hf_home: Path
) -> None:
    # The layout huggingface_hub writes: blobs aside, a snapshot per revision, refs/main.
    repo = hf_home / "hub" / "models--someone--tiny-sd"
    revision = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(tiny_model, repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)

    chunks = await run(pipeline, "someone/tiny-sd", seed=5)

    finals = [c for c in chunks if isinstance(c, imagestream.ImageFinal)]
    assert len(finals) == 1 and finals[0].seed == 5
    local = await run(pipeline, str(tiny_model), seed=5)
    assert finals[0].image.data == local[-1].image.data


async def test_a_single_file_checkpoint(pipeline: imagestream.Pipeline, tmp_path: Path) -> None:
    checkpoint = tmp_path / "model.safetensors"
    checkpoint.write_bytes(b"\0" * 16)
    with pytest.raises(imagestream.ConfigurationError) as caught:
        await run(pipeline, str(checkpoint))
    assert "single file" in caught.value.message


async def test_a_folder_that_is_not_a_pipeline(
    pipeline: imagestream.Pipeline, tiny_model: Path
) -> None:
    with pytest.raises(imagestream.ConfigurationError) as caught:
        await run(pipeline, str(tiny_model / "unet"))
    assert "no model_index.json" in caught.value.message


async def test_a_pipeline_that_does_not_draw_from_a_prompt(
    pipeline: imagestream.Pipeline, unconditional_model: Path
) -> None:
    with pytest.raises(imagestream.ConfigurationError) as caught:
        await run(pipeline, str(unconditional_model))
    assert "is a DDPMPipeline, which does not draw from a prompt" in caught.value.message
    assert "text-to-image" in (caught.value.hint or "")


async def test_a_broken_pipeline_folder(pipeline: imagestream.Pipeline, tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "model_index.json").write_text('{"_class_name": "NoSuchPipeline"}')
    with pytest.raises(imagestream.ConfigurationError) as caught:
        await run(pipeline, str(folder))
    assert "cannot load" in caught.value.message


async def test_no_model_at_all(
    pipeline: imagestream.Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IMAGESTREAM_DIFFUSERS_MODEL", raising=False)
    with pytest.raises(imagestream.ConfigurationError) as caught:
        await pipeline.agenerate("a fox")
    assert "no model named" in caught.value.message
    assert "IMAGESTREAM_DIFFUSERS_MODEL" in (caught.value.hint or "")


# -- options ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "error", "words"),
    [
        ({"guidance": 7}, imagestream.ConfigurationError, "did you mean 'guidance_scale'"),
        ({"preview": "full"}, imagestream.ConfigurationError, "unknown preview 'full'"),
        ({"dtype": "float8"}, imagestream.ConfigurationError, "unknown dtype"),
        ({"device": "gpu"}, imagestream.ConfigurationError, "unknown device 'gpu'"),
        ({"guidance_scale": "high"}, imagestream.ConfigurationError, "must be a number"),
        ({"guidance_scale": -1}, imagestream.ValidationError, "guidance_scale must be between"),
        ({"preview_size": 4}, imagestream.ValidationError, "preview_size must be between"),
        ({"strength": 0.5}, imagestream.ValidationError, "strength needs an image"),
        ({"size": "60x64"}, imagestream.ValidationError, "width 60 is not a multiple of 8"),
        ({"steps": 0}, imagestream.ValidationError, "steps must be between"),
        ({"seed": 2**64}, imagestream.ValidationError, "seed must be a whole number from 0"),
        ({"output_format": "gif"}, imagestream.ConfigurationError, "unknown output_format"),
        ({"image": "/no/such/picture.png"}, imagestream.ConfigurationError, "picture.png"),
    ],
)
async def test_refused_before_any_work(
    pipeline: imagestream.Pipeline,
    tiny_model: Path,
    params: dict[str, Any],
    error: type[Exception],
    words: str,
) -> None:
    before = thread_ids()
    with pytest.raises(error) as caught:
        await run(pipeline, str(tiny_model), **params)
    assert type(caught.value) is error
    assert words in str(caught.value)
    assert str(caught.value).startswith("diffusers: ")
    assert no_worker_started(before)


async def test_a_device_this_torch_does_not_have(
    pipeline: imagestream.Pipeline, tiny_model: Path, torch: Any
) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(imagestream.ConfigurationError) as caught:
        await run(pipeline, str(tiny_model), device="cuda")
    assert "device cuda asked for" in caught.value.message
    hint = caught.value.hint or ""
    assert "-o device cpu" in hint and "README" in hint


async def test_a_negative_prompt_as_a_field_or_an_option(
    pipeline: imagestream.Pipeline, tiny_model: Path
) -> None:
    model = str(tiny_model)
    as_field = await run(pipeline, model, seed=4, negative_prompt="blurry")
    as_option = await run(pipeline, model, seed=4, options={"negative_prompt": "blurry"})
    plain = await run(pipeline, model, seed=4)

    assert as_field[-1].image.data == as_option[-1].image.data
    assert as_field[-1].image.data != plain[-1].image.data
    with pytest.raises(imagestream.ValidationError, match="given twice"):
        await run(pipeline, model, negative_prompt="a", options={"negative_prompt": "b"})


async def test_a_missing_library(
    pipeline: imagestream.Pipeline, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # as if not installed
    with pytest.raises(imagestream.ConfigurationError) as caught:
        await run(pipeline, str(tiny_model))
    assert "transformers is not installed" in caught.value.message
    assert "README" in (caught.value.hint or "")


# -- out of memory ------------------------------------------------------------------


async def test_out_of_memory_is_typed_with_advice(
    pipeline: imagestream.Pipeline, tiny_model: Path, loaded_unet: Any, torch: Any
) -> None:
    from imagestream_diffusers import OutOfMemoryError

    await run(pipeline, str(tiny_model))  # loaded
    unet = loaded_unet()
    calls = []

    def fail(module: Any, args: Any) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    handle = unet.register_forward_pre_hook(fail)
    try:
        with pytest.raises(OutOfMemoryError) as caught:
            await run(pipeline, str(tiny_model), steps=4)
    finally:
        handle.remove()

    error = caught.value
    assert isinstance(error, imagestream.ProviderError)
    assert error.code == "out_of_memory" and error.provider == "diffusers"
    assert "out of memory" in error.message
    assert "smaller size" in (error.hint or "") and "dtype" in (error.hint or "")
    # What arrived before is kept: the first step's preview.
    assert error.partial is not None and len(error.partial.previews) == 1
    # The pipeline is still usable.
    after = await run(pipeline, str(tiny_model))
    assert isinstance(after[-1], imagestream.ImageFinal)


async def test_a_failure_inside_the_pipeline_is_a_provider_error(
    pipeline: imagestream.Pipeline, tiny_model: Path, loaded_unet: Any
) -> None:
    await run(pipeline, str(tiny_model))
    unet = loaded_unet()

    def fail(module: Any, args: Any) -> None:
        raise RuntimeError("something broke")

    handle = unet.register_forward_pre_hook(fail)
    try:
        with pytest.raises(imagestream.ProviderError) as caught:
            await run(pipeline, str(tiny_model))
    finally:
        handle.remove()
    assert "generation failed: RuntimeError: something broke" in caught.value.message


# -- staying light ------------------------------------------------------------------


def test_the_entry_module_and_validate_import_nothing_heavy(tiny_model: Path) -> None:
    script = (
        "import sys\n"
        "import imagestream_diffusers._plugin\n"
        "from imagestream import ImageRequest\n"
        "from imagestream_diffusers import DiffusersProvider\n"
        f"DiffusersProvider().validate(ImageRequest('a fox', model={str(tiny_model)!r}, steps=4))\n"
        "heavy = ('torch', 'diffusers', 'transformers', 'numpy', 'PIL', 'huggingface_hub',\n"
        "         'asyncio', 'aiohttp')\n"
        "print(','.join(sorted(m for m in heavy if m in sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == ""
