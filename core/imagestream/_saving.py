"""Writing images to disk: atomic, never overwriting silently, never escaping a folder."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
import threading
import time
from pathlib import Path

import attrs

from ._sniff import EXTENSIONS, sniff_mime
from .errors import SaveError, UnsafePathError

__all__ = ["SaveOptions", "check_path", "default_name", "safe_join", "write_atomic"]

DEFAULT_OUT_DIR = Path("generated-images")


@attrs.frozen
class SaveOptions:
    """Where and how images are saved.

    Attributes:
        out_dir: Directory for generated names (default ``generated-images``).
        output: An explicit file path for the image (``--output``); with several
            images, the second and later get ``-1``, ``-2``, ... before the suffix.
        filename: A file name inside ``out_dir`` (checked: it may not escape it).
        overwrite: Replace existing files instead of picking the next free name.
    """

    out_dir: Path = attrs.field(default=DEFAULT_OUT_DIR, converter=Path)
    output: Path | None = attrs.field(default=None, converter=attrs.converters.optional(Path))
    filename: str | None = None
    overwrite: bool = False


def default_name(mime_type: str | None, *, sample: int = 0, now: float | None = None) -> str:
    """``image-<timestamp>[-<sample>].<ext>``, the timestamp in local time to the millisecond."""
    now = time.time() if now is None else now
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + f"-{int(now * 1000) % 1000:03d}"
    suffix = f"-{sample}" if sample else ""
    return f"image-{stamp}{suffix}.{EXTENSIONS.get(mime_type or '', 'bin')}"


_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f]")

NAME_MAX = 255
"""Bytes in one file name where the file system does not say (ext4, APFS, NTFS...)."""

_TMP_EXTRA = len(".") + len(".") + 8 + len(".tmp")
"""Bytes of a temporary's name around its name part: two dots, mkstemp's 8 random characters, ``.tmp``."""


def check_path(path: Path | str, what: str = "path") -> None:
    """Refuse a path holding a control character (NUL, newline, tab, other C0, DEL).

    Such a name is either impossible (NUL) or a trap for every shell and log
    that shows it later, so it is refused rather than written.

    Raises:
        UnsafePathError: Naming the character and where it is.
    """
    text = os.fspath(path)
    found = _BAD_CHARS.search(text)
    if found is not None:
        raise UnsafePathError(
            f"refusing unsafe {what} {text!r}: it holds the control character "
            f"{found.group()!r} at position {found.start()}",
            path=Path(text),
            hint="file and directory names may not contain control characters "
            "(NUL, newline, tab, ...)",
        )


def safe_join(directory: Path, name: str) -> Path:
    """``directory / name``, refusing any name that would land outside ``directory``.

    Raises:
        UnsafePathError: Absolute names, ``..`` components, control characters,
            or a symlink that leads out of the directory.
    """
    check_path(directory, "directory")
    if not name:
        raise UnsafePathError("refusing an empty file name")
    check_path(name, "file name")
    candidate = Path(name)
    if candidate.is_absolute() or candidate.drive or ".." in candidate.parts:
        raise UnsafePathError(
            f"refusing file name {name!r}: it would be written outside {directory}",
            hint="give a plain file name, or use --output for an explicit path",
        )
    target = directory / candidate
    root = directory.resolve()
    resolved = target.resolve()
    if resolved == root or not resolved.is_relative_to(root):
        raise UnsafePathError(f"refusing file name {name!r}: it is not a file inside {directory}")
    return target


def fix_suffix(path: Path, data: bytes) -> Path:
    """Give ``path`` the extension that matches the image bytes.

    A name without a suffix gets one; a wrong suffix (``.png`` on JPEG bytes) is
    replaced, because a file that lies about its type breaks viewers.
    """
    ext = EXTENSIONS.get(sniff_mime(data) or "")
    if ext is None:
        return path
    current = path.suffix.lower().lstrip(".")
    if current == ext or (ext == "jpg" and current == "jpeg"):
        return path
    return path.with_suffix("." + ext)


def numbered(path: Path, number: int, *, name_max: int = NAME_MAX) -> Path:
    """``out.png`` → ``out-2.png`` (``number`` 0 gives ``path`` itself).

    A name that would grow past ``name_max`` bytes loses the end of its stem
    instead (the number and the suffix are kept).
    """
    if number == 0:
        return path
    tail = f"-{number}{path.suffix}"
    room = name_max - len(os.fsencode(tail))
    return path.with_name(_cut(path.stem, room) + tail)


def _cut(text: str, limit: int) -> str:
    """The longest start of ``text`` that is at most ``limit`` bytes in the file-system encoding."""
    if len(os.fsencode(text)) <= limit:
        return text
    text = text[: max(limit, 0)]  # a character is at least one byte
    while text and len(os.fsencode(text)) > limit:
        text = text[:-1]  # never ends inside a multi-byte character
    return text


def name_max(directory: Path) -> int:
    """The longest file name, in bytes, that ``directory``'s file system takes."""
    try:
        limit = os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return NAME_MAX
    return limit if limit and limit > 0 else NAME_MAX


def write_atomic(
    path: Path, data: bytes, *, overwrite: bool = False, max_tries: int = 1000
) -> Path:
    """Write ``data`` to ``path`` atomically and return the path actually written.

    The bytes go to a temporary file in the same directory, are flushed and
    fsynced, and only then published under the final name, so a reader never
    sees half an image and a crash leaves no partial file. Unless
    ``overwrite``, an existing file is never replaced: the next free name
    (``name-1.png``, ``name-2.png``, ...) is taken instead, without a race
    (publishing uses a hard link, which fails if the name exists).

    The temporary's name (``.<name>.<random>.tmp``) is kept within the file
    system's name limit by shortening its ``<name>`` part, so any final name
    the file system takes can be written.

    Raises:
        UnsafePathError: The path holds a control character (NUL, newline, ...).
        SaveError: The file name is longer than the file system allows, or
            the directory cannot be created or written (read-only, disk
            full, ...); nothing is left behind.
    """
    check_path(path)
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SaveError(f"cannot write to {directory}: {exc.strerror or exc}", path=path) from exc
    limit = name_max(directory)
    length = len(os.fsencode(path.name))
    if length > limit:
        raise SaveError(
            f"cannot save {path.name[:40]}...: the file name is {length} bytes long, "
            f"more than the {limit} bytes a file name may have here",
            path=path,
            hint="give a shorter file name",
        )
    prefix = "." + _cut(path.name, limit - _TMP_EXTRA) + "."
    try:
        fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=".tmp")
    except OSError as exc:
        raise SaveError(f"cannot write to {directory}: {exc.strerror or exc}", path=path) from exc
    tmp = Path(tmp_name)
    try:
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o644)
            final = _publish(tmp, path, overwrite=overwrite, max_tries=max_tries, name_max=limit)
        except OSError as exc:
            raise SaveError(f"cannot save {path}: {exc.strerror or exc}", path=path) from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    _sync_directory(directory)
    return final


def _publish(tmp: Path, path: Path, *, overwrite: bool, max_tries: int, name_max: int) -> Path:
    if overwrite:
        os.replace(tmp, path)
        return path
    for number in range(max_tries):
        candidate = numbered(path, number, name_max=name_max)
        try:
            os.link(tmp, candidate)
        except FileExistsError:
            continue
        except OSError as exc:
            # Some file systems have no hard links: fall back to an exclusive
            # create, which is as safe, then move the bytes in place.
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            try:
                os.close(os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            except FileExistsError:
                continue
            os.replace(tmp, candidate)
        return candidate
    raise SaveError(f"no free file name next to {path} after {max_tries} tries", path=path)


class _DirectorySync:
    """fsync of a directory, shared by the writers that need it at the same time.

    Every saved file needs its new name made durable, and a directory fsync
    makes every entry created before it durable. So a writer whose entry
    exists when an fsync of its directory *starts* is served by that fsync:
    writers arriving while one is running wait for the next, which then
    covers them all (a group commit). A server saving a thousand images at
    once pays a handful of directory fsyncs instead of a thousand.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._asked: dict[str, int] = {}  # directory -> requests so far
        self._done: dict[str, int] = {}  # directory -> requests made durable
        self._running: set[str] = set()

    def __call__(self, directory: Path) -> None:
        key = os.fspath(directory)
        with self._changed:
            ticket = self._asked[key] = self._asked.get(key, 0) + 1
            while True:
                if self._done.get(key, 0) >= ticket:
                    return
                if key not in self._running:
                    self._running.add(key)
                    covered = self._asked[key]  # every entry made before this fsync starts
                    break
                self._changed.wait()
        try:
            _fsync_directory(directory)
        finally:
            with self._changed:
                self._running.discard(key)
                # Counters only grow (a waiter holds a ticket); one pair per directory.
                self._done[key] = max(self._done.get(key, 0), covered)
                self._changed.notify_all()


def _fsync_directory(directory: Path) -> None:
    # Makes the new directory entry durable; not possible on every platform.
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


_sync_directory = _DirectorySync()
