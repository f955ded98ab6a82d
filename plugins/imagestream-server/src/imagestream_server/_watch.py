"""One watchdog per event loop for every open request: departed clients, stalled writes, pings.

A thousand streams each polling their client five times a second, each
arming a timer around every write and each keeping a ping task would cost
the event loop more than relaying their images. Instead every running
request registers a *check* here, and one task calls all of them every
``TICK`` seconds (only while something is registered): a check returning
True gets its task cancelled, which closes that generation, upstream
included.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["TICK", "Check", "until_client_leaves", "watcher"]

T = TypeVar("T")

TICK = 0.2
"""Seconds between checks: a client that leaves is noticed, and its run stopped, within this."""

Check = Callable[[float], bool]
"""Called with the loop's time on each tick; True cancels the watched task."""

_log = logging.getLogger("imagestream.server")


class Watcher:
    """Runs the registered checks of one event loop, one tick at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._checks: dict[asyncio.Future[Any], Check] = {}
        self._ticker: asyncio.Task[None] | None = None

    def watch(self, task: asyncio.Future[Any], check: Check) -> None:
        """Cancel ``task`` on the first tick where ``check`` says so."""
        self._checks[task] = check
        if self._ticker is None or self._ticker.done():
            self._ticker = self._loop.create_task(self._tick())

    def unwatch(self, task: asyncio.Future[Any]) -> None:
        """Stop watching ``task`` (it finished)."""
        self._checks.pop(task, None)

    async def _tick(self) -> None:
        while self._checks:
            await asyncio.sleep(TICK)
            now = self._loop.time()
            for task, check in list(self._checks.items()):
                try:
                    stop = check(now)
                except Exception:  # a broken check must not stop the others being watched
                    _log.exception("a request's watchdog check failed")
                    stop = True
                if stop:
                    self._checks.pop(task, None)
                    task.cancel()


_watchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Watcher] = (
    weakref.WeakKeyDictionary()
)


def watcher() -> Watcher:
    """The running loop's watcher."""
    loop = asyncio.get_running_loop()
    found = _watchers.get(loop)
    if found is None:
        found = _watchers[loop] = Watcher(loop)
    return found


async def until_client_leaves(check: Check, work: Awaitable[T]) -> T | None:
    """Run ``work``; cancel it within :data:`TICK` seconds of ``check`` turning true (then ``None``).

    Cancelling closes the generation, which closes the provider's
    connection: a browser tab that is closed stops the upstream generation too.
    """
    task = asyncio.ensure_future(work)
    stopped = False

    def stop_when(now: float) -> bool:
        nonlocal stopped
        stopped = check(now)
        return stopped

    watching = watcher()
    watching.watch(task, stop_when)
    try:
        return await task
    except asyncio.CancelledError:
        if stopped and task.cancelled():
            return None  # our own doing: the client is gone
        raise
    finally:
        watching.unwatch(task)
        if not task.done():  # this handler itself was cancelled
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
