"""The Ray engine: the same job, its requests run by a pool of Ray actors.

Why actors and not Ray Data: a batch of generations is not a table to map
over. Each request is a long, streaming, I/O-bound call whose pace is set by
the provider (per-provider concurrency that moves with the 429s, retries
after ``retry_after``), and its result must be recorded exactly once in a
manifest that survives kills. Ray Data schedules blocks by its own rules,
re-executes failed tasks by itself (a second generation, paid twice, that
nobody records), and has no notion of a provider slowing down. With actors
the driver keeps all of that: the scheduler decides what starts and when,
exactly as in the local engine, and an actor is only a place where
:class:`~imagestream_batch._execute.Executor` runs. Each actor is an asyncio
actor, so one actor runs many requests at once, as the local engine does.

The images come back to the driver through the object store and the driver
writes them: workers need no shared file system, and no file is written by
anyone but the owner of the manifest.

**A worker that dies** (killed, out of memory, its node gone) fails the calls
it was running with a Ray actor error. The engine reports each as
:class:`~imagestream_batch._engines.WorkerLost`; the driver puts the request
back to pending and runs it again, on a replacement actor. Nothing it had
not reported is recorded, so every request is recorded done exactly once.
(The provider may have been asked twice for a request whose worker died
mid-generation: a dead worker cannot say how far it got.)

Ray is imported only when this engine starts: ``pip install
'imagestream-batch[ray]'``. Every node needs imagestream, imagestream-batch
and the provider plugins the job uses installed, and the providers' keys
in its environment (or ``--key``, which is sent to the workers).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from imagestream import ConfigurationError, ImagestreamError

from ._engines import WorkerLost
from ._execute import Executor, ExecutorSettings, Failure, Outcome, Task

__all__ = ["RayEngine", "RayWorker"]


class RayWorker:
    """What each actor holds: an :class:`Executor` (made into an actor class when the engine starts)."""

    def __init__(self, settings: ExecutorSettings, setup: Callable[[], None] | None) -> None:
        if setup is not None:
            setup()
        self._executor = Executor(settings)

    async def run(self, task: Task) -> Outcome:
        """Run one task."""
        return await self._executor.run(task)

    def pid(self) -> int:
        """The actor's process id (tests use it)."""
        return os.getpid()


@attrs.define(eq=False)
class _Slot:
    handle: Any
    busy: int = 0
    alive: bool = True


def _ray() -> Any:
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise ConfigurationError(
            "the ray engine needs Ray, which is not installed",
            hint="pip install 'imagestream-batch[ray]'",
        ) from None


class RayEngine:
    """Runs a batch's requests on Ray actors; the driver (this process) keeps the manifest.

    Args:
        address: The cluster to join (``"auto"``, ``"ray://host:10001"``,
            ...), or ``None`` for a local Ray started for the batch. Either
            way Ray is shut down after the batch; a process already connected
            to Ray (``ray.init`` called before) keeps its connection, and
            ``address`` is not used.
        workers: How many actors.
        worker_cpus: CPUs each actor reserves (fractions allowed): what it
            takes for Ray to place it, not what it may use.
        worker_setup: Called once in each actor before its first request,
            e.g. to register plugins that are not installed as distributions
            (``imagestream.register_plugin``). Must be picklable.
        init_options: More keyword arguments for ``ray.init`` when the engine
            starts Ray itself.
        max_replacements: Dead actors replaced in one run before the batch
            gives up (their requests stay pending).
        start_timeout: Seconds the actors may take to start (a cluster
            without the CPUs they reserve never starts them).
    """

    name = "ray"

    def __init__(
        self,
        *,
        address: str | None = None,
        workers: int = 2,
        worker_cpus: float = 1.0,
        worker_setup: Callable[[], None] | None = None,
        init_options: Mapping[str, Any] | None = None,
        max_replacements: int | None = None,
        start_timeout: float = 300.0,
    ) -> None:
        if workers < 1:
            raise ConfigurationError(f"workers must be at least 1, not {workers}")
        self.address = address
        self.workers = workers
        self.worker_cpus = worker_cpus
        self.worker_setup = worker_setup
        self.init_options = dict(init_options or {})
        self.max_replacements = max_replacements if max_replacements is not None else 10 * workers
        self.start_timeout = start_timeout
        self._slots: list[_Slot] = []
        self._remote: Any = None
        self._settings: ExecutorSettings | None = None
        self._started_ray = False
        self.lost = 0
        """Calls lost to a dead worker (their requests ran again)."""
        self.replaced = 0
        """Actors replaced after dying."""
        self.executed = 0
        """Calls answered."""
        self.startup_s: float | None = None
        """Seconds the actors took to start (each a new process that imports the plugins)."""

    @property
    def actors(self) -> list[Any]:
        """The handles of the live actors."""
        return [slot.handle for slot in self._slots if slot.alive]

    def busy(self, actor: Any) -> int:
        """Requests the actor is running now."""
        return next((slot.busy for slot in self._slots if slot.handle is actor), 0)

    async def start(self, settings: ExecutorSettings, concurrency: int) -> None:
        ray = _ray()
        if not ray.is_initialized():
            options: dict[str, Any] = {"log_to_driver": False, **self.init_options}
            if self.address is not None:
                options["address"] = self.address
            ray.init(**options)
            self._started_ray = True
        self._settings = settings
        per_actor = max(1, -(-concurrency // self.workers))
        self._remote = ray.remote(
            num_cpus=self.worker_cpus, max_concurrency=per_actor, max_restarts=0
        )(RayWorker)
        began = time.perf_counter()
        self._slots = [self._spawn() for _ in range(self.workers)]
        # Wait until every actor answers: a worker that cannot start (imagestream-batch
        # missing on its node, a worker_setup that fails) is reported now, not as lost requests.
        ready = asyncio.gather(*(slot.handle.pid.remote() for slot in self._slots))
        try:
            await asyncio.wait_for(ready, self.start_timeout)
        except TimeoutError:
            raise ImagestreamError(
                f"ray: the {self.workers} workers did not start within {self.start_timeout:.0f}s",
                hint=f"each reserves {self.worker_cpus} CPU: does the cluster have them free? "
                "(--workers, or RayEngine(worker_cpus=...))",
            ) from None
        except ray.exceptions.RayError as exc:
            raise ImagestreamError(
                f"ray: a worker could not start: {type(exc).__name__}: {exc}".splitlines()[0],
                hint="every node needs imagestream, imagestream-batch and the job's provider "
                "plugins installed",
            ) from exc
        self.startup_s = time.perf_counter() - began

    def _spawn(self) -> _Slot:
        return _Slot(self._remote.remote(self._settings, self.worker_setup))

    def _lost(self, slot: _Slot, error: BaseException) -> None:
        if not slot.alive:
            return
        slot.alive = False
        # Gone, or unreachable: make sure it is gone, so that it holds no CPU and runs nothing.
        with contextlib.suppress(Exception):
            _ray().kill(slot.handle)
        if self.replaced >= self.max_replacements:
            if not any(other.alive for other in self._slots):
                raise ImagestreamError(
                    f"ray: {self.replaced} workers died and none is left: "
                    f"{type(error).__name__}: {error}".splitlines()[0],
                    hint="check the workers' logs (the dashboard, or /tmp/ray/session_latest/logs)",
                ) from error
            return
        self.replaced += 1
        self._slots.append(self._spawn())

    async def execute(self, task: Task) -> Outcome:
        ray = _ray()
        alive = [slot for slot in self._slots if slot.alive]
        if not alive:
            raise ImagestreamError("ray: no worker is left to run requests")
        slot = min(alive, key=lambda slot: slot.busy)
        slot.busy += 1
        try:
            outcome: Outcome = await slot.handle.run.remote(task)
        except (
            ray.exceptions.RayActorError,
            ray.exceptions.WorkerCrashedError,
            ray.exceptions.ObjectLostError,
            ray.exceptions.NodeDiedError,
            ray.exceptions.LocalRayletDiedError,
        ) as exc:
            self.lost += 1
            self._lost(slot, exc)
            raise WorkerLost(f"{type(exc).__name__}: {exc}".splitlines()[0]) from exc
        except ray.exceptions.RayTaskError as exc:
            # The actor answered with an error of its own making (the executor
            # returns failures, so this is a bug or a broken worker_setup).
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            return Outcome(
                failure=Failure(
                    type=type(cause).__name__,
                    message=str(cause).splitlines()[0] if str(cause) else type(cause).__name__,
                    kind="fatal",
                )
            )
        finally:
            slot.busy -= 1
        self.executed += 1
        return outcome

    async def close(self) -> None:
        ray = _ray() if self._remote is not None or self._started_ray else None
        if ray is None:
            return
        for slot in self._slots:
            if slot.alive:
                with contextlib.suppress(Exception):  # already gone: nothing to release
                    ray.kill(slot.handle)
        self._slots = []
        if self._started_ray:
            self._started_ray = False
            ray.shutdown()
