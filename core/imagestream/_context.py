"""``RunContext``: what one generation run shares with its provider and plugins."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ._decoding import Decoder
    from ._http import HttpClient
    from ._provider import Provider, ProviderResponse
    from ._request import ImageRequest

__all__ = ["RunContext"]

S = TypeVar("S")

_run_ids = itertools.count(1)


class RunContext:
    """Per-run facilities and storage, passed to providers and every hook.

    Attributes:
        run_id: A number unique within this process.
        request: The request (updated after ``on_request`` hooks).
        provider: The provider serving the run.
        started: ``time.perf_counter()`` when the run started.
        state: Free per-run storage for plugins; namespace keys by plugin name.
        logger: The ``imagestream`` logger (never log keys).
        switches: Per-run switches that are not request fields, as the caller
            gave them: ``"cache"`` (replay an identical earlier run) and
            ``"log"`` (record the run in the generation log). Plugins read
            them with ``context.switches.get("cache")``.
        prepared: The settings the provider's ``validate`` handed on in a
            :class:`~imagestream.provider.Prepared` (``None`` when it returned
            a plain request); read it with :meth:`prepared_as`.
    """

    __slots__ = (
        "_decoders",
        "_generate",
        "_http",
        "logger",
        "prepared",
        "provider",
        "request",
        "run_id",
        "started",
        "state",
        "switches",
    )

    def __init__(
        self,
        request: ImageRequest,
        provider: Provider,
        *,
        decoders: Callable[..., Decoder[Any]],
        http: Callable[[], HttpClient],
        generate: Callable[[], Awaitable[ProviderResponse]],
        switches: Mapping[str, Any] | None = None,
    ) -> None:
        self.run_id = next(_run_ids)
        self.request = request
        self.provider = provider
        self.started = time.perf_counter()
        self.state: dict[str, Any] = {}
        self.logger = logging.getLogger("imagestream")
        self.prepared: Any = None
        self.switches: Mapping[str, Any] = dict(switches or {})
        self._decoders = decoders
        self._http = http
        self._generate = generate

    def prepared_as(self, kind: type[S]) -> S | None:
        """:attr:`prepared` if it is a ``kind``, else ``None`` (then parse the request yourself).

        ::

            settings = context.prepared_as(Settings) or parse(request)
        """
        return self.prepared if isinstance(self.prepared, kind) else None

    def get_decoder(self, name: str, **options: Any) -> Decoder[Any]:
        """A fresh stream decoder registered under ``name`` (see ``register_decoders``)."""
        return self._decoders(name, **options)

    @property
    def http(self) -> HttpClient:
        """The HTTP client for this run: the pipeline's own, else the event loop's pooled one."""
        return self._http()

    async def run_generate_hook(self) -> ProviderResponse:
        """Run the ``generate`` hook for this run's request (used by fake streaming)."""
        return await self._generate()

    def __repr__(self) -> str:
        return f"<RunContext #{self.run_id} provider={self.provider.name!r}>"
