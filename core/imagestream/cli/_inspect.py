"""``imagestream providers`` and ``imagestream plugins``."""

from __future__ import annotations

import json
import warnings

import click

from ._errors import reported_errors


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def providers(as_json: bool) -> None:
    """List providers, their models, and whether they stream real previews."""
    # The registry, not imagestream.list_providers: the run machinery (asyncio,
    # the HTTP client, the built-in plugins) stays unimported, and so do the
    # providers' classes (registered as LazyProvider).
    from .._plugins import listing_plugin_manager

    with reported_errors(verbose=False), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # failures are reported by 'imagestream plugins'
        registered = listing_plugin_manager().registry.providers
        found = [registered[name] for name in sorted(registered)]
    if as_json:
        click.echo(json.dumps([p.describe() for p in found], indent=2))
        return
    if not found:
        click.echo("no providers installed (pip install imagestream-procedural)")
        return
    for provider in found:
        if provider.streams_previews:
            previews = "real previews"
        elif provider.can_stream:
            previews = "streams, no previews"  # text or progress as it comes, pictures at the end
        else:
            previews = "no previews (fake streaming)"
        key = f", key from ${provider.key_env}" if provider.key_env else ", no key"
        click.echo(f"{provider.name}: {provider.description} [{previews}{key}]")
        for model in provider.models:
            mark = " (default)" if model.id == provider.default_model else ""
            stream = "previews" if model.streams_previews else "no previews"
            click.echo(f"  {model.id}{mark}  {stream}  {model.description}")


@click.command()
def plugins() -> None:
    """List installed plugins as JSON: name, version, hooks, status (loaded/failed/disabled)."""
    # The built-ins are listed as declared (BUILTIN_HOOKS), not imported: like
    # 'providers', this imports the installed plugins' entry modules only.
    from .._plugins import listing_plugin_manager

    with reported_errors(verbose=False), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the JSON says it all
        manager = listing_plugin_manager()
        manager.registry.providers  # noqa: B018 - registering can fail too; report it
        manager.registry.decoder_names  # noqa: B018
        infos = manager.listed_plugin_infos()
    click.echo(json.dumps([info.as_dict() for info in infos], indent=2))
