"""One generation at a time per NovelAI account: a queue, not a retry storm.

NovelAI runs one image generation at a time per account and answers a
second concurrent request with HTTP 429 ("Concurrent generation is locked").
Retrying that 429 with backoff only turns two concurrent requests into a
burst of refused ones. So requests made through one provider object for the
same token and server wait their turn on an :class:`asyncio.Lock`, held for
the whole generation, until the previous stream has ended.

Locks belong to an event loop (an ``asyncio.Lock`` may not be shared
between loops), so there is one table of locks per running loop; a program
that calls ``asyncio.run`` repeatedly gets fresh ones. Tokens are keyed by
their SHA-256, so the table never holds a token itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import weakref

__all__ = ["GenerationLocks"]


class GenerationLocks:
    """An :class:`asyncio.Lock` per (token, base URL), per event loop."""

    def __init__(self) -> None:
        self._tables: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], asyncio.Lock]]
        self._tables = weakref.WeakKeyDictionary()
        self._guard = threading.Lock()  # loops in several threads may ask at once

    def lock(self, token: str, base_url: str) -> asyncio.Lock:
        """The lock that serialises generations for ``token`` on ``base_url``."""
        loop = asyncio.get_running_loop()
        key = (hashlib.sha256(token.encode("utf-8")).hexdigest(), base_url.rstrip("/"))
        with self._guard:
            table = self._tables.setdefault(loop, {})
            lock = table.get(key)
            if lock is None:
                lock = table[key] = asyncio.Lock()
            return lock
