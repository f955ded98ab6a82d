"""Images a failed save would have lost, written somewhere they can be found.

The core keeps an image whose save failed in the error's partial result, which
a Python caller can still save; a person at the command line cannot. So the
CLI writes such images to a fallback folder and says where.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from .._result import GenerationResult
from .._saving import DEFAULT_OUT_DIR, default_name
from ..errors import ImagestreamError, SaveError

__all__ = ["rescue_unsaved"]


def _folders(failed: Path | None) -> list[Path]:
    folders = [DEFAULT_OUT_DIR, Path(tempfile.gettempdir()) / "imagestream-rescued"]
    if failed is not None:
        failed_dir = failed if failed.suffix == "" else failed.parent
        folders = [f for f in folders if f.resolve() != failed_dir.resolve()] or folders
    return folders


def rescue_unsaved(error: SaveError) -> list[Path]:
    """Write the final images of ``error.partial`` that were not saved; return their paths.

    Tries ``generated-images/`` in the current folder, then a folder in the
    system's temporary directory. The error's hint is extended to name them.
    """
    result = error.partial
    if not isinstance(result, GenerationResult):
        return []
    saved_samples = {saved.sample for saved in result.saved}
    written: list[Path] = []
    for image in result.images:
        if image.sample in saved_samples:
            continue
        name = default_name(image.image.mime_type, sample=image.sample)
        for folder in _folders(error.path):
            try:
                written.append(image.image.save(folder / name))
                break
            except (ImagestreamError, OSError, ValueError):
                continue
    if written:
        kept = ", ".join(str(path) for path in written)
        error.hint = f"{error.hint + '; ' if error.hint else ''}the image was kept at {kept}"
    return written
