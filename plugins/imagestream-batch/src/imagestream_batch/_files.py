"""Writing images and the results file so that no reader, and no crash, ever sees half of one.

Each file is written to a hidden temporary in the same directory
(``.<name>.<random>.batch-tmp``), flushed and fsynced, then renamed over its
final name. The rename is atomic: the name holds either the old file or the
whole new one. The directory's fsync, which makes the rename itself
durable, is done once per manifest commit for every file written before it
(see :mod:`imagestream_batch._manifest`), not once per file.

A process killed between writing a temporary and renaming it leaves the
temporary behind: :func:`remove_temporaries` clears them when the next run
starts.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["TMP_SUFFIX", "fsync_directory", "remove_temporaries", "write_atomic"]

TMP_SUFFIX = ".batch-tmp"
"""The suffix of this plugin's temporaries: nothing else in the output directory is touched."""


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``, atomically; the directory entry is made durable later."""
    directory = path.parent
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name[:100]}.", suffix=TMP_SUFFIX)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def fsync_directory(directory: Path) -> None:
    """Make the entries created in ``directory`` durable (where the platform allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_temporaries(directory: Path) -> int:
    """Delete the temporaries an interrupted run left in ``directory``; return how many."""
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return 0
    for entry in entries:
        if entry.name.startswith(".") and entry.name.endswith(TMP_SUFFIX) and entry.is_file():
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed += 1
    return removed
