"""The key store: API keys saved by ``imagestream keys set``, one JSON file.

The file is ``keys.json`` in the user configuration directory
(``platformdirs.user_config_dir("imagestream")``), or in
``$IMAGESTREAM_CONFIG_DIR`` when that is set. It maps a provider's name to its
key. It is created readable by its owner only (``0600``, in a ``0700``
directory, never wider even for an instant) and replaced atomically, so a
crash mid-write leaves the old file whole.

Nothing here prints, logs or raises a key: errors name the file, never what is
in it. :func:`imagestream.provider.find_key` reads a key from here last, after
the request's own and the environment's.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path

from .errors import ConfigurationError

__all__ = [
    "CONFIG_DIR_ENV",
    "KEYS_FILE",
    "KeyStore",
    "config_dir",
    "keys_path",
    "stored_key",
]

CONFIG_DIR_ENV = "IMAGESTREAM_CONFIG_DIR"
"""Environment variable that relocates the configuration directory."""

KEYS_FILE = "keys.json"

_NOTE_KEY = "// Note"
_NOTE = "This file stores secret API keys. Do not share it."
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

# path -> (file identity, entries): re-read only when the file changes.
_cache: dict[Path, tuple[tuple[int, int, int, int], dict[str, str]]] = {}


def config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$IMAGESTREAM_CONFIG_DIR`` if set, else the user configuration directory."""
    environ = os.environ if environ is None else environ
    override = environ.get(CONFIG_DIR_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    import platformdirs  # only when a path is needed

    return Path(platformdirs.user_config_dir("imagestream"))


def keys_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the key store lives (the file may not exist yet)."""
    return config_dir(environ) / KEYS_FILE


def valid_name(name: str) -> bool:
    """Whether ``name`` can name a key: letters, digits, ``.``, ``_``, ``-`` (64 at most)."""
    return _NAME.fullmatch(name) is not None


def _unreadable(path: Path, reason: str) -> ConfigurationError:
    return ConfigurationError(
        f"cannot read the key store {path}: {reason}",
        hint=f"fix or delete {path}, then store keys again with 'imagestream keys set NAME'",
    )


def _load(path: Path) -> dict[str, str]:
    """The entries of the file at ``path`` (``{}`` when there is none), note excluded."""
    try:
        info = path.stat()
    except FileNotFoundError:
        _cache.pop(path, None)
        return {}
    except OSError as exc:
        raise _unreadable(path, exc.strerror or type(exc).__name__) from None
    identity = (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size)
    cached = _cache.get(path)
    if cached is not None and cached[0] == identity:
        return dict(cached[1])
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise _unreadable(path, exc.strerror or type(exc).__name__) from None
    # `from None` everywhere: a decoding error's text can quote the file's bytes.
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _unreadable(path, "it is not UTF-8 text") from None
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise _unreadable(
            path, f"it is not valid JSON (line {exc.lineno}, column {exc.colno})"
        ) from None
    if not isinstance(data, dict):
        raise _unreadable(path, "it is not a JSON object of names and keys")
    entries: dict[str, str] = {}
    for name, value in data.items():
        if name.startswith("//"):
            continue
        if not isinstance(value, str):
            raise _unreadable(path, "it holds a key that is not a string")
        entries[name] = value
    _cache[path] = (identity, entries)
    return dict(entries)


def stored_key(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The key stored for ``name``, or ``None`` (also when there is no key store).

    ``environ`` is where ``$IMAGESTREAM_CONFIG_DIR`` is looked up.

    Raises:
        ConfigurationError: The file exists but cannot be read or is not a
            key store; the message names the file, not its contents.
    """
    return _load(keys_path(environ)).get(name)


class KeyStore:
    """The key store file, read and written whole.

    Args:
        path: The file (default: :func:`keys_path`).
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = keys_path() if path is None else path

    def __repr__(self) -> str:
        return f"KeyStore({str(self.path)!r})"

    def names(self) -> list[str]:
        """The names that have a key, sorted."""
        return sorted(_load(self.path))

    def get(self, name: str) -> str | None:
        """The key stored for ``name``, or ``None``."""
        return _load(self.path).get(name)

    def set(self, name: str, value: str) -> None:
        """Store ``value`` as the key for ``name``, replacing any earlier one.

        Raises:
            ConfigurationError: A name that cannot name a key, an empty value,
                an unreadable file, or one that cannot be written.
        """
        if not valid_name(name):
            raise ConfigurationError(
                f"{name!r} cannot name a key",
                hint="use a provider's name: letters, digits, '.', '_' or '-'",
            )
        if not value:
            raise ConfigurationError(f"{name}: the key is empty")
        entries = _load(self.path)
        entries[name] = value
        self._write(entries)

    def remove(self, name: str) -> bool:
        """Forget the key for ``name``; ``False`` if there was none."""
        entries = _load(self.path)
        if name not in entries:
            return False
        del entries[name]
        self._write(entries)
        return True

    def _write(self, entries: Mapping[str, str]) -> None:
        data = {_NOTE_KEY: _NOTE, **dict(sorted(entries.items()))}
        body = (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        try:
            write_private(self.path, body)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot write the key store {self.path}: {exc.strerror or type(exc).__name__}",
                hint=f"check that {self.path.parent} is writable, or set {CONFIG_DIR_ENV}",
            ) from None
        _cache.pop(self.path, None)


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically, readable and writable by its owner only.

    A missing directory is created ``0700``. The bytes go to a temporary file
    in the same directory, created ``0600`` (so never readable by others, not
    even before a ``chmod``), flushed and fsynced, then renamed over ``path``;
    readers see the old file or the new one, and a failure leaves no
    temporary file behind.

    Raises:
        OSError: The directory or file cannot be created or written.
    """
    from ._saving import _fsync_directory

    directory = path.parent
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = directory / f".{path.name}.{secrets.token_hex(8)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags | getattr(os, "O_BINARY", 0), 0o600)
    try:
        handle = os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        tmp.unlink()
        raise
    try:
        with handle:
            if hasattr(os, "fchmod"):
                os.fchmod(handle.fileno(), 0o600)  # exactly 0600, whatever the umask
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    _fsync_directory(directory)
