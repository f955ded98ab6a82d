"""How the CLI reports errors: one clear line, a hint, no traceback unless --verbose.

With ``--json`` the same facts also go to stdout as ``{"error": {"type",
"message", "hint"}}``, so a script reads one JSON object whatever happened. Broken
plugins are one warning line each on stderr, not Python's warning format.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import click

from ..errors import ImagestreamError
from ._report import EXIT_ERROR, error_text, failed_plugin_lines, failure


def _fail(
    kind: str, message: str, hint: str | None, *, as_json: bool, code: int = EXIT_ERROR
) -> NoReturn:
    # stderr always gets the line for people; with --json, stdout gets the facts for scripts.
    click.echo(error_text(message, hint), err=True)
    if as_json:
        error = {"type": kind, "message": message, "hint": hint}
        click.echo(json.dumps({"error": error}))
    sys.exit(code)


def _fail_with(exc: BaseException, *, as_json: bool) -> NoReturn:
    message, hint, code = failure(exc)
    _fail(type(exc).__name__, message, hint, as_json=as_json, code=code)


@contextmanager
def reported_errors(verbose: bool, *, as_json: bool = False) -> Iterator[None]:
    """Turn exceptions into one line on stderr (and a JSON error on stdout) and a non-zero exit."""
    try:
        yield
    except ImagestreamError as exc:
        if verbose:
            raise
        _fail_with(exc, as_json=as_json)
    except KeyboardInterrupt as exc:
        _fail_with(exc, as_json=as_json)
    except click.ClickException as exc:
        if not as_json:
            raise
        _fail(type(exc).__name__, exc.format_message(), None, as_json=True, code=exc.exit_code)
    except (click.exceptions.Exit, SystemExit):
        raise
    except Exception as exc:
        if verbose:
            raise
        _fail_with(exc, as_json=as_json)


class PluginFailures:
    """Says once, in one line on stderr, that a plugin failed to load.

    The loader's Python warnings are silenced around every command (see
    :func:`quiet_plugin_warnings`); this reads the failures from the plugin
    manager instead, so a failure is told however early it happened. One
    instance serves a whole command line (:func:`plugin_failures`): the group
    reports when the command ends, a command may report earlier.

    Args:
        quiet: Say nothing (``-q``).
    """

    def __init__(self, *, quiet: bool = False) -> None:
        self.quiet = quiet
        self._told: set[str] = set()

    def report(self) -> None:
        """Print a line for each failed plugin not yet reported (plugins are not loaded for it)."""
        lines = failed_plugin_lines(self._told)
        if not self.quiet:
            for line in lines:
                click.echo(line, err=True)


def plugin_failures(ctx: click.Context | None = None) -> PluginFailures:
    """The :class:`PluginFailures` of this command line (a fresh one outside a command)."""
    ctx = ctx or click.get_current_context(silent=True)
    if ctx is None:
        return PluginFailures()
    failures: PluginFailures = ctx.find_root().meta.setdefault(
        "imagestream.plugin_failures", PluginFailures()
    )
    return failures


@contextmanager
def quiet_plugin_warnings() -> Iterator[None]:
    """Silence the loader's ``PluginWarning`` (:class:`PluginFailures` reports failures)."""
    import warnings

    from .._plugins import PluginWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginWarning)
        yield
