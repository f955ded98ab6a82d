"""How the CLI reports errors: one clear line, a hint, no traceback unless --verbose."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from ..errors import ImagestreamError

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


@contextmanager
def reported_errors(verbose: bool) -> Iterator[None]:
    """Turn exceptions into one line on stderr and a non-zero exit."""
    try:
        yield
    except ImagestreamError as exc:
        if verbose:
            raise
        line = f"error: {exc.message}"
        if exc.hint:
            line += f"\n  hint: {exc.hint}"
        click.echo(line, err=True)
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except (click.ClickException, click.exceptions.Exit, SystemExit):
        raise
    except Exception as exc:
        if verbose:
            raise
        click.echo(f"error: unexpected {type(exc).__name__}: {exc}", err=True)
        click.echo("  hint: run again with --verbose for the traceback, and report it", err=True)
        sys.exit(EXIT_ERROR)
