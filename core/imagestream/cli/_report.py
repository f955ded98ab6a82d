"""What the command line says when something goes wrong, as text: no click here.

Shared by the click commands (:mod:`._errors` prints it with click) and the
listing commands run without click (:mod:`._listing`), so both say the same.
"""

from __future__ import annotations

from ..errors import ImagestreamError

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def error_text(message: str, hint: str | None) -> str:
    """The lines on stderr for an error: ``error: MESSAGE`` and, if any, ``  hint: HINT``."""
    return f"error: {message}" + (f"\n  hint: {hint}" if hint else "")


def failure(exc: BaseException) -> tuple[str, str | None, int]:
    """``(message, hint, exit code)`` for an exception reported as one line.

    Ctrl-C is "interrupted" (exit 130); imagestream's errors say what they
    are and what to do; anything else is unexpected, and worth a report.
    """
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", None, EXIT_INTERRUPTED
    if isinstance(exc, ImagestreamError):
        return exc.message, exc.hint, EXIT_ERROR
    return (
        f"unexpected {type(exc).__name__}: {exc}",
        "run again with --verbose for the traceback, and report it",
        EXIT_ERROR,
    )


def failed_plugin_lines(told: set[str]) -> list[str]:
    """A warning line for each plugin that failed to load and is not in ``told`` (added to it).

    Reads the process-wide plugin manager, if anything made one: plugins are
    never loaded for this.
    """
    from .. import _plugins

    manager = _plugins._manager
    if manager is None:
        return []  # nothing loaded plugins, so nothing failed
    lines = []
    for info in manager.plugin_infos():
        if info.status != "failed" or info.name in told:
            continue
        told.add(info.name)
        reason = (info.error or "unknown error").strip().splitlines()[0]
        lines.append(
            f"warning: plugin {info.name!r} failed to load and was skipped: {reason}"
            " (see `imagestream plugins`)"
        )
    return lines
