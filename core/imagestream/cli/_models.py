"""``imagestream models``: every provider's models, and with ``--options`` what ``-o`` takes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click

from ._errors import plugin_failures, quiet_plugin_warnings, reported_errors

if TYPE_CHECKING:
    from .._provider import OptionSpec, Provider


def _accepts(spec: OptionSpec) -> str:
    """``integer 1..100``, ``one of png, jpeg, webp``: the type and what it accepts."""
    if spec.get("choices"):
        return "one of " + ", ".join(spec["choices"])
    low, high = spec.get("min"), spec.get("max")
    if low is not None and high is not None:
        return f"{spec['type']} {low:g}..{high:g}"
    if low is not None:
        return f"{spec['type']} >= {low:g}"
    if high is not None:
        return f"{spec['type']} <= {high:g}"
    return spec["type"]


def _option_lines(options: Mapping[str, OptionSpec]) -> list[str]:
    width = max((len(name) for name in options), default=0)
    lines = []
    for name, spec in options.items():
        accepts = _accepts(spec)
        if "default" in spec:
            accepts += f" (default {spec['default']})"
        description = spec.get("description", "")
        lines.append(
            f"    {name:<{width}}  {accepts}" + (f": {description}" if description else "")
        )
    return lines


def _as_dict(provider: Provider, with_options: bool) -> dict[str, Any]:
    described: dict[str, Any] = {
        "provider": provider.name,
        "description": provider.description,
        "default_model": provider.default_model,
        "models": [
            {
                "id": model.id,
                "description": model.description,
                "streams_previews": model.streams_previews,
                "default": model.id == provider.default_model,
            }
            for model in provider.models
        ],
    }
    if with_options:
        described["options"] = {name: dict(spec) for name, spec in provider.options.items()}
    return described


@click.command()
@click.option("-p", "--provider", "name", help="Only this provider's models.")
@click.option("--options", "with_options", is_flag=True, help="Also list each provider's options.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def models(name: str | None, with_options: bool, as_json: bool) -> None:
    """List each provider's models; with --options, the -o options it takes.

    'imagestream -m MODEL PROMPT' picks the provider that lists MODEL.

    Examples:

    \b
      imagestream models
      imagestream models -p procedural --options
    """
    from .._plugins import get_plugin_manager

    with reported_errors(verbose=False, as_json=as_json), quiet_plugin_warnings():
        registry = get_plugin_manager().registry
        if name is not None:
            found = [registry.provider(name)]
        else:
            found = [provider for _, provider in sorted(registry.providers.items())]
        plugin_failures().report()
    if as_json:
        listed = [_as_dict(provider, with_options) for provider in found]
        click.echo(json.dumps(listed, indent=2, default=str))
        return
    if not found:
        click.echo("no providers installed (pip install imagestream-procedural)")
    for provider in found:
        click.echo(f"{provider.name}: {provider.description}")
        for model in provider.models:
            mark = " (default)" if model.id == provider.default_model else ""
            click.echo(f"  {model.id}{mark}  {model.description}")
        if with_options:
            if provider.options:
                click.echo("  options (-o NAME VALUE):")
                click.echo("\n".join(_option_lines(provider.options)))
            else:
                click.echo("  options: none listed")
