"""Where a model comes from: a local folder, or a Hub id in the user's own cache.

Nothing here imports torch, diffusers or huggingface_hub: ``validate`` runs it
on the event loop, before any work, so that a model that is not there is a
:class:`~imagestream.ConfigurationError` at once, with how to get it.

The cache is found the way huggingface_hub finds it (``HF_HUB_CACHE``, else
``HF_HOME/hub``, else ``~/.cache/huggingface/hub``), read from the
environment at each request; ``HF_HUB_OFFLINE`` turns downloads off.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import attrs

from imagestream import ConfigurationError

__all__ = [
    "ModelSource",
    "downloads_disabled",
    "hub_cache_dir",
    "locate_model",
]

PROVIDER = "diffusers"

_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
_TRUE = frozenset({"1", "on", "yes", "true"})
_SINGLE_FILE = (".safetensors", ".ckpt", ".bin", ".pt", ".pth", ".gguf")


@attrs.frozen
class ModelSource:
    """A model found (or, with downloads allowed, to be fetched).

    Attributes:
        name: The model as the request named it.
        location: What ``from_pretrained`` is given: a folder or a Hub id.
        cache_dir: The Hub cache, for a Hub id; ``None`` for a folder.
        local_files_only: True unless downloads are allowed.
        class_name: The pipeline class ``model_index.json`` names, when read.
        folder: The folder the files are in, when they are on disk already.
        absent: The parts ``model_index.json`` lists as absent.
    """

    name: str
    location: str
    cache_dir: str | None
    local_files_only: bool
    class_name: str | None
    folder: Path | None
    absent: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """What identifies the model in the pipeline cache."""
        return self.location if self.cache_dir is None else f"{self.location}@{self.cache_dir}"


def hub_cache_dir() -> Path:
    """The Hugging Face Hub cache, as huggingface_hub reads it from the environment."""
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(variable):
            return Path(os.environ[variable]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "huggingface"
    )
    return Path(home).expanduser() / "hub"


def downloads_disabled() -> bool:
    """True when ``HF_HUB_OFFLINE`` says the Hub must not be asked."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def cached_snapshot(repo_id: str, cache_dir: Path, revision: str = "main") -> Path | None:
    """The snapshot folder of ``repo_id`` in the cache that holds a pipeline, if any."""
    folder = cache_dir / ("models--" + repo_id.replace("/", "--"))
    ref = folder / "refs" / revision
    if ref.is_file():
        snapshot = folder / "snapshots" / ref.read_text(encoding="utf-8").strip()
        if (snapshot / "model_index.json").is_file():
            return snapshot
    snapshots = folder / "snapshots"
    if snapshots.is_dir():
        for snapshot in sorted(snapshots.iterdir()):
            if (snapshot / "model_index.json").is_file():
                return snapshot
    return None


def _model_index(folder: Path) -> dict[str, object]:
    try:
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return index if isinstance(index, dict) else {}


def pipeline_class_name(folder: Path) -> str | None:
    """The ``_class_name`` of ``folder/model_index.json``; ``None`` if unreadable."""
    name = _model_index(folder).get("_class_name")
    return name if isinstance(name, str) else None


def absent_components(folder: Path) -> tuple[str, ...]:
    """The parts ``model_index.json`` lists as absent (``[null, null]``).

    A pipeline saved without one (SD3 without its T5 encoder, say) loads only
    when ``from_pretrained`` is told so with ``part=None``.
    """
    return tuple(
        sorted(
            name
            for name, value in _model_index(folder).items()
            if not name.startswith("_") and value == [None, None]
        )
    )


def _looks_like_a_path(name: str) -> bool:
    return (
        name.startswith(("/", ".", "~"))
        or "\\" in name
        or name.endswith("/")
        or name.count("/") > 1
        or name.lower().endswith(_SINGLE_FILE)
    )


def locate_model(name: str, *, download: bool) -> ModelSource:
    """Find ``name``: a diffusers folder, else a Hub id in the cache.

    Raises:
        ConfigurationError: No such folder, a folder that is not a diffusers
            pipeline, a single-file checkpoint, or a Hub id that is not in the
            cache while downloads are off; the hint says how to get it.
    """
    path = Path(name).expanduser()
    if path.exists():
        if path.is_file():
            raise ConfigurationError(
                f"{PROVIDER}: {name} is a single file, not a diffusers model folder",
                hint="give the folder that holds model_index.json (a pipeline saved with "
                "save_pretrained or downloaded from the Hub), or the model's Hub id",
            )
        if not (path / "model_index.json").is_file():
            raise ConfigurationError(
                f"{PROVIDER}: {name} has no model_index.json: it is not a diffusers pipeline folder",
                hint="give the folder a pipeline was saved to (save_pretrained), or the model's Hub id",
            )
        folder = path.resolve()
        return ModelSource(
            name=name,
            location=str(folder),
            cache_dir=None,
            local_files_only=True,
            class_name=pipeline_class_name(folder),
            folder=folder,
            absent=absent_components(folder),
        )
    if _looks_like_a_path(name) or not _REPO_ID.fullmatch(name):
        raise ConfigurationError(
            f"{PROVIDER}: no model folder {name}",
            hint="give a folder that holds model_index.json, or a Hub id such as "
            "stabilityai/stable-diffusion-xl-base-1.0",
        )
    cache_dir = hub_cache_dir()
    snapshot = cached_snapshot(name, cache_dir)
    if snapshot is None:
        if not download:
            raise ConfigurationError(
                f"{PROVIDER}: model {name} is not in the Hugging Face cache ({cache_dir}) "
                "and no folder of that name exists",
                hint=f"download it once with 'hf download {name}' (huggingface_hub's command), "
                "or pass -o download true; set HF_HOME or HF_HUB_CACHE if your cache is elsewhere",
            )
        if downloads_disabled():
            raise ConfigurationError(
                f"{PROVIDER}: model {name} is not in the Hugging Face cache ({cache_dir}) "
                "and HF_HUB_OFFLINE forbids downloading it",
                hint=f"unset HF_HUB_OFFLINE to let -o download true fetch it, or run 'hf download {name}' "
                "where the Hub can be reached",
            )
    return ModelSource(
        name=name,
        location=name,
        cache_dir=str(cache_dir),
        local_files_only=not download or downloads_disabled(),
        class_name=pipeline_class_name(snapshot) if snapshot is not None else None,
        folder=snapshot,
        absent=absent_components(snapshot) if snapshot is not None else (),
    )
