"""Engines: where a batch's requests run. The scheduler, the manifest and the files stay put.

An engine only executes :class:`~imagestream_batch._execute.Task` objects and
returns their :class:`~imagestream_batch._execute.Outcome`; everything that
makes a batch exact (the manifest, retries, the limits, writing the images)
is the driver's, whatever the engine. So the local engine and the Ray engine
give the same results for the same job, and a worker that dies loses nothing
but the requests it was running, which it reports as :class:`WorkerLost` for
the driver to run again.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ._execute import Executor, ExecutorSettings, Outcome, Task

__all__ = ["Engine", "LocalEngine", "WorkerLost"]


class WorkerLost(Exception):
    """The worker running a task went away before answering; the task was not done."""


@runtime_checkable
class Engine(Protocol):
    """Runs tasks. :meth:`start` comes first, :meth:`close` last (also after a failure)."""

    name: str

    async def start(self, settings: ExecutorSettings, concurrency: int) -> None:
        """Get ready to run up to ``concurrency`` tasks at once."""

    async def execute(self, task: Task) -> Outcome:
        """Run one task; raise :class:`WorkerLost` if its worker died before answering."""

    async def close(self) -> None:
        """Release workers and connections."""


class LocalEngine:
    """Runs every task in this process's event loop."""

    name = "local"

    def __init__(self) -> None:
        self._executor: Executor | None = None
        self.executed = 0

    async def start(self, settings: ExecutorSettings, concurrency: int) -> None:
        self._executor = Executor(settings)

    async def execute(self, task: Task) -> Outcome:
        assert self._executor is not None, "start() the engine first"
        try:
            return await self._executor.run(task)
        finally:
            self.executed += 1

    async def close(self) -> None:
        if self._executor is not None:
            executor, self._executor = self._executor, None
            await executor.aclose()
