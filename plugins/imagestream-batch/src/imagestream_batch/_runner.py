"""The driver of a batch: read the job, sync the manifest, schedule, record, report.

:func:`arun_batch` is the whole of ``imagestream batch`` as a coroutine (and
:func:`run_batch` the same for synchronous code). Whatever the engine, this
process decides what starts and when (overall concurrency, each provider's
AIMD limit, retries, the budget), writes every image and owns the manifest.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

import imagestream
from imagestream import ConfigurationError, ImagestreamError, MissingAPIKeyError
from imagestream.provider import did_you_mean

from ._engines import Engine, LocalEngine, WorkerLost
from ._execute import ExecutorSettings, MadeImage, Outcome, Task
from ._files import remove_temporaries, set_aside, write_atomic
from ._job import (
    FIELDS,
    BatchRequest,
    JobError,
    Problem,
    file_names,
    load_job,
    prepare_requests,
)
from ._limits import Budget, ProviderLimiter, backoff_delay
from ._manifest import Manifest, ManifestWriter, Update, render_record, write_results

__all__ = ["BatchStats", "BatchSummary", "arun_batch", "default_out_dir", "run_batch"]

RESULTS_NAME = "results.jsonl"
MAX_RATE_LIMITS = 30
"""The 429 that makes a request recorded failed (429s do not count against ``retries``)."""
MAX_LOSSES = 3
"""The worker death (while running it) that makes a request recorded failed."""

_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}


def default_out_dir(job: Path) -> Path:
    """Where a job's images go by default: next to it, ``<job name>-images``."""
    return job.with_name(f"{job.stem}-images")


@attrs.define
class BatchStats:
    """The live counters of a run, handed to the ``observer`` at every change.

    Attributes:
        total: Requests in the job.
        earlier: Done by an earlier run (not run again).
        to_run: Requests this run has to do.
        done: Done by this run.
        failed: Recorded failed by this run.
        running: Running now.
        images: Images written by this run.
        replaced: Images of earlier versions of changed lines this run moved
            into ``replaced/`` (its new images took their place).
        retries: Attempts made again after a failure or a 429.
        rate_limited: 429s received.
        lost: Requests whose worker died while running them (run again).
        cost_usd: What this run's requests cost, as far as known.
        spent_before: Cost recorded by earlier runs.
        cost_unknown: Requests done whose cost nobody could tell.
        started: ``time.monotonic()`` when scheduling began.
        stopped: Why the run stopped starting requests early, if it did
            (``"max-cost"``, ``"interrupted"``, ``"error"``).
    """

    total: int = 0
    earlier: int = 0
    to_run: int = 0
    done: int = 0
    failed: int = 0
    running: int = 0
    images: int = 0
    replaced: int = 0
    retries: int = 0
    rate_limited: int = 0
    lost: int = 0
    cost_usd: float = 0.0
    spent_before: float = 0.0
    cost_unknown: int = 0
    started: float = attrs.Factory(time.monotonic)
    stopped: str | None = None

    @property
    def elapsed_s(self) -> float:
        """Seconds since scheduling began."""
        return time.monotonic() - self.started

    @property
    def images_per_minute(self) -> float:
        """Images written per minute by this run."""
        elapsed = self.elapsed_s
        return self.images * 60.0 / elapsed if elapsed > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at this run's pace, when it has one."""
        finished = self.done + self.failed
        left = self.to_run - finished
        if finished == 0 or left <= 0:
            return None if left > 0 else 0.0
        return self.elapsed_s / finished * left


@attrs.frozen
class BatchSummary:
    """How a run ended.

    Attributes:
        total: Requests in the job.
        done: Requests done, by this run or earlier ones.
        done_now: Of those, done by this run.
        failed: Requests recorded failed.
        pending: Requests not done (stopped early, or interrupted).
        images: Images written by this run.
        cost_usd: What this run cost, as far as known.
        total_cost_usd: What the job has cost so far, earlier runs included.
        cost_unknown: Requests whose cost nobody could tell.
        elapsed_s: Seconds this run took.
        images_per_minute: This run's pace.
        retries: Attempts made again.
        rate_limited: 429s received.
        lost: Requests run again because their worker died.
        stopped: Why it stopped early (``"max-cost"``, ``"interrupted"``), or ``None``.
        engine: ``"local"`` or ``"ray"``.
        out_dir: Where the images are.
        results: The results file.
        manifest: The manifest database.
        failures: ``(id, error type, message)`` of each failed request (job order).
        replaced: Images of earlier versions of changed lines this run moved
            into ``out_dir/replaced/``.
    """

    total: int
    done: int
    done_now: int
    failed: int
    pending: int
    images: int
    cost_usd: float
    total_cost_usd: float
    cost_unknown: int
    elapsed_s: float
    images_per_minute: float
    retries: int
    rate_limited: int
    lost: int
    stopped: str | None
    engine: str
    out_dir: Path
    results: Path
    manifest: Path
    failures: tuple[tuple[str, str, str], ...] = ()
    replaced: int = 0

    @property
    def ok(self) -> bool:
        """True when every request of the job is done."""
        return self.done == self.total

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output."""
        out = attrs.asdict(self, recurse=False)
        for name in ("out_dir", "results", "manifest"):
            out[name] = str(out[name])
        out["failures"] = [
            {"id": request_id, "type": kind, "message": message}
            for request_id, kind, message in self.failures
        ]
        return out


def _may_write(request: BatchRequest, stems: Collection[str]) -> bool:
    """True when ``request`` may write a file whose stem (casefolded) is in ``stems``."""
    if not stems:
        return False
    own = request.stem.casefold()
    names = {own, *(name.casefold() for name in file_names(request.stem, request.n))}
    return any(stem in names or stem.startswith(own + "+") for stem in stems)


def _resolver() -> Callable[[str | None, str | None], str]:
    """``(provider, model) -> provider name``: the named one, the one listing the model, or the default."""
    found: dict[tuple[str | None, str | None], str] = {}

    def resolve(name: str | None, model: str | None) -> str:
        key = (name, None if name else model)
        if key in found:
            return found[key]
        if name:
            resolved = imagestream.get_provider(name).name
        elif model:
            providers = imagestream.list_providers()
            owners = [p.name for p in providers if any(m.id == model for m in p.models)]
            if len(owners) > 1:
                raise ConfigurationError(
                    f"model {model!r} is offered by {' and '.join(map(repr, owners))}: name the provider"
                )
            if not owners:
                listed = [m.id for p in providers for m in p.models]
                guess = did_you_mean(model, listed)
                raise ConfigurationError(
                    f"unknown model {model!r}: no installed provider lists it"
                    + (f" (did you mean {guess!r}?)" if guess else "; name its provider")
                )
            resolved = owners[0]
        else:
            resolved = imagestream.get_provider(None).name
        found[key] = resolved
        return resolved

    return resolve


def _preflight(
    requests: Sequence[BatchRequest], settings: ExecutorSettings, *, keys_elsewhere: bool
) -> list[Problem]:
    """What each provider's ``validate`` refuses, before anything is sent."""
    problems: list[Problem] = []
    for request in requests:
        params = dict(request.params)
        prompt = str(params.pop("prompt"))
        try:
            provider = imagestream.get_provider(request.provider)
            provider.validate(
                imagestream.ImageRequest(
                    prompt=prompt,
                    provider=request.provider,
                    api_key=settings.api_key,
                    base_url=settings.base_url,
                    **params,
                )
            )
        except MissingAPIKeyError as exc:
            if not keys_elsewhere:
                problems.append(Problem(request.line, exc.message))
        except ImagestreamError as exc:
            problems.append(Problem(request.line, exc.message))
        except Exception as exc:  # a provider's own bug: still this line's problem
            problems.append(Problem(request.line, f"{type(exc).__name__}: {exc}"))
    return problems


@attrs.define(eq=False)
class _Item:
    request: BatchRequest
    attempts: int = 0
    errors: int = 0
    rate_limits: int = 0
    losses: int = 0
    cost: float | None = None


class _Scheduler:
    """Starts what fits, records what ends (see :mod:`imagestream_batch._limits` for the rules)."""

    def __init__(
        self,
        requests: Sequence[BatchRequest],
        *,
        engine: Engine,
        writer: ManifestWriter,
        out_dir: Path,
        limiters: Mapping[str, ProviderLimiter],
        budget: Budget,
        stats: BatchStats,
        superseded: Mapping[str, Sequence[tuple[str, str | None]]],
        concurrency: int,
        retries: int,
        backoff: float,
        max_backoff: float,
        observer: Callable[[BatchStats], None] | None,
    ) -> None:
        self.engine = engine
        self.writer = writer
        self.out_dir = out_dir
        self.limiters = limiters
        self.budget = budget
        self.stats = stats
        self.superseded = superseded
        # An earlier image of one id may sit under a name another id now
        # takes (``img`` had ``img-1.png``, the job now has an id ``img-1``):
        # whoever writes that name first moves it aside. The saves that may
        # touch such a name hold ``moving``, so that no file changes between
        # the check of its bytes and its move; the others never wait.
        self.earlier_names = {
            name.casefold(): (name, digest)
            for pairs in superseded.values()
            for name, digest in pairs
        }
        stems = {Path(name).stem for name in self.earlier_names}
        self.careful = {
            request.id
            for request in requests
            if request.id in superseded or _may_write(request, stems)
        }
        self.moving = threading.Lock()
        self.concurrency = concurrency
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.observer = observer
        self.fresh: dict[str, deque[_Item]] = {name: deque() for name in limiters}
        self.again: dict[str, list[tuple[float, int, _Item]]] = {name: [] for name in limiters}
        for request in requests:
            self.fresh[request.provider].append(_Item(request))
        self.order = list(limiters)
        self.tasks: set[asyncio.Task[None]] = set()
        # --concurrency counts generations; a request that is being saved and
        # recorded no longer holds one, but at most this many may wait for that
        # (each holds its images in memory).
        self.generating = 0
        self.backlog = concurrency + 8
        self.marked: set[str] = set()  # ids the manifest says are running
        self.wake = asyncio.Event()
        self.seq = itertools.count()
        self.error: BaseException | None = None

    def notify(self) -> None:
        if self.observer is not None:
            self.observer(self.stats)

    # -- the loop ------------------------------------------------------------------

    async def run(self) -> None:
        try:
            while True:
                self.wake.clear()
                if self.stats.stopped is None:
                    self.start_what_fits()
                if not self.tasks and (self.stats.stopped is not None or not self.has_work()):
                    break
                wake_at = self.next_wake()
                timeout = None if wake_at is None else max(0.0, wake_at - time.monotonic())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout)
            if self.error is not None:
                raise self.error
        except BaseException:
            if self.stats.stopped is None:
                self.stats.stopped = "interrupted"
            raise
        finally:
            for task in self.tasks:
                task.cancel()
            if self.tasks:
                await asyncio.wait(self.tasks)
            # Started but not finished (running, or waiting to be retried): pending again.
            if self.marked:
                await self.writer.release(sorted(self.marked))
                self.marked.clear()
            self.stats.running = 0
            self.notify()

    def has_work(self) -> bool:
        return any(self.fresh.values()) or any(self.again.values())

    def next_wake(self) -> float | None:
        now = time.monotonic()
        times = []
        for name in self.order:
            if not (self.fresh[name] or self.again[name]):
                continue
            limiter = self.limiters[name]
            if limiter.resume_at > now:
                times.append(limiter.resume_at)
            elif not self.fresh[name] and self.again[name]:
                times.append(self.again[name][0][0])
        return min(times) if times else None

    def peek(self, provider: str, now: float) -> _Item | None:
        again = self.again[provider]
        if again and again[0][0] <= now:
            return again[0][2]
        fresh = self.fresh[provider]
        return fresh[0] if fresh else None

    def pop(self, provider: str, item: _Item) -> None:
        again = self.again[provider]
        if again and again[0][2] is item:
            heapq.heappop(again)
        else:
            self.fresh[provider].popleft()

    def start_what_fits(self) -> None:
        progress = True
        while progress and self.has_room():
            progress = False
            now = time.monotonic()
            for name in self.order:
                if not self.has_room():
                    return
                limiter = self.limiters[name]
                if not limiter.can_start(now):
                    continue
                item = self.peek(name, now)
                if item is None:
                    continue
                request = item.request
                verdict = self.budget.admit(request.id, name, request.model, request.n)
                if verdict is None:
                    self.stats.stopped = "max-cost"
                    return
                if not verdict:
                    continue
                self.pop(name, item)
                # The slot is taken now, before the task first runs: the next
                # pass of this loop must see it taken.
                epoch = limiter.acquire()
                self.generating += 1
                task = asyncio.get_running_loop().create_task(self.attempt(item, limiter, epoch))
                self.tasks.add(task)
                task.add_done_callback(self.ended)
                progress = True

    def has_room(self) -> bool:
        return (
            self.generating < self.concurrency and len(self.tasks) < self.concurrency + self.backlog
        )

    def ended(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None and self.error is None:
            # Not a failed request (those are recorded): the engine or the disk broke.
            self.error = task.exception()
            self.stats.stopped = "error"
        self.wake.set()

    def again_later(self, item: _Item, at: float) -> None:
        heapq.heappush(self.again[item.request.provider], (at, next(self.seq), item))
        self.stats.retries += 1

    # -- one attempt ---------------------------------------------------------------

    async def attempt(self, item: _Item, limiter: ProviderLimiter, epoch: int) -> None:
        """Run one attempt of ``item``, whose slot of ``limiter`` (taken in ``epoch``) it frees."""
        request = item.request
        item.attempts += 1
        self.writer.running(request.id)
        self.marked.add(request.id)
        self.stats.running += 1
        self.notify()
        try:
            outcome = await self.engine.execute(
                Task(id=request.id, provider=request.provider, params=request.params)
            )
        except WorkerLost as lost:
            self.budget.settle(request.id, request.provider, request.model, None, 0)
            item.losses += 1
            self.stats.lost += 1
            if item.losses >= MAX_LOSSES:
                await self.record_failure(item, "WorkerLost", str(lost), None)
            else:
                heapq.heappush(
                    self.again[request.provider], (time.monotonic(), next(self.seq), item)
                )
            return
        except BaseException:
            self.budget.settle(request.id, request.provider, request.model, None, 0)
            raise
        finally:
            limiter.release()
            self.generating -= 1
            self.stats.running -= 1
            self.wake.set()  # its slot is free while it is saved and recorded
            self.notify()
        images = len(outcome.images)
        cost = self.budget.cost_of(request.provider, request.model, outcome.cost_usd, images)
        self.budget.settle(request.id, request.provider, request.model, cost, images)
        if cost is not None:
            item.cost = (item.cost or 0.0) + cost
            self.stats.cost_usd += cost
        failure = outcome.failure
        if failure is None:
            limiter.succeeded()
            await self.record_done(item, outcome)
            return
        now = time.monotonic()
        if failure.kind == "rate_limit":
            self.stats.rate_limited += 1
            resume_at = limiter.throttled(epoch, failure.retry_after, now)
            item.rate_limits += 1
            if item.rate_limits < MAX_RATE_LIMITS:
                self.again_later(item, resume_at)
                return
        elif failure.kind == "retryable" and item.errors < self.retries:
            item.errors += 1
            self.again_later(item, now + backoff_delay(item.errors, self.backoff, self.max_backoff))
            return
        await self.record_failure(item, failure.type, failure.message, failure.hint)

    def save(
        self, request: BatchRequest, images: Sequence[MadeImage]
    ) -> tuple[list[str], list[str]]:
        """Write the images (atomically); return their file names and where earlier ones went.

        The files of the request's earlier version (a changed line run
        again) are moved into ``replaced/`` first, so that none of them is
        left beside the new images or overwritten by one.
        """
        ordered = sorted(images, key=lambda image: image.sample)
        stems = (
            file_names(request.stem, request.n)
            if len(ordered) > 1 or request.n > 1
            else [request.stem]
        )
        names = []
        for index, image in enumerate(ordered):
            # Beyond the n asked for: '+' never occurs in a stem, so no other id's name.
            stem = stems[index] if index < len(stems) else f"{request.stem}+{index + 1}"
            names.append(f"{stem}.{_EXTENSIONS.get(image.mime_type or '', 'bin')}")
        if request.id not in self.careful:
            for name, image in zip(names, ordered, strict=True):
                write_atomic(self.out_dir / name, image.data)
            return names, []
        earlier = list(self.superseded.get(request.id, ()))
        for name in names:
            found = self.earlier_names.get(name.casefold())
            if found is not None and found not in earlier:
                earlier.append(found)
        with self.moving:
            moved = set_aside(self.out_dir, earlier)
            for name, image in zip(names, ordered, strict=True):
                write_atomic(self.out_dir / name, image.data)
        return names, moved

    async def record_done(self, item: _Item, outcome: Outcome) -> None:
        request = item.request
        files, moved = await asyncio.to_thread(self.save, request, outcome.images)
        seeds = [image.seed for image in sorted(outcome.images, key=lambda image: image.sample)]
        record: dict[str, Any] = {
            "id": request.id,
            "line": request.line,
            "status": "done",
            "provider": request.provider,
            "model": outcome.model,
            "files": files,
            "sha256": [image.sha256 for image in sorted(outcome.images, key=lambda i: i.sample)],
            "seed": seeds[0] if seeds else None,
            "seeds": seeds,
            "usage": dict(outcome.usage) if outcome.usage is not None else None,
            "cost_usd": item.cost,
            "timings": {**outcome.timings, "attempts": item.attempts},
            "replayed": outcome.replayed,
            "error": None,
        }
        if moved:
            record["replaced"] = moved
        line = json.dumps(render_record(record, self.out_dir), ensure_ascii=False)
        await self.writer.finish(
            Update(request.id, "done", record, cost_usd=item.cost, images=len(files)), line
        )
        self.marked.discard(request.id)
        self.stats.done += 1
        self.stats.images += len(files)
        self.stats.replaced += len(moved)
        if item.cost is None:
            self.stats.cost_unknown += 1
        self.notify()

    async def record_failure(self, item: _Item, kind: str, message: str, hint: str | None) -> None:
        request = item.request
        record: dict[str, Any] = {
            "id": request.id,
            "line": request.line,
            "status": "failed",
            "provider": request.provider,
            "model": request.model,
            "files": [],
            "sha256": [],
            "seed": None,
            "seeds": [],
            "usage": None,
            "cost_usd": item.cost,
            "timings": {"attempts": item.attempts},
            "replayed": False,
            "error": {"type": kind, "message": message, "hint": hint},
        }
        line = json.dumps(render_record(record, self.out_dir), ensure_ascii=False)
        await self.writer.finish(Update(request.id, "failed", record, cost_usd=item.cost), line)
        self.marked.discard(request.id)
        self.stats.failed += 1
        self.notify()


async def arun_batch(
    job: str | Path,
    *,
    out_dir: str | Path | None = None,
    results: str | Path | None = None,
    concurrency: int = 8,
    per_provider: int | None = None,
    retries: int = 3,
    backoff: float = 1.0,
    max_backoff: float = 60.0,
    max_cost: float | None = None,
    rerun_changed: bool = False,
    retry_failed: bool = True,
    api_key: str | None = None,
    base_url: str | None = None,
    timeout: float | None = None,  # noqa: ASYNC109 - each request's stall timeout
    deadline: float | None = None,
    log: bool = False,
    cache: bool = False,
    engine: str | Engine = "local",
    address: str | None = None,
    workers: int = 2,
    observer: Callable[[BatchStats], None] | None = None,
    **defaults: Any,
) -> BatchSummary:
    """Run every request of a JSONL job that is not done yet; return how it went.

    Args:
        job: The job file: one JSON object per line, with ``id``, ``prompt``
            and any of ``provider``, ``model``, ``size``, ``steps``, ``seed``,
            ``n``, ``options``, ``negative_prompt``, ``quality``,
            ``output_format``.
        out_dir: Where the images, the manifest and the results go
            (default: ``<job name>-images`` next to the job).
        results: The results file (default: ``results.jsonl`` in ``out_dir``).
        concurrency: Requests running at once, overall.
        per_provider: Requests running at once per provider (default:
            ``concurrency``); a provider's own ``max_concurrency`` is never exceeded.
        retries: Attempts after a transient failure (5xx, a broken
            connection, a stalled stream) before the request is recorded
            failed. 429s do not count: they slow the provider down instead.
        backoff: First retry delay in seconds (doubling, with jitter).
        max_backoff: Longest retry delay.
        max_cost: Stop starting requests when the job's cost would pass this
            many US dollars (see :mod:`imagestream_batch._limits`).
        rerun_changed: Run again done requests whose line changed (default:
            refuse to start, naming them). Once such a request is done
            again, the images of its earlier version are in
            ``out_dir/replaced/``, never deleted or overwritten; until then
            (a failed rerun) they stay where they were.
        retry_failed: Run again requests a previous run recorded failed.
        api_key: A key for every request (default: each provider's variable).
        base_url: An API base URL for every request.
        timeout: Stall timeout per request, in seconds.
        deadline: Time limit per request, in seconds.
        log: Record each generation in the generation log.
        cache: Replay identical seeded requests from the generation cache.
        engine: ``"local"``, ``"ray"`` or an engine object
            (:class:`~imagestream_batch.RayEngine` with options of your own).
        address: The Ray cluster, for ``engine="ray"``.
        workers: Ray actors, for ``engine="ray"``.
        observer: Called with the live :class:`BatchStats` at every change.
        defaults: Request fields for lines that do not set them
            (``provider="openai"``, ``size="1024x1024"``, ``options={...}``).

    Raises:
        JobError: Bad lines, requests a provider refuses, or done lines that
            changed (without ``rerun_changed``); nothing has run.
        ConfigurationError: Another run holds the output directory, or a setting is wrong.
    """
    unknown = sorted(set(defaults) - set(FIELDS))
    if unknown:
        guess = did_you_mean(unknown[0], [*FIELDS, "out_dir", "concurrency", "per_provider"])
        raise TypeError(
            f"arun_batch() got an unexpected keyword argument {unknown[0]!r}"
            + (f" (did you mean {guess!r}?)" if guess else "")
        )
    if concurrency < 1:
        raise ConfigurationError(f"concurrency must be at least 1, not {concurrency}")
    if per_provider is not None and per_provider < 1:
        raise ConfigurationError(f"per_provider must be at least 1, not {per_provider}")
    if retries < 0:
        raise ConfigurationError(f"retries must be 0 or more, not {retries}")
    job_path = Path(job)
    out = Path(out_dir) if out_dir is not None else default_out_dir(job_path)
    results_path = Path(results) if results is not None else out / RESULTS_NAME
    settings = ExecutorSettings(
        api_key=api_key, base_url=base_url, timeout=timeout, deadline=deadline, log=log, cache=cache
    )
    chosen = _engine(engine, address=address, workers=workers)

    lines = load_job(job_path)
    requests = prepare_requests(lines, defaults, _resolver(), job_path)
    problems = _preflight(requests, settings, keys_elsewhere=chosen.name != "local")
    if problems:
        raise JobError(job_path, problems, hint="fix the lines (or the defaults) and run again")
    by_id = {request.id: request for request in requests}

    stats = BatchStats(total=len(requests))
    with Manifest(out) as manifest:
        report = manifest.sync(
            requests, rerun_changed=rerun_changed, retry_failed=retry_failed, job=job_path
        )
        remove_temporaries(out)
        write_results(
            results_path,
            requests,
            manifest.rows(),
            out,
            include_unfinished=False,
            skip=set(report.to_run),
        )
        stats.earlier = len(report.done)
        stats.to_run = len(report.to_run)
        stats.spent_before = report.spent_usd
        to_run = [by_id[request_id] for request_id in report.to_run]
        superseded = {
            request_id: row["superseded"]
            for request_id, row in manifest.rows().items()
            if row["superseded"] and request_id in by_id
        }

        limiters = {}
        for name in dict.fromkeys(request.provider for request in to_run):
            own = imagestream.get_provider(name).max_concurrency
            ceiling = min(per_provider or concurrency, concurrency, own or concurrency)
            limiters[name] = ProviderLimiter(
                name, ceiling, backoff=backoff, max_backoff=max_backoff
            )
        budget = Budget(
            max_cost,
            spent=report.spent_usd,
            pricing_of=lambda name, model: imagestream.get_provider(name).pricing(model),
        )
        for request_id, row in manifest.rows().items():
            earlier = by_id.get(request_id)
            if earlier is not None and row["state"] == "done" and row["cost_usd"] is not None:
                budget.learn(earlier.provider, earlier.model, row["cost_usd"], row["images"])
        writer = ManifestWriter(manifest, results_path)
        stats.started = time.monotonic()
        if observer is not None:
            observer(stats)
        try:
            if to_run:
                await chosen.start(settings, concurrency)
                scheduler = _Scheduler(
                    to_run,
                    engine=chosen,
                    writer=writer,
                    out_dir=out,
                    limiters=limiters,
                    budget=budget,
                    stats=stats,
                    superseded=superseded,
                    concurrency=concurrency,
                    retries=retries,
                    backoff=backoff,
                    max_backoff=max_backoff,
                    observer=observer,
                )
                await scheduler.run()
        finally:
            try:
                await writer.close()
                await asyncio.shield(
                    asyncio.to_thread(_final_results, manifest, requests, results_path, out)
                )
            finally:
                await chosen.close()
        rows = manifest.rows()
    return _summary(stats, requests, rows, chosen.name, out, results_path, manifest.path)


def _final_results(
    manifest: Manifest, requests: Sequence[BatchRequest], results: Path, out: Path
) -> None:
    write_results(results, requests, manifest.rows(), out, include_unfinished=True)


def _engine(engine: str | Engine, *, address: str | None, workers: int) -> Engine:
    if not isinstance(engine, str):
        return engine
    if engine == "local":
        if address is not None:
            raise ConfigurationError("--address is for the ray engine", hint="add --engine ray")
        return LocalEngine()
    if engine == "ray":
        from ._ray import RayEngine

        return RayEngine(address=address, workers=workers)
    raise ConfigurationError(f"unknown engine {engine!r}", hint="use 'local' or 'ray'")


def _summary(
    stats: BatchStats,
    requests: Sequence[BatchRequest],
    rows: Mapping[str, Mapping[str, Any]],
    engine: str,
    out: Path,
    results: Path,
    manifest: Path,
) -> BatchSummary:
    done = failed = 0
    total_cost = 0.0
    failures = []
    for request in requests:
        row = rows.get(request.id, {})
        total_cost += row.get("cost_usd") or 0.0
        if row.get("state") == "done":
            done += 1
        elif row.get("state") == "failed":
            failed += 1
            error = (row.get("record") or {}).get("error") or {}
            failures.append((request.id, str(error.get("type", "")), str(error.get("message", ""))))
    elapsed = stats.elapsed_s
    return BatchSummary(
        total=len(requests),
        done=done,
        done_now=stats.done,
        failed=failed,
        pending=len(requests) - done - failed,
        images=stats.images,
        cost_usd=stats.cost_usd,
        total_cost_usd=total_cost,
        cost_unknown=stats.cost_unknown,
        elapsed_s=elapsed,
        images_per_minute=stats.images * 60.0 / elapsed if elapsed > 0 else 0.0,
        retries=stats.retries,
        rate_limited=stats.rate_limited,
        lost=stats.lost,
        stopped=stats.stopped,
        engine=engine,
        out_dir=out,
        results=results,
        manifest=manifest,
        failures=tuple(failures),
        replaced=stats.replaced,
    )


def run_batch(job: str | Path, **options: Any) -> BatchSummary:
    """:func:`arun_batch` for synchronous code (runs its own event loop)."""
    return asyncio.run(arun_batch(job, **options))
