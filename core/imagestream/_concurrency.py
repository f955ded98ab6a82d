"""Per-provider concurrency limits: a queue, not a retry storm.

Some services run a fixed number of generations at once per account (NovelAI:
one) and refuse the next with HTTP 429. Retrying that 429 with backoff only
turns concurrent requests into a burst of refused ones, so a provider that
declares :attr:`Provider.max_concurrency <imagestream.Provider.max_concurrency>`
gets its runs queued by the pipeline instead: each run holds a slot for the
whole generation, keyed by :meth:`Provider.concurrency_key
<imagestream.Provider.concurrency_key>` (by default the API key and the base
URL, so two accounts never wait for each other).

Semaphores belong to an event loop, so there is one table per running loop;
a program that calls ``asyncio.run`` repeatedly gets fresh ones. Keys are
hashed by the provider, so the table never holds a key itself.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._provider import Provider
    from ._request import ImageRequest

__all__ = ["concurrency_slot"]

_tables: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, str, int], asyncio.Semaphore]
] = weakref.WeakKeyDictionary()
_guard = threading.Lock()  # loops in several threads may ask at once


def concurrency_slot(provider: Provider, request: ImageRequest) -> asyncio.Semaphore | None:
    """The semaphore a run of ``request`` must hold, or ``None`` when the provider sets no limit."""
    limit = provider.max_concurrency
    if limit is None:
        return None
    key = provider.concurrency_key(request)
    if key is None:
        return None
    loop = asyncio.get_running_loop()
    with _guard:
        table = _tables.setdefault(loop, {})
        entry = (provider.name, key, limit)
        semaphore = table.get(entry)
        if semaphore is None:
            semaphore = table[entry] = asyncio.Semaphore(limit)
        return semaphore
