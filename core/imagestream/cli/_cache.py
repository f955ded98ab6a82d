"""``imagestream cache info`` and ``imagestream cache clear``: the generation cache on disk."""

from __future__ import annotations

import json

import click

from ._errors import reported_errors


def _size(count: int) -> str:
    value = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{count} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _disabled() -> bool:
    from .._plugins import _env_list

    return "cache" in (_env_list("IMAGESTREAM_DISABLE_PLUGINS") or [])


@click.group()
def cache() -> None:
    """Inspect or clear the generation cache.

    Runs with --cache (cache=True in Python) and a fixed --seed replay an
    identical earlier run from here instead of calling the provider.
    """


@cache.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def info(as_json: bool) -> None:
    """Show where the cache is, how many entries it holds, their size and the cap."""
    from .._cachestore import CacheStore

    with reported_errors(verbose=False):
        stats = CacheStore.from_env().stats()
    disabled = _disabled()
    if as_json:
        click.echo(json.dumps({**stats.as_dict(), "disabled": disabled}, indent=2))
        return
    click.echo(f"path: {stats.path}")
    click.echo(f"entries: {stats.entries}")
    click.echo(f"size: {_size(stats.bytes)} of {_size(stats.max_bytes)}")
    if disabled:
        click.echo("the cache plugin is disabled (IMAGESTREAM_DISABLE_PLUGINS)")


@cache.command()
def clear() -> None:
    """Remove every entry from the cache."""
    from .._cachestore import CacheStore

    with reported_errors(verbose=False):
        store = CacheStore.from_env()
        count, size = store.clear()
    noun = "entry" if count == 1 else "entries"
    click.echo(f"removed {count} {noun} ({_size(size)}) from {store.directory}")
