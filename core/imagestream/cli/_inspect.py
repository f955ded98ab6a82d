"""``imagestream providers`` and ``imagestream plugins``: the click commands.

The console script prints both without click when they are typed as they
are (:mod:`._listing`, whose text these commands print too).
"""

from __future__ import annotations

import click

from ._errors import reported_errors
from ._listing import plugins_text, providers_text


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def providers(as_json: bool) -> None:
    """List providers, their models, and whether they stream real previews."""
    with reported_errors(verbose=False):
        text = providers_text(as_json)
    click.echo(text)


@click.command()
def plugins() -> None:
    """List installed plugins as JSON: name, version, hooks, status (loaded/failed/disabled)."""
    with reported_errors(verbose=False):
        text = plugins_text()
    click.echo(text)
