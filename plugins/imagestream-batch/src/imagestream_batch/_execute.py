"""Running one request: the part of a batch that an engine moves around.

An :class:`Executor` turns a :class:`Task` into an :class:`Outcome`: the
images' bytes and what the run reported, or a :class:`Failure` saying what
went wrong and whether trying again can help. It never raises for a failed
generation, so the same code runs in this process (the local engine) and in
a Ray actor, whose results cross the cluster as plain, picklable values.

The executor's HTTP client does not retry by itself: a 429 reaches the
batch's scheduler at once, which is what lets it slow the provider down
(see :mod:`imagestream_batch._limits`) instead of each request hammering on
its own.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Literal

import attrs

import imagestream
from imagestream import (
    APIConnectionError,
    ConflictError,
    DecoderLimitError,
    HttpClient,
    ImagestreamError,
    ImageValidationError,
    NoImageError,
    Pipeline,
    RateLimitError,
    RetryPolicy,
    ServerError,
    StreamDecodeError,
    StreamInterruptedError,
    UnexpectedResponseError,
)

__all__ = [
    "ExecutorSettings",
    "Executor",
    "Failure",
    "MadeImage",
    "Outcome",
    "Task",
    "classify",
]

FailureKind = Literal["rate_limit", "retryable", "fatal"]

_RETRYABLE: tuple[type[BaseException], ...] = (
    ServerError,
    APIConnectionError,  # APITimeoutError too
    StreamInterruptedError,
    ConflictError,
    UnexpectedResponseError,
    NoImageError,
    ImageValidationError,
)


@attrs.frozen
class Task:
    """One request as an engine receives it.

    Attributes:
        id: The request id.
        provider: The provider's name.
        params: Request fields (``prompt`` included) and ``options``.
    """

    id: str
    provider: str
    params: Mapping[str, Any]


@attrs.frozen
class ExecutorSettings:
    """What every run of a batch shares.

    Attributes:
        api_key: A key for every request (default: each provider's variable).
        base_url: An API base URL for every request.
        timeout: Stall timeout in seconds.
        deadline: Seconds for a whole request.
        log: Record each run in the generation log.
        cache: Replay identical seeded runs from the generation cache.
    """

    api_key: str | None = attrs.field(default=None, repr=False)
    base_url: str | None = None
    timeout: float | None = None
    deadline: float | None = None
    log: bool = False
    cache: bool = False


@attrs.frozen
class MadeImage:
    """One final image of a successful run."""

    data: bytes = attrs.field(repr=lambda data: f"<{len(data)} bytes>")
    mime_type: str | None
    sample: int
    seed: int | None
    width: int | None
    height: int | None
    sha256: str


@attrs.frozen
class Failure:
    """Why a run failed, and whether to try again.

    Attributes:
        type: The exception's class name (``RateLimitError``, ...).
        message: Its message.
        hint: Its hint, when it has one.
        kind: ``"rate_limit"`` (slow the provider down, then retry),
            ``"retryable"`` (retry after a backoff) or ``"fatal"``.
        retry_after: Seconds the provider asked to wait, when it said.
    """

    type: str
    message: str
    kind: FailureKind
    hint: str | None = None
    retry_after: float | None = None


@attrs.frozen
class Outcome:
    """What one run produced: images and facts, or a :class:`Failure`."""

    images: tuple[MadeImage, ...] = ()
    model: str | None = None
    usage: Mapping[str, Any] | None = None
    cost_usd: float | None = None
    timings: Mapping[str, float | None] = attrs.Factory(dict)
    replayed: bool = False
    failure: Failure | None = None


def classify(error: BaseException) -> Failure:
    """The :class:`Failure` for ``error``: rate limit, retryable or fatal."""
    kind: FailureKind
    if isinstance(error, RateLimitError):
        kind = "rate_limit"
    elif isinstance(error, _RETRYABLE) or (
        isinstance(error, StreamDecodeError) and not isinstance(error, DecoderLimitError)
    ):
        kind = "retryable"
    else:
        kind = "fatal"
    if isinstance(error, ImagestreamError):
        message, hint = error.message, error.hint
    else:
        message, hint = f"{type(error).__name__}: {error}", None
    retry_after = getattr(error, "retry_after", None)
    return Failure(
        type=type(error).__name__,
        message=message,
        hint=hint,
        kind=kind,
        retry_after=float(retry_after) if isinstance(retry_after, int | float) else None,
    )


_USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "input_text_tokens",
    "input_image_tokens",
    "output_text_tokens",
    "output_image_tokens",
    "thought_tokens",
    "cost_usd",
)


def _usage(result: imagestream.GenerationResult) -> dict[str, Any] | None:
    if result.usage is None:
        return None
    return {
        name: getattr(result.usage, name)
        for name in _USAGE_FIELDS
        if getattr(result.usage, name, None) is not None
    }


def _cost(result: imagestream.GenerationResult | None) -> float | None:
    if result is None:
        return None
    if result.analytics is not None and result.analytics.cost_usd is not None:
        return result.analytics.cost_usd
    return result.usage.cost_usd if result.usage is not None else None


class Executor:
    """Runs tasks with the installed plugins, through one HTTP client that does not retry.

    Use it as an async context manager (or call :meth:`aclose`) so that its
    connections are closed.
    """

    def __init__(self, settings: ExecutorSettings) -> None:
        self.settings = settings
        self._http: HttpClient | None = None
        self._pipeline: Pipeline | None = None

    async def __aenter__(self) -> Executor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _ready(self) -> Pipeline:
        if self._pipeline is None:
            # max_retries=0: the scheduler sees each 429 and retries itself.
            self._http = HttpClient(retry=RetryPolicy(max_retries=0))
            self._pipeline = Pipeline(manager=imagestream.get_plugin_manager(), http=self._http)
        return self._pipeline

    async def run(self, task: Task) -> Outcome:
        """Run ``task`` to the end; failures come back as ``Outcome.failure``."""
        params = dict(task.params)
        prompt = str(params.pop("prompt"))
        settings = self.settings
        run: dict[str, Any] = {
            "provider": task.provider,
            "save": False,
            "log": settings.log,
            "cache": settings.cache,
        }
        for name in ("api_key", "base_url", "timeout", "deadline"):
            value = getattr(settings, name)
            if value is not None:
                run[name] = value
        started = time.perf_counter()
        try:
            result = await self._ready().agenerate(prompt, **params, **run)
        except Exception as exc:  # not BaseException: a cancellation goes through
            partial = exc.partial if isinstance(exc, ImagestreamError) else None
            return Outcome(
                cost_usd=_cost(partial),
                timings={"total_s": time.perf_counter() - started},
                failure=classify(exc),
            )
        analytics = result.analytics
        images = tuple(
            MadeImage(
                data=final.image.data,
                mime_type=final.mime_type or final.image.mime_type,
                sample=final.sample,
                seed=final.seed,
                width=final.width,
                height=final.height,
                sha256=final.image.sha256,
            )
            for final in result.images
        )
        return Outcome(
            images=images,
            model=result.model,
            usage=_usage(result),
            cost_usd=_cost(result),
            timings={
                "total_s": analytics.total_s if analytics else time.perf_counter() - started,
                "first_chunk_s": analytics.first_chunk_s if analytics else None,
                "first_final_s": analytics.first_final_s if analytics else None,
            },
            replayed=result.replayed,
        )

    async def aclose(self) -> None:
        """Close the HTTP client's connections."""
        if self._http is not None:
            http, self._http = self._http, None
            self._pipeline = None
            await http.close()
