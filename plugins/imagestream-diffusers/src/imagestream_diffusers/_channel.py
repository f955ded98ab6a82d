"""From the worker thread to the event loop: a bounded queue that a cancel can always break.

The worker :meth:`~Channel.put`\\ s chunks; when ``capacity`` of them wait
unread it blocks, so a consumer that stops reading pauses the sampler
instead of piling previews up in memory (backpressure). The loop side
:meth:`~Channel.get`\\ s them, in order. :meth:`~Channel.cancel` (the stream
was closed or its task cancelled) makes every wait of the worker end and
every later ``put`` refuse, which the worker takes as its cue to stop at the
next step.

One worker, one reader. The items wait in a deque both threads use under
one lock, held for a few operations at a time and never while waiting, so
the loop never waits for the worker. The loop is woken only when its reader
waits for an item: the first ``put`` after it went to sleep schedules one
wake-up with ``call_soon_threadsafe``, and items that arrive while the
reader is busy are taken without any (a slow reader drains what piled up at
once; a fast one pays one wake-up per item). A loop that has closed counts
as a cancel.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from typing import Any

import attrs

__all__ = ["Channel", "End"]

_POLL = 0.05  # seconds between two looks at the cancel flag and the loop while waiting


@attrs.frozen
class End:
    """The last item: the worker finished, with ``error`` if it failed."""

    error: BaseException | None = None


def _resume(waiter: asyncio.Future[None]) -> None:
    """On the loop: resume the :meth:`Channel.get` waiting on ``waiter`` (unless it gave up)."""
    if not waiter.done():
        waiter.set_result(None)


class Channel:
    """A bounded, cancellable queue from one worker thread to one reader on an event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, capacity: int) -> None:
        self._loop = loop
        self._capacity = max(1, capacity)
        self._items: collections.deque[Any] = collections.deque()
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)  # the worker waits on it for room
        self._full = False  # the worker waits for room
        self._waiter: asyncio.Future[None] | None = None  # the loop waits for an item
        self.cancelled = threading.Event()

    # -- the worker's side ------------------------------------------------------

    def put(self, item: Any) -> bool:
        """Hand ``item`` to the loop, waiting for room; ``False`` (not sent) once cancelled."""
        with self._lock:
            while len(self._items) >= self._capacity and not self.abandoned():
                self._full = True
                self._room.wait(_POLL)
                self._full = False
            if self.abandoned():
                return False
            self._items.append(item)
            waiter, self._waiter = self._waiter, None
        return self._wake(waiter)

    def close(self, error: BaseException | None = None) -> None:
        """The worker's last word: done, or failed with ``error``. Never waits."""
        with self._lock:
            self._items.append(End(error))
            waiter, self._waiter = self._waiter, None
        self._wake(waiter)

    def abandoned(self) -> bool:
        """True once cancelled or once the loop has closed (which then counts as a cancel)."""
        if not self.cancelled.is_set() and self._loop.is_closed():
            self.cancelled.set()
        return self.cancelled.is_set()

    def wait(self, lock: threading.Lock) -> bool:
        """Take ``lock``, waiting as long as needed; ``False`` if cancelled first."""
        while not lock.acquire(timeout=_POLL):
            if self.abandoned():
                return False
        if self.abandoned():
            lock.release()
            return False
        return True

    def _wake(self, waiter: asyncio.Future[None] | None) -> bool:
        """Wake the loop if it waits for an item; ``False`` (and cancelled) if it has closed."""
        if waiter is None:
            if not self._loop.is_closed():
                return True
        else:
            try:
                self._loop.call_soon_threadsafe(_resume, waiter)
                return True
            except RuntimeError:  # the loop has closed
                pass
        self.cancelled.set()  # nobody is listening any more
        return False

    # -- the loop's side ----------------------------------------------------------

    async def get(self) -> Any:
        """The next item (an :class:`End` last); waits only when none is there."""
        while True:
            with self._lock:
                if self._items:
                    item = self._items.popleft()
                    if self._full:
                        self._room.notify()
                    return item
                waiter = self._waiter = self._loop.create_future()
            try:
                await waiter
            except BaseException:  # cancelled while waiting: leave no waiter behind
                with self._lock:
                    if self._waiter is waiter:
                        self._waiter = None
                raise

    def pending(self) -> int:
        """How many items wait unread."""
        with self._lock:
            return len(self._items)

    def cancel(self) -> None:
        """Tell the worker to stop; safe to call more than once, from any thread."""
        self.cancelled.set()
        with self._lock:
            self._room.notify_all()
