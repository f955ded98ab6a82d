"""The generation cache's store on disk: one msgpack file per entry, capped, least recently used out.

Each entry is a file ``<sha256 hex of the key>.msgpack`` in one directory
(``platformdirs.user_cache_dir("imagestream")/generations``, or
``IMAGESTREAM_CACHE_DIR``), written atomically. A hit touches the file's
modification time; after each write the entries with the oldest times are
removed until the total is under the cap (``IMAGESTREAM_CACHE_MAX_BYTES``). An
entry that cannot be read back is deleted and counts as a miss: the cache never
turns into an error of the run.

msgpack, the chunk converter and platformdirs are imported only when an entry
is read or written, so loading the plugin costs nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from .errors import ConfigurationError

if TYPE_CHECKING:
    from ._chunks import Chunk

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DIR_ENV",
    "MAX_BYTES_ENV",
    "CacheEntry",
    "CacheStats",
    "CacheStore",
    "default_directory",
    "parse_byte_size",
]

DIR_ENV = "IMAGESTREAM_CACHE_DIR"
"""Environment variable: the directory that holds the entries."""

MAX_BYTES_ENV = "IMAGESTREAM_CACHE_MAX_BYTES"
"""Environment variable: the size cap (bytes, or with a ``K``/``M``/``G`` suffix, powers of 1024)."""

DEFAULT_MAX_BYTES = 512 * 2**20
"""The size cap unless ``IMAGESTREAM_CACHE_MAX_BYTES`` says otherwise: 512 MiB."""

SUFFIX = ".msgpack"
FORMAT = 1
"""Version of the entry layout; entries of another version are misses (and deleted)."""

_DIGEST = re.compile(r"[0-9a-f]{64}")
_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]?)(?:i?b)?\s*$", re.I)
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}

logger = logging.getLogger("imagestream.cache")


def default_directory() -> Path:
    """Where entries live: ``IMAGESTREAM_CACHE_DIR``, else the user cache directory's ``generations``."""
    configured = os.environ.get(DIR_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("imagestream")) / "generations"


def parse_byte_size(text: str) -> int:
    """``"512M"`` → 536870912; plain digits are bytes; ``K``, ``M``, ``G`` are powers of 1024.

    Raises:
        ConfigurationError: Anything else.
    """
    match = _SIZE.match(text)
    if not match:
        raise ConfigurationError(
            f"{MAX_BYTES_ENV}={text!r} is not a size",
            hint="give bytes, or a number with K, M or G (e.g. 512M)",
        )
    return int(match[1]) * _UNITS[match[2].lower()]


def _max_bytes_from_env() -> int:
    raw = os.environ.get(MAX_BYTES_ENV, "").strip()
    return parse_byte_size(raw) if raw else DEFAULT_MAX_BYTES


@attrs.frozen
class CacheEntry:
    """One stored run, read back.

    Attributes:
        chunks: The chunks the provider's stream gave, in order.
        original_cost_usd: What the stored run cost, when it was known.
        created: When it was stored (seconds since the epoch).
        provider: The provider's name.
        model: The model, when known.
    """

    chunks: tuple[Chunk, ...]
    original_cost_usd: float | None = None
    created: float = 0.0
    provider: str | None = None
    model: str | None = None


@attrs.frozen
class CacheStats:
    """What ``imagestream cache info`` shows.

    Attributes:
        path: The entries' directory.
        entries: How many entries there are.
        bytes: Their total size.
        max_bytes: The size cap.
    """

    path: Path
    entries: int
    bytes: int
    max_bytes: int

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (``path`` as a string) for JSON output."""
        return {
            "path": str(self.path),
            "entries": self.entries,
            "bytes": self.bytes,
            "max_bytes": self.max_bytes,
        }


@attrs.frozen
class _File:
    path: Path
    size: int
    mtime_ns: int


class CacheStore:
    """The entries' directory and its size cap.

    Args:
        directory: Where the entry files are.
        max_bytes: The total size the entries are kept under.
    """

    def __init__(self, directory: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes

    @classmethod
    def from_env(cls) -> CacheStore:
        """The store configured by ``IMAGESTREAM_CACHE_DIR`` and ``IMAGESTREAM_CACHE_MAX_BYTES``.

        Raises:
            ConfigurationError: The size cap is not a size.
        """
        return cls(default_directory(), _max_bytes_from_env())

    def path_for(self, digest: str) -> Path:
        """The file of the entry whose key hashes to ``digest`` (64 lower-case hex digits)."""
        if not _DIGEST.fullmatch(digest):
            raise ValueError(f"not a sha256 hex digest: {digest!r}")
        return self.directory / f"{digest}{SUFFIX}"

    # -- reading -----------------------------------------------------------

    def load(self, digest: str) -> CacheEntry | None:
        """The entry for ``digest``, or ``None`` (a miss). A hit becomes the most recently used.

        An entry that cannot be decoded is deleted and is a miss.
        """
        path = self.path_for(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            logger.debug("cache: cannot read %s (%s): a miss", path, exc)
            return None
        try:
            entry = _decode(data)
        except Exception as exc:
            logger.debug("cache: corrupt entry %s (%s): deleted, a miss", path, exc)
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # least recently used goes first: this one was just used
        return entry

    # -- writing -----------------------------------------------------------

    def save(
        self,
        digest: str,
        chunks: Sequence[Chunk],
        *,
        original_cost_usd: float | None = None,
        provider: str | None = None,
        model: str | None = None,
    ) -> bool:
        """Store an entry atomically, then evict down to the cap. False when nothing was stored.

        Never raises for what the disk or the chunks do: an entry that cannot
        be encoded (an ``extra`` value msgpack cannot carry), is larger than
        the cap, or cannot be written is left out, with a debug log line.
        """
        path = self.path_for(digest)
        try:
            data = _encode(
                chunks,
                original_cost_usd=original_cost_usd,
                provider=provider,
                model=model,
            )
        except Exception as exc:
            logger.debug("cache: cannot encode the run (%s): not stored", exc)
            return False
        if len(data) > self.max_bytes:
            logger.debug(
                "cache: entry of %d bytes is over the cap of %d: not stored",
                len(data),
                self.max_bytes,
            )
            return False
        from ._saving import write_atomic
        from .errors import SaveError

        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_atomic(path, data, overwrite=True)
        except (OSError, SaveError) as exc:
            logger.debug("cache: cannot write %s (%s): not stored", path, exc)
            return False
        self.evict()
        return True

    def evict(self) -> int:
        """Remove the least recently used entries until the total is under the cap; how many went."""
        files = self._files()
        total = sum(f.size for f in files)
        removed = 0
        for file in sorted(files, key=lambda f: (f.mtime_ns, f.path.name)):
            if total <= self.max_bytes:
                break
            with contextlib.suppress(FileNotFoundError):
                file.path.unlink()
                removed += 1
            total -= file.size
        if removed:
            logger.debug(
                "cache: evicted %d entries to stay under %d bytes", removed, self.max_bytes
            )
        return removed

    # -- the whole cache ---------------------------------------------------

    def _files(self) -> list[_File]:
        found: list[_File] = []
        try:
            scan = os.scandir(self.directory)
        except (FileNotFoundError, NotADirectoryError):
            return found
        with scan as entries:
            for entry in entries:
                if not _is_entry_name(entry.name):
                    continue
                try:
                    stat = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                found.append(_File(Path(entry.path), stat.st_size, stat.st_mtime_ns))
        return found

    def stats(self) -> CacheStats:
        """Where, how many entries, how big, and the cap."""
        files = self._files()
        return CacheStats(
            path=self.directory,
            entries=len(files),
            bytes=sum(f.size for f in files),
            max_bytes=self.max_bytes,
        )

    def clear(self) -> tuple[int, int]:
        """Remove every entry (and temporary files a crash left); ``(entries, bytes)`` removed."""
        count = size = 0
        for file in self._files():
            try:
                file.path.unlink()
            except FileNotFoundError:
                continue
            count += 1
            size += file.size
        _remove_stale_temporaries(self.directory)
        return count, size


def _is_entry_name(name: str) -> bool:
    return name.endswith(SUFFIX) and bool(_DIGEST.fullmatch(name[: -len(SUFFIX)]))


def _remove_stale_temporaries(directory: Path, older_than: float = 3600.0) -> None:
    # write_atomic's temporaries are ".<name>.<random>.tmp"; one older than an
    # hour belongs to a writer that died.
    cutoff = time.time() - older_than
    try:
        candidates: Iterable[Path] = list(directory.glob(f".*{SUFFIX}.*.tmp"))
    except OSError:
        return
    for path in candidates:
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < cutoff:
                path.unlink()


def _msgpack() -> Any:
    import msgpack  # type: ignore[import-untyped]

    return msgpack


def _encode(
    chunks: Sequence[Chunk],
    *,
    original_cost_usd: float | None,
    provider: str | None,
    model: str | None,
) -> bytes:
    msgpack = _msgpack()
    from ._convert import chunk_to_dict

    record = {
        "format": FORMAT,
        "created": time.time(),
        "provider": provider,
        "model": model,
        "original_cost_usd": original_cost_usd,
        "chunks": [chunk_to_dict(chunk, flavor="msgpack") for chunk in chunks],
    }
    packed: bytes = msgpack.packb(record, use_bin_type=True)
    return packed


def _decode(data: bytes) -> CacheEntry:
    msgpack = _msgpack()
    from ._convert import chunk_from_dict

    record = msgpack.unpackb(data, raw=False, strict_map_key=False)
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ValueError("not an entry of this version")
    chunks = record.get("chunks")
    if not isinstance(chunks, list):
        raise ValueError("no chunk list")
    cost = record.get("original_cost_usd")
    created = record.get("created")
    provider = record.get("provider")
    model = record.get("model")
    return CacheEntry(
        chunks=tuple(chunk_from_dict(item, flavor="msgpack") for item in chunks),
        original_cost_usd=float(cost) if isinstance(cost, int | float) else None,
        created=float(created) if isinstance(created, int | float) else 0.0,
        provider=provider if isinstance(provider, str) else None,
        model=model if isinstance(model, str) else None,
    )
