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

The images of an earlier version of a request (a line that changed, run
again with ``--rerun-changed``) are never deleted: :func:`set_aside` moves
them into ``replaced/`` in the output directory, under the next free name
there, just before the new version's images are written.
"""

from __future__ import annotations

import contextlib
import errno
import filecmp
import hashlib
import os
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "REPLACED_DIR",
    "TMP_SUFFIX",
    "fsync_directory",
    "remove_temporaries",
    "set_aside",
    "write_atomic",
]

TMP_SUFFIX = ".batch-tmp"
"""The suffix of this plugin's temporaries: nothing else in the output directory is touched."""

REPLACED_DIR = "replaced"
"""The folder of the output directory that keeps the images a rerun of a changed line replaced."""

_MAX_VERSIONS = 10_000
"""Names tried in ``replaced/`` for one file (``a.png``, ``a-1.png``, ...) before giving up."""

_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}


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
    """Delete the temporaries an interrupted run left in ``directory`` and its ``replaced/``."""
    removed = 0
    entries: list[os.DirEntry[str]] = []
    for folder in (directory, directory / REPLACED_DIR):
        with contextlib.suppress(OSError):
            entries += os.scandir(folder)
    for entry in entries:
        if entry.name.startswith(".") and entry.name.endswith(TMP_SUFFIX) and entry.is_file():
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed += 1
    return removed


def set_aside(out_dir: Path, earlier: Sequence[tuple[str, str | None]]) -> list[str]:
    """Move the files of an earlier version of a request into ``out_dir/replaced/``; return where.

    ``earlier`` holds ``(file name, sha256)`` pairs from the manifest. Only
    a regular file of ``out_dir`` under a plain name (no ``/``, no ``..``)
    whose bytes are still the recorded ones is moved: anything else under
    that name (another id's image, what a run killed before it recorded its
    version wrote, a file of the user's) is not that earlier image and is
    left alone, and so is an entry without a hash.

    Nothing in ``replaced/`` is ever overwritten: a file goes under its own
    name there, or the next free one (``cat.png``, ``cat-1.png``,
    ``cat-2.png``, ... as ``imagestream generate`` names files). It is hard
    linked there (copied, where the file system has no hard links), the
    folder is fsynced, and only then is the original unlinked (and the
    output directory fsynced), so a kill at any instant leaves each file in
    its old place, in ``replaced/``, or in both; a later call finds it there
    already, with the same bytes, and only unlinks the original. Returns
    the new names relative to ``out_dir`` (``replaced/cat-1.png``), in the
    order of ``earlier``.

    Raises:
        OSError: A file could not be moved (``replaced`` is a file, the disk
            is full, ...); the files not moved yet are where they were.
    """
    moving: list[Path] = []
    for name, digest in earlier:
        if digest is None or not _plain_name(name):
            continue
        path = out_dir / name
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            continue
        if stat.S_ISREG(mode) and path not in moving and _sha256(path) == digest:
            moving.append(path)
    if not moving:
        return []
    target = out_dir / REPLACED_DIR
    created = not target.is_dir()
    if created:
        target.mkdir()
    moved = [_link_free(path, target) for path in moving]
    fsync_directory(target)
    if created:
        fsync_directory(out_dir)  # the folder's own entry, before any original goes
    for path in moving:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    fsync_directory(out_dir)
    return [f"{REPLACED_DIR}/{name}" for name in moved]


def _plain_name(name: object) -> bool:
    """True for a file name of the directory itself: no separator, not ``.``, ``..`` or empty."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and "/" not in name
        and os.sep not in name
        and (os.altsep is None or os.altsep not in name)
        and "\0" not in name
    )


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _numbered(name: str, number: int) -> str:
    """``cat.png`` → ``cat-<number>.png`` (``number`` 0 gives ``name`` itself)."""
    if number == 0:
        return name
    path = Path(name)
    return f"{path.stem}-{number}{path.suffix}"


def _link_free(path: Path, directory: Path) -> str:
    """Put ``path``'s file under a free name in ``directory`` (the original stays); return it."""
    for number in range(_MAX_VERSIONS):
        candidate = directory / _numbered(path.name, number)
        try:
            os.link(path, candidate, follow_symlinks=False)
        except FileExistsError:
            if _same_file(path, candidate):
                return candidate.name  # moved there already by a run that was killed
            continue
        except OSError as exc:
            if exc.errno not in _NO_LINKS:
                raise
            if not _copy_new(path, candidate):
                if _same_file(path, candidate):
                    return candidate.name
                continue
        return candidate.name
    raise FileExistsError(
        errno.EEXIST, f"no free name for {path.name} after {_MAX_VERSIONS} tries", str(directory)
    )


def _same_file(path: Path, other: Path) -> bool:
    """True when ``other`` is ``path``'s file, or a regular file with the same bytes."""
    try:
        if not stat.S_ISREG(os.lstat(other).st_mode):
            return False
        return os.path.samefile(path, other) or filecmp.cmp(path, other, shallow=False)
    except OSError:
        return False


def _copy_new(path: Path, target: Path) -> bool:
    """Copy ``path`` to ``target``, which must not exist yet (False if it does), whole.

    Where there are no hard links: ``target`` is taken by an exclusive
    create, then the copy, written to a temporary and fsynced, is renamed
    over it (as :func:`imagestream.ImageData.save` does there).
    """
    try:
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except FileExistsError:
        return False
    try:
        write_atomic(target, path.read_bytes())
    except BaseException:
        with contextlib.suppress(OSError):
            target.unlink()
        raise
    return True
