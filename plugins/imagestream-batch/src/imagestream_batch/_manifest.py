"""The manifest: what each request of a job has become, kept so that a rerun does only the rest.

It is a SQLite database in WAL mode, ``manifest.db`` in the output
directory, with one row per request id: its state (``pending``,
``running``, ``done``, ``failed``), the hash of its normalised request, the
number of attempts, its cost, its result record and the files of its
earlier version still in place (``superseded``, below).

Why SQLite rather than an append-only journal: a row changes state several
times (pending, running, perhaps failed, then done), and a rerun needs the
*current* state of each id, the hash it was done with and the money already
spent. A journal would have to be replayed and compacted for that, and its
last line may be torn by a kill; SQLite gives atomic multi-row commits,
recovery from a kill at any instant (the WAL is rolled back or forward when
the database is next opened), and lets anyone read the manifest while a run
writes it (``sqlite3 manifest.db 'select state, count(*) from requests group
by state'``). ``synchronous=FULL``: a commit is on disk when it returns, so
a request recorded done stays done even after a power cut.

The order of writes is what makes a rerun exact:

1. the image is written to a temporary, fsynced and renamed over its name;
2. the directory is fsynced (once for every file of a commit);
3. the row becomes ``done`` in a committed transaction.

A kill before 3 leaves the request not done, so the next run generates it
again and replaces the file; a kill after 3 leaves it done with its file
whole on disk. Commits are grouped: requests that finish while a commit is
on its way are committed together by the next one, so a thousand fast
requests cost a handful of fsyncs, not a thousand.

A done request whose line changed, run again (``--rerun-changed``), keeps
the names and hashes of its done version's files in ``superseded`` from the
moment it is made pending, whatever becomes of the runs that follow (a
failed one included), until a run of it succeeds: then, before step 1,
those of its files that still hold those bytes are moved into ``replaced/``
(see :func:`imagestream_batch._files.set_aside`; the move is made durable
before step 1), and step 3 clears ``superseded``. So the earlier images stay
where they were until new ones exist, are never deleted or overwritten, and
never stay beside the new version in the output directory; a kill in
between leaves each in its place, in ``replaced/`` or in both, and the next
successful run finishes the move.

A lock file (``manifest.lock``, ``flock``) keeps two runs from sharing an
output directory; the kernel drops it when a process dies, however it dies.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import attrs

from imagestream import ConfigurationError

from ._files import fsync_directory, write_atomic
from ._job import BatchRequest, JobError, Problem

__all__ = [
    "LOCK_NAME",
    "MANIFEST_NAME",
    "STATES",
    "Manifest",
    "ManifestWriter",
    "SyncReport",
    "Update",
]

MANIFEST_NAME = "manifest.db"
LOCK_NAME = "manifest.lock"
SCHEMA_VERSION = 2
"""2 added ``superseded``; a version 1 manifest gains the column when it is opened."""
STATES = ("pending", "running", "done", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id TEXT PRIMARY KEY,
    line INTEGER NOT NULL,
    hash TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL,
    images INTEGER NOT NULL DEFAULT 0,
    record TEXT,
    updated_at REAL NOT NULL,
    superseded TEXT
) WITHOUT ROWID;
"""


@attrs.frozen
class Update:
    """One change to a row, applied in a batch.

    ``state="running"`` also counts an attempt; ``record`` (a JSON-ready
    dict) and ``cost_usd`` are written when given.
    """

    id: str
    state: str
    record: Mapping[str, Any] | None = None
    cost_usd: float | None = None
    images: int | None = None


@attrs.frozen
class SyncReport:
    """What :meth:`Manifest.sync` found.

    Attributes:
        to_run: Ids to run now, in job order.
        done: Ids already done with the same request.
        failed_kept: Failed ids left failed (``retry_failed=False``).
        interrupted: Ids a killed run left ``running``, to run again.
        changed: Done ids whose line changed and will run again (``rerun_changed``).
        missing_files: Done ids one of whose files is gone (they stay done).
        spent_usd: Cost recorded for the job's ids so far.
        not_in_job: Ids the manifest holds that the job no longer has.
    """

    to_run: tuple[str, ...]
    done: tuple[str, ...]
    failed_kept: tuple[str, ...]
    interrupted: tuple[str, ...]
    changed: tuple[str, ...]
    missing_files: tuple[str, ...]
    spent_usd: float
    not_in_job: int


class Manifest:
    """The manifest database of one output directory (see the module's docstring).

    Opening it takes the directory's lock. Use it from one thread at a time.
    """

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.path = out_dir / MANIFEST_NAME
        out_dir.mkdir(parents=True, exist_ok=True)
        self._lock: IO[bytes] | None = _take_lock(out_dir / LOCK_NAME)
        try:
            self._db = sqlite3.connect(self.path, timeout=5.0, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ConfigurationError(
                    f"{self.path} was written by a newer imagestream-batch (schema {version})",
                    hint="upgrade imagestream-batch, or use another --out-dir",
                )
            with self._db:
                self._db.executescript(_SCHEMA)
                columns = {row[1] for row in self._db.execute("PRAGMA table_info(requests)")}
                if "superseded" not in columns:  # a version 1 manifest
                    self._db.execute("ALTER TABLE requests ADD COLUMN superseded TEXT")
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            self.close()
            raise ConfigurationError(
                f"cannot use the manifest {self.path}: {exc}",
                hint="use another --out-dir, or move the damaged manifest away",
            ) from exc
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the database and release the lock."""
        db = getattr(self, "_db", None)
        if db is not None:
            db.close()
            self._db = None  # type: ignore[assignment]
        if self._lock is not None:
            lock, self._lock = self._lock, None
            lock.close()

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- start of a run -----------------------------------------------------------

    def sync(
        self,
        requests: Sequence[BatchRequest],
        *,
        rerun_changed: bool = False,
        retry_failed: bool = True,
        job: Path | str = "<job>",
    ) -> SyncReport:
        """Bring the manifest in line with the job; return what is to run.

        New ids are added as pending; ids left ``running`` by a killed run
        become pending again; failed ones too, unless ``retry_failed`` is
        false. A done id whose request hash changed is refused (nothing is
        changed then) unless ``rerun_changed``, which makes it pending and
        adds its files to those its next successful run moves aside.

        Raises:
            JobError: Done lines that changed, without ``rerun_changed``.
        """
        rows = {
            row[0]: row
            for row in self._db.execute(
                "SELECT id, hash, state, record, cost_usd, superseded FROM requests"
            )
        }
        changed: list[BatchRequest] = []
        for request in requests:
            row = rows.get(request.id)
            if row is not None and row[2] == "done" and row[1] != request.hash:
                changed.append(request)
        if changed and not rerun_changed:
            raise JobError(
                job,
                [
                    Problem(
                        request.line,
                        f"id {request.id!r} was done with another request (the line, or a "
                        "default it takes from the command line, changed)",
                    )
                    for request in changed
                ],
                hint="pass --rerun-changed to generate these again (once new images are made, "
                "the earlier ones are moved to replaced/ in the output directory), "
                "or restore the lines",
                what="changed line",
            )
        now = time.time()
        to_run: list[str] = []
        done: list[str] = []
        failed_kept: list[str] = []
        interrupted: list[str] = []
        missing: list[str] = []
        spent = 0.0
        job_ids = set()
        with self._db:
            for request in requests:
                job_ids.add(request.id)
                row = rows.get(request.id)
                if row is None:
                    self._db.execute(
                        "INSERT INTO requests (id, line, hash, state, updated_at) "
                        "VALUES (?, ?, ?, 'pending', ?)",
                        (request.id, request.line, request.hash, now),
                    )
                    to_run.append(request.id)
                    continue
                _, old_hash, state, record, cost, superseded = row
                spent += cost or 0.0
                if state == "done" and old_hash == request.hash:
                    done.append(request.id)
                    if not self._files_exist(record):
                        missing.append(request.id)
                    self._db.execute(
                        "UPDATE requests SET line = ? WHERE id = ?", (request.line, request.id)
                    )
                    continue
                if state == "failed" and not retry_failed and old_hash == request.hash:
                    failed_kept.append(request.id)
                    continue
                if state == "running":
                    interrupted.append(request.id)
                if state == "done":
                    # Changed and allowed to run again: its attempts start over, and
                    # its files are moved aside when (only when) new ones are made.
                    self._db.execute(
                        "UPDATE requests SET attempts = 0, superseded = ? WHERE id = ?",
                        (_supersede(superseded, record), request.id),
                    )
                self._db.execute(
                    "UPDATE requests SET line = ?, hash = ?, state = 'pending', updated_at = ? "
                    "WHERE id = ?",
                    (request.line, request.hash, now, request.id),
                )
                to_run.append(request.id)
        return SyncReport(
            to_run=tuple(to_run),
            done=tuple(done),
            failed_kept=tuple(failed_kept),
            interrupted=tuple(interrupted),
            changed=tuple(request.id for request in changed),
            missing_files=tuple(missing),
            spent_usd=spent,
            not_in_job=len(set(rows) - job_ids),
        )

    def _files_exist(self, record: str | None) -> bool:
        if not record:
            return True
        try:
            files = json.loads(record).get("files") or []
        except ValueError:
            return True
        return all((self.out_dir / name).is_file() for name in files)

    # -- during a run ----------------------------------------------------------------

    def apply(self, updates: Iterable[Update]) -> None:
        """Apply ``updates`` in one transaction (durable when it returns)."""
        now = time.time()
        with self._db:
            for update in updates:
                if update.state not in STATES:
                    raise ValueError(f"unknown state {update.state!r}")
                if update.state == "running":
                    self._db.execute(
                        "UPDATE requests SET state = 'running', attempts = attempts + 1, "
                        "updated_at = ? WHERE id = ?",
                        (now, update.id),
                    )
                    continue
                if update.state == "pending":
                    # A run that stops puts back what it started; never what it finished.
                    self._db.execute(
                        "UPDATE requests SET state = 'pending', updated_at = ? "
                        "WHERE id = ? AND state = 'running'",
                        (now, update.id),
                    )
                    continue
                record = json.dumps(update.record) if update.record is not None else None
                # Done: the files of an earlier version were moved aside before
                # this version's were written (see the module's docstring).
                self._db.execute(
                    "UPDATE requests SET state = ?, record = COALESCE(?, record), "
                    "cost_usd = COALESCE(?, cost_usd), images = COALESCE(?, images), "
                    "superseded = CASE WHEN ? = 'done' THEN NULL ELSE superseded END, "
                    "updated_at = ? WHERE id = ?",
                    (
                        update.state,
                        record,
                        update.cost_usd,
                        update.images,
                        update.state,
                        now,
                        update.id,
                    ),
                )

    # -- reading ---------------------------------------------------------------------

    def rows(self) -> dict[str, dict[str, Any]]:
        """Every row, by id.

        Each is a dict of ``line``, ``state``, ``hash``, ``attempts``,
        ``cost_usd``, ``images``, ``record`` and ``superseded`` (the
        ``(file name, sha256)`` pairs of an earlier version's files that a
        successful run of the request moves aside).
        """
        out: dict[str, dict[str, Any]] = {}
        query = (
            "SELECT id, line, hash, state, attempts, cost_usd, images, record, superseded "
            "FROM requests"
        )
        for row in self._db.execute(query):
            out[row[0]] = {
                "line": row[1],
                "hash": row[2],
                "state": row[3],
                "attempts": row[4],
                "cost_usd": row[5],
                "images": row[6],
                "record": json.loads(row[7]) if row[7] else None,
                "superseded": _superseded(row[8]),
            }
        return out

    def counts(self) -> dict[str, int]:
        """How many rows are in each state."""
        found = dict(self._db.execute("SELECT state, count(*) FROM requests GROUP BY state"))
        return {state: int(found.get(state, 0)) for state in STATES}


def _superseded(text: str | None) -> list[tuple[str, str | None]]:
    """The ``superseded`` column as ``(file name, sha256)`` pairs (malformed entries left out)."""
    if not text:
        return []
    try:
        value = json.loads(text)
    except ValueError:
        return []
    pairs: list[tuple[str, str | None]] = []
    for entry in value if isinstance(value, list) else []:
        if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str):
            pairs.append((entry[0], entry[1] if isinstance(entry[1], str) else None))
    return pairs


def _supersede(superseded: str | None, record: str | None) -> str | None:
    """``superseded`` with the files of the done ``record`` added (its hash wins for a name)."""
    pairs = dict(_superseded(superseded))
    try:
        done = json.loads(record) if record else {}
    except ValueError:
        done = {}
    files = done.get("files") if isinstance(done, dict) else None
    digests = done.get("sha256") if isinstance(done, dict) else None
    if not isinstance(files, list):
        files = []
    if not isinstance(digests, list) or len(digests) != len(files):
        digests = [None] * len(files)
    for name, digest in zip(files, digests, strict=True):
        if isinstance(name, str):
            pairs.pop(name, None)  # in the order of the latest version
            pairs[name] = digest if isinstance(digest, str) else None
    return json.dumps([[name, digest] for name, digest in pairs.items()]) if pairs else None


def _take_lock(path: Path) -> IO[bytes]:
    handle = open(path, "a+b")  # noqa: SIM115 - held open for the run: it is the lock
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ConfigurationError(
            f"another imagestream batch is running with the output directory {path.parent}",
            hint="wait for it to finish, or give this job its own --out-dir",
        ) from None
    except OSError:
        handle.close()
        raise
    return handle


def render_record(record: Mapping[str, Any], out_dir: Path) -> dict[str, Any]:
    """A manifest record as a results line: ``files`` become ``paths`` under ``out_dir``.

    So do the names in ``replaced`` (``replaced/cat-1.png``), which a record
    has when its run moved an earlier version's images aside.
    """
    out = dict(record)
    files = out.pop("files", None) or []
    out["paths"] = [os.fspath(out_dir / name) for name in files]
    if out.get("replaced"):
        out["replaced"] = [os.fspath(out_dir / name) for name in out["replaced"]]
    # Keys in a stable, readable order: what it is, what came of it, then the details.
    order = ["id", "line", "status", "provider", "model", "paths", "sha256", "seed", "seeds"]
    return {key: out[key] for key in order if key in out} | {
        key: value for key, value in out.items() if key not in order
    }


def write_results(
    path: Path,
    requests: Sequence[BatchRequest],
    rows: Mapping[str, Mapping[str, Any]],
    out_dir: Path,
    *,
    include_unfinished: bool,
    skip: Collection[str] = (),
) -> None:
    """Write the results file from the manifest, in job order, atomically.

    ``include_unfinished`` adds a ``pending`` line for each request not done
    or failed; ids in ``skip`` (about to run again) get no line.
    """
    lines = []
    for request in requests:
        row = rows.get(request.id)
        if row is None or request.id in skip:
            continue
        state = row["state"]
        record = row["record"]
        if state in ("done", "failed") and record is not None:
            lines.append(json.dumps(render_record(record, out_dir), ensure_ascii=False))
        elif include_unfinished and state != "done":
            lines.append(
                json.dumps(
                    {"id": request.id, "line": request.line, "status": "pending"},
                    ensure_ascii=False,
                )
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, ("\n".join(lines) + "\n" if lines else "").encode("utf-8"))
    fsync_directory(path.parent)


class ManifestWriter:
    """Commits manifest updates from the event loop, grouped, in one thread of its own.

    :meth:`running` records a start without waiting; :meth:`finish` returns
    once the request's final state is committed (the images' directory
    fsynced first) and its results line appended.

    Args:
        manifest: The open manifest.
        results: The results file to append each finished request's line to.
    """

    def __init__(self, manifest: Manifest, results: Path) -> None:
        self._manifest = manifest
        self._results_path = results
        self._results: IO[str] | None = None
        self._queue: list[tuple[Update, str | None, asyncio.Future[None] | None]] = []
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-manifest")
        self._flushing: asyncio.Task[None] | None = None
        self.commits = 0

    def running(self, request_id: str) -> None:
        """Record that ``request_id`` started (an attempt); not waited for."""
        self._submit(Update(request_id, "running"), None, wait=False)

    async def finish(self, update: Update, results_line: str | None) -> None:
        """Commit ``update`` and append ``results_line``; return when both are done."""
        future = self._submit(update, results_line, wait=True)
        assert future is not None
        await future

    async def release(self, request_ids: Iterable[str]) -> None:
        """Put requests that were running back to pending (a run that stops early)."""
        futures = [
            self._submit(Update(request_id, "pending"), None, wait=True)
            for request_id in request_ids
        ]
        await asyncio.gather(*[future for future in futures if future is not None])

    def _submit(
        self, update: Update, line: str | None, *, wait: bool
    ) -> asyncio.Future[None] | None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] | None = loop.create_future() if wait else None
        self._queue.append((update, line, future))
        if self._flushing is None or self._flushing.done():
            self._flushing = loop.create_task(self._flush())
        return future

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                await asyncio.shield(loop.run_in_executor(self._executor, self._commit, batch))
            except BaseException as exc:
                for _, _, future in batch:
                    if future is not None and not future.done():
                        future.set_exception(
                            exc if isinstance(exc, Exception) else RuntimeError(str(exc))
                        )
                if not isinstance(exc, Exception):
                    raise
                continue
            for _, _, future in batch:
                if future is not None and not future.done():
                    future.set_result(None)

    def _commit(self, batch: list[tuple[Update, str | None, Any]]) -> None:
        if any(update.images for update, _, _ in batch):
            fsync_directory(self._manifest.out_dir)
        self._manifest.apply(update for update, _, _ in batch)
        self.commits += 1
        lines = [line for _, line, _ in batch if line is not None]
        if lines:
            if self._results is None:
                self._results = open(self._results_path, "a", encoding="utf-8")  # noqa: SIM115
            self._results.write("".join(line + "\n" for line in lines))
            self._results.flush()

    async def drain(self) -> None:
        """Wait until everything submitted is committed (a failed commit is not raised here)."""
        while self._flushing is not None and not self._flushing.done():
            await asyncio.wait({self._flushing})

    async def close(self) -> None:
        """Drain, then close the results file and the thread."""
        await self.drain()
        if self._results is not None:
            results, self._results = self._results, None
            await asyncio.get_running_loop().run_in_executor(self._executor, results.close)
        self._executor.shutdown(wait=True)
