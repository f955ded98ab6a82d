"""From the worker thread to the event loop: a bounded queue that a cancel can always break.

The worker :meth:`~Channel.put`\\ s chunks; when ``capacity`` of them wait
unread it blocks, so a consumer that stops reading pauses the sampler
instead of piling previews up in memory (backpressure). The loop side
:meth:`~Channel.get`\\ s them. :meth:`~Channel.cancel` (the stream was closed
or its task cancelled) makes every wait of the worker end and every later
``put`` refuse, which the worker takes as its cue to stop at the next step.

The loop is only ever touched through ``call_soon_threadsafe``; a loop that
has closed counts as a cancel.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import attrs

__all__ = ["Channel", "End"]

_POLL = 0.05  # seconds between two looks at the cancel flag while waiting


@attrs.frozen
class End:
    """The last item: the worker finished, with ``error`` if it failed."""

    error: BaseException | None = None


class Channel:
    """A bounded, cancellable queue from one worker thread to one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, capacity: int) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._slots = threading.BoundedSemaphore(capacity)
        self.cancelled = threading.Event()

    # -- the worker's side ------------------------------------------------------

    def put(self, item: Any) -> bool:
        """Hand ``item`` to the loop, waiting for room; ``False`` (not sent) once cancelled."""
        while not self._slots.acquire(timeout=_POLL):
            if self.cancelled.is_set():
                return False
        if self.cancelled.is_set() or not self._send(item):
            self._slots.release()
            return False
        return True

    def close(self, error: BaseException | None = None) -> None:
        """The worker's last word: done, or failed with ``error``. Never waits."""
        self._send(End(error))

    def wait(self, lock: threading.Lock) -> bool:
        """Take ``lock``, waiting as long as needed; ``False`` if cancelled first."""
        while not lock.acquire(timeout=_POLL):
            if self.cancelled.is_set():
                return False
        if self.cancelled.is_set():
            lock.release()
            return False
        return True

    def _send(self, item: Any) -> bool:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop has closed: nobody is listening any more
            self.cancelled.set()
            return False
        return True

    # -- the loop's side ----------------------------------------------------------

    async def get(self) -> Any:
        """The next item (an :class:`End` last)."""
        item = await self._queue.get()
        if not isinstance(item, End):
            self._slots.release()
        return item

    def cancel(self) -> None:
        """Tell the worker to stop; safe to call more than once, from any thread."""
        self.cancelled.set()
