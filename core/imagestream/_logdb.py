"""The generation log: one SQLite database of earlier runs, read by ``imagestream logs``.

Where it lives: ``logs.db`` in the user data directory
(``platformdirs.user_data_dir("imagestream")``), or in the directory named by
the ``IMAGESTREAM_DATA_DIR`` environment variable. A file ``logs-off`` next
to it turns logging off for the command line (``imagestream logs off``).

The database is versioned with ``PRAGMA user_version``: each entry of
:data:`MIGRATIONS` brings the schema one version further, so a later
imagestream can add columns to an existing log. It runs in WAL mode, so
reading the log never blocks a run that is writing it, and every connection
waits at most a short busy timeout for a lock.

Writing is the built-in ``log`` plugin's job (``imagestream._builtins.log``);
this module only knows the database.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Mapping
from contextlib import closing, suppress
from pathlib import Path
from typing import Any

import attrs

__all__ = [
    "BUSY_TIMEOUT_S",
    "DATA_DIR_ENV",
    "SCHEMA_VERSION",
    "LogDatabaseError",
    "LogEntry",
    "LogWriteWarning",
    "LoggedImage",
    "connect",
    "count_entries",
    "data_dir",
    "database_size",
    "log_path",
    "logs_enabled",
    "read_entries",
    "set_logs_enabled",
    "write_entry",
]

DATA_DIR_ENV = "IMAGESTREAM_DATA_DIR"
"""Environment variable naming the data directory (default: the platform's user data dir)."""

DB_NAME = "logs.db"
OFF_MARKER = "logs-off"

SCHEMA_VERSION = 1
"""The schema version this imagestream writes (``PRAGMA user_version``)."""

BUSY_TIMEOUT_S = 0.25
"""How long a write waits for another connection's lock before giving up."""


class LogWriteWarning(UserWarning):
    """A run could not be recorded in the generation log; the run itself is unaffected."""


class LogDatabaseError(Exception):
    """The log database is unusable for this imagestream (a newer schema)."""


# -- where -------------------------------------------------------------------


def data_dir() -> Path:
    """``$IMAGESTREAM_DATA_DIR``, else ``platformdirs.user_data_dir("imagestream")``."""
    override = os.environ.get(DATA_DIR_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("imagestream"))


def log_path() -> Path:
    """The generation log database: ``<data dir>/logs.db`` (it may not exist yet)."""
    return data_dir() / DB_NAME


def logs_enabled() -> bool:
    """False after ``imagestream logs off`` (a ``logs-off`` file in the data dir), else True.

    The command line passes ``log=(not no_log) and logs_enabled()`` to a run;
    the Python API logs only runs given ``log=True`` and never reads this.
    """
    return not (data_dir() / OFF_MARKER).exists()


def set_logs_enabled(enabled: bool) -> None:
    """``imagestream logs on`` / ``off``: remove or create the ``logs-off`` file."""
    marker = data_dir() / OFF_MARKER
    if enabled:
        marker.unlink(missing_ok=True)
    else:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()


def database_size(path: Path | None = None) -> int:
    """Bytes on disk of the database and its write-ahead log (0 when absent)."""
    path = path or log_path()
    total = 0
    for candidate in (path, path.with_name(path.name + "-wal")):
        with suppress(OSError):
            total += candidate.stat().st_size
    return total


# -- what --------------------------------------------------------------------


@attrs.frozen
class LoggedImage:
    """One final image of a logged run. ``path`` is ``None`` when it was not saved."""

    sample: int = 0
    path: str | None = None
    sha256: str | None = None
    mime_type: str | None = None
    bytes: int | None = None
    width: int | None = None
    height: int | None = None
    seed: int | None = None
    revised_prompt: str | None = None


@attrs.frozen
class LogEntry:
    """One row of the log: a run, successful or not. Times in seconds.

    ``options`` holds the request's fields and provider options, with the API
    key removed and credentials masked; it is stored as JSON.
    """

    time: str
    prompt: str
    provider: str | None = None
    model: str | None = None
    options: Mapping[str, Any] = attrs.Factory(dict)
    total_s: float | None = None
    first_preview_s: float | None = None
    first_final_s: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    previews: int = 0
    text: str = ""
    thoughts: str = ""
    error_type: str | None = None
    error_message: str | None = None
    images: tuple[LoggedImage, ...] = ()


# -- schema ------------------------------------------------------------------


def _v1(conn: sqlite3.Connection) -> None:
    conn.execute(
        """
        CREATE TABLE generations (
            id INTEGER PRIMARY KEY,
            time TEXT NOT NULL,
            prompt TEXT NOT NULL,
            provider TEXT,
            model TEXT,
            options_json TEXT NOT NULL DEFAULT '{}',
            total_s REAL,
            first_preview_s REAL,
            first_final_s REAL,
            input_tokens INTEGER,
            output_tokens INTEGER,
            cost_usd REAL,
            previews INTEGER NOT NULL DEFAULT 0,
            image_count INTEGER NOT NULL DEFAULT 0,
            text TEXT NOT NULL DEFAULT '',
            thoughts TEXT NOT NULL DEFAULT '',
            error_type TEXT,
            error_message TEXT
        )
        """
    )
    conn.execute(
        """
        CREATE TABLE images (
            id INTEGER PRIMARY KEY,
            generation_id INTEGER NOT NULL REFERENCES generations(id) ON DELETE CASCADE,
            sample INTEGER NOT NULL DEFAULT 0,
            path TEXT,
            sha256 TEXT,
            mime_type TEXT,
            bytes INTEGER,
            width INTEGER,
            height INTEGER,
            seed INTEGER,
            revised_prompt TEXT
        )
        """
    )
    conn.execute("CREATE INDEX images_by_generation ON images(generation_id)")
    try:
        conn.execute(
            "CREATE VIRTUAL TABLE generations_fts USING fts5("
            "prompt, content='generations', content_rowid='id')"
        )
    except sqlite3.OperationalError:
        return  # an SQLite without FTS5: searches use LIKE instead
    # One statement at a time: executescript() would commit the migration's transaction.
    for trigger in _FTS_TRIGGERS:
        conn.execute(trigger)


_FTS_TRIGGERS = (
    """
    CREATE TRIGGER generations_fts_insert AFTER INSERT ON generations BEGIN
        INSERT INTO generations_fts(rowid, prompt) VALUES (new.id, new.prompt);
    END
    """,
    """
    CREATE TRIGGER generations_fts_delete AFTER DELETE ON generations BEGIN
        INSERT INTO generations_fts(generations_fts, rowid, prompt)
            VALUES ('delete', old.id, old.prompt);
    END
    """,
    """
    CREATE TRIGGER generations_fts_update AFTER UPDATE OF prompt ON generations BEGIN
        INSERT INTO generations_fts(generations_fts, rowid, prompt)
            VALUES ('delete', old.id, old.prompt);
        INSERT INTO generations_fts(rowid, prompt) VALUES (new.id, new.prompt);
    END
    """,
)


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1]
"""``MIGRATIONS[n]`` brings a database from ``user_version`` n to n + 1."""

assert len(MIGRATIONS) == SCHEMA_VERSION


def _user_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(conn: sqlite3.Connection, *, allow_newer: bool = False) -> None:
    """Bring the schema to :data:`SCHEMA_VERSION`, in one transaction.

    Raises:
        LogDatabaseError: The database was written by a newer imagestream
            (unless ``allow_newer``, for reading).
    """
    version = _user_version(conn)
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        if allow_newer:
            return
        raise LogDatabaseError(
            f"the log database has schema version {version}; this imagestream "
            f"writes version {SCHEMA_VERSION} (upgrade imagestream)"
        )
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have migrated while this one waited for the lock.
        for step in MIGRATIONS[_user_version(conn) :]:
            step(conn)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def connect(
    path: Path | None = None, *, timeout: float = BUSY_TIMEOUT_S, reading: bool = False
) -> sqlite3.Connection:
    """Open the log (creating it and its directory unless ``reading``), in WAL mode, migrated.

    The connection is in autocommit mode (``isolation_level=None``): callers
    open their own transactions.

    Raises:
        sqlite3.Error: Locked past ``timeout``, read-only, or not a database.
        OSError: The data directory cannot be created.
        LogDatabaseError: The schema is newer than this imagestream's.
    """
    path = path or log_path()
    if not reading:
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    try:
        if not reading:
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        migrate(conn, allow_newer=reading)
    except BaseException:
        conn.close()
        raise
    return conn


# -- writing -----------------------------------------------------------------

_ENTRY_COLUMNS = (
    "time",
    "prompt",
    "provider",
    "model",
    "options_json",
    "total_s",
    "first_preview_s",
    "first_final_s",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "previews",
    "image_count",
    "text",
    "thoughts",
    "error_type",
    "error_message",
)
_IMAGE_COLUMNS = (
    "generation_id",
    "sample",
    "path",
    "sha256",
    "mime_type",
    "bytes",
    "width",
    "height",
    "seed",
    "revised_prompt",
)


def _insert(table: str, columns: tuple[str, ...]) -> str:
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"


def write_entry(
    entry: LogEntry, path: Path | None = None, *, timeout: float = BUSY_TIMEOUT_S
) -> int:
    """Append one entry and its images in one transaction; return its id.

    Blocking: call it off the event loop.

    Raises:
        sqlite3.Error, OSError, LogDatabaseError: See :func:`connect`.
    """
    options_json = json.dumps(entry.options, ensure_ascii=False, sort_keys=True)
    row = (
        entry.time,
        entry.prompt,
        entry.provider,
        entry.model,
        options_json,
        entry.total_s,
        entry.first_preview_s,
        entry.first_final_s,
        entry.input_tokens,
        entry.output_tokens,
        entry.cost_usd,
        entry.previews,
        len(entry.images),
        entry.text,
        entry.thoughts,
        entry.error_type,
        entry.error_message,
    )
    with closing(connect(path, timeout=timeout)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            generation_id = conn.execute(_insert("generations", _ENTRY_COLUMNS), row).lastrowid
            conn.executemany(
                _insert("images", _IMAGE_COLUMNS),
                [
                    (
                        generation_id,
                        image.sample,
                        image.path,
                        image.sha256,
                        image.mime_type,
                        image.bytes,
                        image.width,
                        image.height,
                        image.seed,
                        image.revised_prompt,
                    )
                    for image in entry.images
                ],
            )
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
    assert generation_id is not None
    return generation_id


# -- reading -----------------------------------------------------------------


def _has_fts(conn: sqlite3.Connection) -> bool:
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'generations_fts'"
    ).fetchone()
    return found is not None


def _fts_query(text: str) -> str:
    # Every word as a quoted prefix: "red circ" finds "a red circle"; quotes
    # keep FTS5's operators (AND, NEAR, -, ...) from meaning anything.
    return " ".join('"' + word.replace('"', '""') + '"*' for word in text.split())


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


_LATEST = "SELECT * FROM generations {where} ORDER BY id DESC LIMIT ?"
_BY_LIKE = "WHERE prompt LIKE ? ESCAPE '\\'"
_BY_FTS = "WHERE id IN (SELECT rowid FROM generations_fts WHERE generations_fts MATCH ?)"


def _select(conn: sqlite3.Connection, limit: int, search: str) -> list[sqlite3.Row]:
    if not search:
        return conn.execute(_LATEST.format(where=""), [limit]).fetchall()
    if _has_fts(conn):
        try:
            return conn.execute(
                _LATEST.format(where=_BY_FTS), [_fts_query(search), limit]
            ).fetchall()
        except sqlite3.OperationalError:
            pass  # a query FTS5 cannot parse: match the text as a substring instead
    return conn.execute(_LATEST.format(where=_BY_LIKE), [_like_pattern(search), limit]).fetchall()


def read_entries(
    path: Path | None = None, *, limit: int = 3, search: str | None = None
) -> list[dict[str, Any]]:
    """The last ``limit`` entries (0: all), oldest first, as JSON-ready dicts.

    ``search`` keeps entries whose prompt contains its words (word prefixes
    with FTS5, a substring match without it). An absent database gives ``[]``.

    Raises:
        sqlite3.Error: The file is locked past the busy timeout or not a database.
    """
    path = path or log_path()
    if not path.exists():
        return []
    with closing(connect(path, reading=True)) as conn:
        conn.row_factory = sqlite3.Row
        rows = _select(conn, limit if limit > 0 else -1, (search or "").strip())
        rows.reverse()
        images: dict[int, list[dict[str, Any]]] = {}
        if rows:
            ids = [row["id"] for row in rows]
            marks = ", ".join("?" for _ in ids)
            for image in conn.execute(
                f"SELECT * FROM images WHERE generation_id IN ({marks}) ORDER BY id", ids
            ):
                found = dict(image)
                generation_id = found.pop("generation_id")
                found.pop("id", None)
                images.setdefault(generation_id, []).append(found)
    entries = []
    for row in rows:
        entry = dict(row)
        try:
            entry["options"] = json.loads(entry.pop("options_json") or "{}")
        except ValueError:
            entry["options"] = {}
        entry["images"] = images.get(entry["id"], [])
        entries.append(entry)
    return entries


def count_entries(path: Path | None = None) -> int:
    """How many runs the log holds (0 when it does not exist)."""
    path = path or log_path()
    if not path.exists():
        return 0
    with closing(connect(path, reading=True)) as conn:
        return int(conn.execute("SELECT count(*) FROM generations").fetchone()[0])
