"""Built-in plugin ``log``: record runs that ask for it in the generation log.

A run is recorded only when its ``log`` switch is on (``log=True`` to
:func:`imagestream.stream`, :class:`imagestream.Pipeline` or its methods; the
command line passes it unless logging is off). The plugin does nothing per
chunk: it writes one row when the run ends, from ``on_result`` or
``on_error``, in a worker thread so the event loop keeps running, waiting at
most a short busy timeout for a lock. A log that cannot be written (locked,
read-only, corrupt, from a newer imagestream) gives one
:class:`~imagestream._logdb.LogWriteWarning` and leaves the run's result or
error exactly as it was.

Never recorded: the API key (the ``api_key`` field is dropped, any key the
run knows of is masked wherever it appears) and credentials in ``base_url``
(user, password and query values are masked).
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from .._context import RunContext
    from .._logdb import LogEntry
    from .._request import ImageRequest
    from .._result import Analytics, GenerationResult
    from .._secret import Secret

__all__ = ["GenerationLog", "build_entry", "mask_url"]

_ANALYTICS_KEY = "imagestream.analytics"  # where the analytics plugin keeps its Tracker

# Request fields that are columns of their own, or never recorded.
_NOT_OPTIONS = frozenset({"prompt", "provider", "model", "api_key", "options"})

# Option names whose values are credentials, whatever they hold.
_SECRET_NAME = re.compile(
    r"(?i)(?:^|[_-])(?:api[_-]?key|key|secret|token|password|passwd|authorization|auth|credentials?)$"
)

# "scheme://user:password@host" anywhere in a text.
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s@]+@")
# "?key=...", "&access_token=..." anywhere in a text.
_QUERY_CREDENTIALS = re.compile(
    r"(?i)([?&](?:[a-z0-9]*[_-])?(?:api[_-]?key|key|secret|token|password|auth|signature|sig)=)[^&#\s]+"
)


class GenerationLog:
    """The ``log`` plugin (one instance serves every run).

    Both hooks are ``trylast``, so the analytics middleware has attached its
    measurements by then; if it has not (a plugin ordered after this one),
    the measurements are read from its running tracker, and without the
    analytics plugin the total time comes from the run's own start.
    """

    @hookimpl(trylast=True)
    def on_result(self, result: GenerationResult, context: RunContext) -> Awaitable[None] | None:
        """Record a successful run (when its ``log`` switch is on)."""
        if not context.switches.get("log"):
            return None
        return _record(context, result, None)

    @hookimpl(trylast=True)
    def on_error(self, error: BaseException, context: RunContext) -> Awaitable[None] | None:
        """Record a failed or cancelled run, with what it had received (when ``log`` is on)."""
        if not context.switches.get("log"):
            return None
        return _record(context, getattr(error, "partial", None), error)


async def _record(
    context: RunContext, result: GenerationResult | None, error: BaseException | None
) -> None:
    import asyncio
    import warnings

    ended = time.perf_counter()
    started_wall = time.time() - (ended - context.started)
    try:
        await asyncio.to_thread(_write, context, result, error, ended, started_wall)
    except Exception as exc:  # the log must never fail the run
        from .._logdb import LogWriteWarning, log_path

        message = _clean(f"{type(exc).__name__}: {exc}", _secrets(context))
        warnings.warn(
            f"imagestream: this run was not recorded in the generation log "
            f"({log_path()}): {message}",
            LogWriteWarning,
            stacklevel=2,
        )


def _write(
    context: RunContext,
    result: GenerationResult | None,
    error: BaseException | None,
    ended: float,
    started_wall: float,
) -> None:
    from .._logdb import write_entry

    write_entry(build_entry(context, result, error, ended=ended, started_wall=started_wall))


# -- the entry ---------------------------------------------------------------


def build_entry(
    context: RunContext,
    result: GenerationResult | None,
    error: BaseException | None = None,
    *,
    ended: float | None = None,
    started_wall: float | None = None,
) -> LogEntry:
    """The log entry for a finished run (``result`` is the partial one when it failed)."""
    from datetime import UTC, datetime

    from .._logdb import LogEntry, LoggedImage

    ended = time.perf_counter() if ended is None else ended
    if started_wall is None:
        started_wall = time.time() - (ended - context.started)
    secrets = _secrets(context)
    request = context.request
    analytics = _analytics(context, result)
    usage = result.usage if result is not None else None

    images: list[LoggedImage] = []
    if result is not None:
        saved = {image.sample: image for image in result.saved}
        for final in result.images:
            written = saved.get(final.sample)
            images.append(
                LoggedImage(
                    sample=final.sample,
                    path=_clean(str(written.path.absolute()), secrets) if written else None,
                    sha256=written.sha256 if written else final.image.sha256,
                    mime_type=(written.mime_type if written else None) or final.mime_type,
                    bytes=written.bytes if written else final.image.nbytes,
                    width=(written.width if written else None) or final.width,
                    height=(written.height if written else None) or final.height,
                    seed=final.seed,
                    revised_prompt=_clean(final.revised_prompt, secrets)
                    if final.revised_prompt is not None
                    else None,
                )
            )

    input_tokens = analytics.input_tokens if analytics else None
    output_tokens = analytics.output_tokens if analytics else None
    cost = analytics.cost_usd if analytics else None
    if usage is not None:
        input_tokens = usage.input_tokens if input_tokens is None else input_tokens
        output_tokens = usage.output_tokens if output_tokens is None else output_tokens
        cost = usage.cost_usd if cost is None else cost

    return LogEntry(
        time=datetime.fromtimestamp(started_wall, UTC).isoformat(timespec="milliseconds"),
        prompt=_clean(request.prompt, secrets),
        provider=context.provider.name,
        model=request.model or (result.model if result is not None else None),
        options=request_options(request, secrets),
        total_s=analytics.total_s if analytics else ended - context.started,
        first_preview_s=analytics.first_preview_s if analytics else None,
        first_final_s=analytics.first_final_s if analytics else None,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=cost,
        previews=result.preview_count if result is not None else 0,
        text=_clean(result.text, secrets) if result is not None else "",
        thoughts=_clean(result.thoughts, secrets) if result is not None else "",
        error_type=type(error).__name__ if error is not None else None,
        error_message=_clean(str(error), secrets) if error is not None else None,
        images=tuple(images),
    )


def _analytics(context: RunContext, result: GenerationResult | None) -> Analytics | None:
    if result is not None and result.analytics is not None:
        return result.analytics
    tracker = context.state.get(_ANALYTICS_KEY)
    finish = getattr(tracker, "finish", None)
    if callable(finish):
        record: Analytics = finish(context)
        return record
    return None


def request_options(
    request: ImageRequest, secrets: Iterable[Secret | str | None] = ()
) -> dict[str, Any]:
    """The request's settings for the log: its fields (not the prompt, provider,
    model or key) and provider options, every credential masked."""
    import attrs

    from .._request import ImageRequest

    secrets = list(secrets)
    out: dict[str, Any] = {}
    for field in attrs.fields(ImageRequest):
        if field.name in _NOT_OPTIONS:
            continue
        value = getattr(request, field.name)
        if value is None:
            continue
        if field.name == "base_url":
            value = mask_url(str(value))
        out[field.name] = _jsonable(value, secrets)
    if request.options:
        out["options"] = _jsonable(request.options, secrets)
    return out


def mask_url(url: str) -> str:
    """``url`` without credentials: user and password, query values and fragment masked."""
    from urllib.parse import parse_qsl, urlsplit, urlunsplit

    from .._redact import MASK

    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query = "&".join(f"{name}={MASK}" for name, _ in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _jsonable(value: Any, secrets: list[Secret | str | None]) -> Any:
    from pathlib import PurePath

    from .._redact import MASK
    from .._secret import Secret

    if isinstance(value, Secret):
        return MASK
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return _clean(value, secrets)
    if isinstance(value, PurePath):
        return _clean(str(value), secrets)
    if isinstance(value, Mapping):
        return {
            str(key): MASK if _SECRET_NAME.search(str(key)) else _jsonable(item, secrets)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(item, secrets) for item in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    nbytes = getattr(value, "nbytes", None)
    if isinstance(nbytes, int):
        return f"<{type(value).__name__}, {nbytes} bytes>"
    # Anything else is named, never printed: its repr could hold anything.
    return f"<{type(value).__name__}>"


def _secrets(context: RunContext) -> list[Secret | str | None]:
    """Every key this run could know of: the request's and the provider's variables'."""
    import os

    found: list[Secret | str | None] = [context.request.api_key]
    try:
        variables = context.provider.key_variables
    except Exception:
        variables = ()
    found.extend(os.environ.get(name) for name in variables)
    found.extend(_url_secrets(context.request.base_url))
    return found


def _url_secrets(url: str | None) -> list[str]:
    """The user, password and query values of ``url``: quoted elsewhere, they are masked too."""
    from urllib.parse import parse_qsl, urlsplit

    if not url:
        return []
    try:
        parts = urlsplit(url)
        found = [parts.username, parts.password]
    except ValueError:
        return []
    found.extend(value for _, value in parse_qsl(parts.query, keep_blank_values=True))
    return [value for value in found if value]


def _clean(text: str, secrets: Iterable[Secret | str | None]) -> str:
    from .._redact import MASK, redact

    text = redact(text, secrets)
    text = _URL_CREDENTIALS.sub(lambda match: f"{match[1]}{MASK}@", text)
    return _QUERY_CREDENTIALS.sub(lambda match: f"{match[1]}{MASK}", text)
