"""How fast a batch may go: per-provider AIMD concurrency, backoff, and the cost budget.

**Per provider, AIMD.** Each provider gets a :class:`ProviderLimiter`. Its
ceiling is the smallest of ``--per-provider``, ``--concurrency`` and the
provider's own ``max_concurrency`` (NovelAI: one generation at a time per
key). It starts at the ceiling. A ``RateLimitError`` halves the limit
(multiplicative decrease, never below 1) and pauses the provider's new
requests for the server's ``retry_after`` (or a jittered backoff when it
named none); every ``limit`` successes add one back (additive increase),
up to the ceiling. The limit at which the last 429 came is tried again only
after eight times as many successes, so that a service whose true capacity
is, say, three spends most of its time at three rather than bouncing off
four (each bounce costs a ``retry_after`` pause). A burst of 429s from requests started at the
same limit counts as one signal: only a request started since the last
decrease can halve the limit again, so forty simultaneous refusals halve it
once, not forty times.

**Backoff.** Retries of other transient failures wait
``uniform(d/2, d)`` with ``d = min(max_backoff, backoff * 2**(attempt-1))``:
exponential, with jitter so that requests that failed together do not come
back together.

**Budget.** With ``--max-cost``, a request starts only if the money already
spent (recorded in the manifest, earlier runs included), plus what the
requests in flight are expected to cost, plus its own estimate stays within
the budget. The estimate of a request: the model's flat price per image
(``Pricing.per_image``) times ``n`` when the provider has one; otherwise the
average cost per image of the requests of that provider and model done so
far (earlier runs included), times ``n``; with nothing done yet, unknown, so
one request runs alone first to learn the price. When a done request's cost
cannot be told (no usage reported, no price list), a flat price per image
is charged if there is one; otherwise it counts as free, and so do the
requests after it (the summary counts them as of unknown cost). When
nothing is in flight and the next request does not fit, the batch stops
starting requests.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import attrs

import imagestream

__all__ = ["PROBE_WINDOWS", "Budget", "ProviderLimiter", "backoff_delay"]

PROBE_WINDOWS = 8
"""How many windows of successes before the limit that drew the last 429 is tried again."""


def backoff_delay(attempt: int, base: float, maximum: float) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): exponential, full jitter."""
    ceiling = min(maximum, base * 2 ** max(attempt - 1, 0))
    return random.uniform(ceiling / 2, ceiling)


@attrs.define
class ProviderLimiter:
    """The AIMD concurrency limit of one provider (see the module's docstring).

    Attributes:
        name: The provider's name.
        ceiling: The largest limit allowed.
        limit: The current limit.
        in_flight: Requests running now.
        resume_at: Monotonic time before which no request of it starts.
        decreases: How many times the limit was halved.
        lowest: The lowest the limit went.
        rate_limited: 429s received.
        refused_at: The limit the last 429 came at, until the limit is back there.
    """

    name: str
    ceiling: int
    backoff: float = 1.0
    max_backoff: float = 60.0
    limit: int = 0
    in_flight: int = 0
    resume_at: float = 0.0
    epoch: int = 0
    successes: int = 0
    streak: int = 0
    decreases: int = 0
    lowest: int = 0
    rate_limited: int = 0
    refused_at: int | None = None

    def __attrs_post_init__(self) -> None:
        self.ceiling = max(1, self.ceiling)
        self.limit = self.lowest = self.ceiling

    def can_start(self, now: float) -> bool:
        """True when a request may start now."""
        return self.in_flight < self.limit and now >= self.resume_at

    def acquire(self) -> int:
        """Count a request in; returns the epoch it started in."""
        self.in_flight += 1
        return self.epoch

    def release(self) -> None:
        """Count a request out (whatever became of it)."""
        self.in_flight -= 1

    def succeeded(self) -> None:
        """A request completed: every ``limit`` successes add one to the limit (see the module)."""
        self.streak = 0
        self.successes += 1
        window = self.limit
        if self.refused_at is not None and self.limit + 1 >= self.refused_at:
            window *= PROBE_WINDOWS
        if self.successes >= window:
            self.successes = 0
            if self.limit < self.ceiling:
                self.limit += 1
            if self.refused_at is not None and self.limit >= self.refused_at:
                self.refused_at = None

    def throttled(self, epoch: int, retry_after: float | None, now: float) -> float:
        """A request started in ``epoch`` got a 429: halve (once per epoch) and pause.

        Returns:
            The monotonic time the provider resumes at.
        """
        self.rate_limited += 1
        self.streak += 1
        if epoch == self.epoch:
            self.refused_at = self.limit
            self.limit = max(1, self.limit // 2)
            self.lowest = min(self.lowest, self.limit)
            self.epoch += 1
            self.successes = 0
            self.decreases += 1
        if retry_after is not None and math.isfinite(retry_after) and retry_after >= 0:
            wait = retry_after
        else:
            wait = backoff_delay(self.streak, self.backoff, self.max_backoff)
        self.resume_at = max(self.resume_at, now + wait)
        return self.resume_at


@attrs.define
class Budget:
    """What ``--max-cost`` allows (see the module's docstring).

    Attributes:
        max_cost: The budget in US dollars, or ``None`` for none.
        spent: Cost recorded so far (earlier runs included).
        unknown: Requests done whose cost nobody could tell.
    """

    max_cost: float | None
    spent: float = 0.0
    unknown: int = 0
    _reserved: dict[str, float] = attrs.Factory(dict)
    _probing: set[tuple[str, str | None]] = attrs.Factory(set)
    _seen: dict[tuple[str, str | None], tuple[float, int]] = attrs.Factory(dict)
    _uncosted: set[tuple[str, str | None]] = attrs.Factory(set)
    _pricing: dict[tuple[str, str | None], imagestream.Pricing | None] = attrs.Factory(dict)
    pricing_of: Callable[[str, str | None], imagestream.Pricing | None] | None = None

    def _price(self, provider: str, model: str | None) -> imagestream.Pricing | None:
        key = (provider, model)
        if key not in self._pricing:
            lookup = self.pricing_of
            self._pricing[key] = lookup(provider, model) if lookup is not None else None
        return self._pricing[key]

    def estimate(self, provider: str, model: str | None, n: int) -> float | None:
        """The expected cost of a request; ``None`` when only running one can tell."""
        pricing = self._price(provider, model)
        if pricing is not None and pricing.per_image is not None:
            return pricing.per_image * n
        seen = self._seen.get((provider, model))
        if seen is not None and seen[1] > 0:
            return seen[0] / seen[1] * n
        if (provider, model) in self._uncosted:
            return 0.0  # its requests report no cost and nothing prices them
        return None  # learn it from one request

    def learn(self, provider: str, model: str | None, cost: float, images: int) -> None:
        """Count a request done earlier (``cost`` for ``images`` images) in the averages."""
        if images:
            total, count = self._seen.get((provider, model), (0.0, 0))
            self._seen[(provider, model)] = (total + cost, count + images)

    def cost_of(
        self, provider: str, model: str | None, reported: float | None, images: int
    ) -> float | None:
        """What a request cost: as reported, else the flat price of its images, else unknown."""
        if reported is not None:
            return reported
        pricing = self._price(provider, model)
        if pricing is not None and pricing.per_image is not None and images:
            return pricing.per_image * images
        return None

    @property
    def reserved(self) -> float:
        """What the requests in flight are expected to cost."""
        return sum(self._reserved.values())

    def admit(self, request_id: str, provider: str, model: str | None, n: int) -> bool | None:
        """Reserve the request's estimate if it fits.

        Returns:
            ``True``: it may start. ``False``: not now (something in flight
            may yet free room, or a price is being learnt). ``None``: it
            does not fit and nothing in flight can change that: stop.
        """
        if self.max_cost is None:
            return True
        estimate = self.estimate(provider, model, n)
        key = (provider, model)
        if estimate is None:
            if key in self._probing:
                return False
            if self.spent + self.reserved > self.max_cost:
                return None if not self._reserved else False
            self._probing.add(key)
            self._reserved[request_id] = 0.0
            return True
        if self.spent + self.reserved + estimate <= self.max_cost:
            self._reserved[request_id] = estimate
            return True
        return False if self._reserved else None

    def settle(
        self, request_id: str, provider: str, model: str | None, cost: float | None, images: int
    ) -> None:
        """A request ended: replace its reservation with what it cost (see :meth:`cost_of`)."""
        self._reserved.pop(request_id, None)
        self._probing.discard((provider, model))
        if cost is None:
            if images:
                self.unknown += 1
                self._uncosted.add((provider, model))
            return
        self.spent += cost
        self.learn(provider, model, cost, images)
