"""``imagestream logs``: show, search and switch the generation log."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import click

from .._logdb import (
    LogDatabaseError,
    count_entries,
    database_size,
    log_path,
    logs_enabled,
    read_entries,
    set_logs_enabled,
)
from ..errors import ConfigurationError
from ._errors import reported_errors

NO_LOGS = "no logs yet"


@click.group(invoke_without_command=True)
@click.option(
    "-n",
    "--count",
    "count",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="How many of the most recent runs to show (0: all).",
)
@click.option("-q", "--query", "query", help="Only runs whose prompt contains these words.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of text.")
@click.pass_context
def logs(ctx: click.Context, count: int, query: str | None, as_json: bool) -> None:
    """Show the log of earlier generations: the most recent last.

    A run is logged when logging is on (see 'imagestream logs status') and
    'generate' is not given --no-log. Keys are never logged.
    """
    if ctx.invoked_subcommand is not None:
        return
    path = log_path()
    with reported_errors(verbose=False):
        entries = _read(path, count=count, query=query)
    if as_json:
        click.echo(json.dumps(entries, indent=2, ensure_ascii=False))
        return
    if not entries:
        click.echo(f"no logs match {query!r}" if query and path.exists() else NO_LOGS)
        return
    click.echo("\n\n".join(_format(entry) for entry in entries))


def _read(path: Path, *, count: int, query: str | None) -> list[dict[str, Any]]:
    try:
        return read_entries(path, limit=count, search=query)
    except (sqlite3.Error, LogDatabaseError, OSError) as exc:
        raise _unreadable(path, exc) from exc


def _unreadable(path: Path, exc: BaseException) -> ConfigurationError:
    return ConfigurationError(
        f"cannot read the generation log {path}: {exc}",
        hint="if the file is damaged, move it away: a new log starts with the next run",
    )


@logs.command()
def path() -> None:
    """Print the path of the log database (it may not exist yet)."""
    click.echo(str(log_path()))


@logs.command()
def status() -> None:
    """Show whether logging is on, where the log is, how many runs it holds and its size."""
    location = log_path()
    if logs_enabled():
        click.echo("Logging is on for generate (--no-log skips one run)")
    else:
        click.echo("Logging is off (imagestream logs on turns it back on)")
    if not location.exists():
        click.echo(f"No log database yet at {location}")
        return
    click.echo(f"Log database: {location}")
    try:
        click.echo(f"Runs logged:  {count_entries(location)}")
    except (sqlite3.Error, LogDatabaseError, OSError) as exc:
        click.echo(f"Runs logged:  unknown, the database cannot be read ({exc})")
    click.echo(f"Size:         {_size(database_size(location))}")


@logs.command()
def on() -> None:
    """Turn logging on for generate (the default)."""
    with reported_errors(verbose=False):
        _switch(True)
    click.echo("Logging is on")


@logs.command()
def off() -> None:
    """Turn logging off for generate (Python code logs only when given log=True)."""
    with reported_errors(verbose=False):
        _switch(False)
    click.echo("Logging is off")


def _switch(enabled: bool) -> None:
    try:
        set_logs_enabled(enabled)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot switch logging {'on' if enabled else 'off'}: {exc}"
        ) from exc


# -- text --------------------------------------------------------------------


def _size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"  # pragma: no cover - the loop always returns


def _seconds(value: float | None) -> str | None:
    return None if value is None else f"{value:.2f} s"


def _format(entry: dict[str, Any]) -> str:
    model = " / ".join(str(part) for part in (entry.get("provider"), entry.get("model")) if part)
    lines = [f"#{entry['id']}  {entry['time']}  {model}".rstrip()]
    lines.append(f"  prompt:   {entry['prompt']}")
    options = entry.get("options") or {}
    if options:
        shown = " ".join(
            f"{key}={json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value}"
            for key, value in options.items()
        )
        lines.append(f"  options:  {shown}")
    took = _seconds(entry.get("total_s"))
    if took:
        details = [
            f"first {label} {text}"
            for label, text in (
                ("preview", _seconds(entry.get("first_preview_s"))),
                ("final", _seconds(entry.get("first_final_s"))),
            )
            if text
        ]
        lines.append(f"  took:     {took}" + (f" ({', '.join(details)})" if details else ""))
    counts = [f"{entry.get('previews', 0)} previews"]
    tokens_in, tokens_out = entry.get("input_tokens"), entry.get("output_tokens")
    if tokens_in is not None or tokens_out is not None:
        counts.append(
            f"tokens {tokens_in if tokens_in is not None else '?'} in / "
            f"{tokens_out if tokens_out is not None else '?'} out"
        )
    if entry.get("cost_usd") is not None:
        counts.append(f"${entry['cost_usd']:.4f}")
    lines.append(f"  run:      {', '.join(counts)}")
    for image in entry.get("images") or []:
        facts = [image.get("mime_type") or "image"]
        if image.get("width") and image.get("height"):
            facts.append(f"{image['width']}x{image['height']}")
        if image.get("seed") is not None:
            facts.append(f"seed {image['seed']}")
        if image.get("sha256"):
            facts.append(f"sha256 {image['sha256'][:12]}")
        where = image.get("path") or "(not saved)"
        lines.append(f"  image:    {where}  {', '.join(facts)}")
    text = (entry.get("text") or "").strip()
    if text:
        lines.append(f"  text:     {text}")
    if entry.get("error_type"):
        lines.append(
            f"  error:    {entry['error_type']}: {entry.get('error_message') or ''}".rstrip()
        )
    return "\n".join(lines)
