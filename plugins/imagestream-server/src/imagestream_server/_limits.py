"""Caps on concurrent generations, per client and in total: 429 with Retry-After beyond them.

Counts live in one process: each process behind a proxy caps its own share
(nothing here needs to be shared between processes).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from imagestream import RateLimitError

__all__ = ["Limits"]

RETRY_AFTER = 2.0
"""Seconds a refused client is told to wait: generations take seconds, not minutes."""


class Limits:
    """Running generations, per client key and in total."""

    def __init__(self, per_client: int, total: int) -> None:
        self.per_client = per_client
        self.total = total
        self.running: Counter[str] = Counter()

    @property
    def in_use(self) -> int:
        """Generations running now."""
        return sum(self.running.values())

    @contextmanager
    def slot(self, client: str) -> Iterator[None]:
        """Hold one generation slot for ``client`` while the block runs.

        Raises:
            RateLimitError: The client or the server is at its cap (``retry_after`` set).
        """
        if self.running[client] >= self.per_client:
            raise RateLimitError(
                f"this client already runs {self.per_client} generations",
                retry_after=RETRY_AFTER,
                hint="wait for one to finish",
            )
        if self.in_use >= self.total:
            raise RateLimitError(
                f"the server runs {self.total} generations, its limit",
                retry_after=RETRY_AFTER,
                hint="try again in a moment",
            )
        self.running[client] += 1
        try:
            yield
        finally:
            self.running[client] -= 1
            if not self.running[client]:
                del self.running[client]
