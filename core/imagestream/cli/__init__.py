"""The ``imagestream`` command line.

The core's subcommands are imported only when they run. Plugins add their
own through the ``register_commands`` hook; those are looked up only when a
command that is not the core's is asked for, or when the commands are listed
(``--help``), so running a core command never loads plugin code for it.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from ._errors import reported_errors

__all__ = ["main", "reported_errors"]

# name -> (module, attribute, one-line help shown by --help without importing)
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "generate": ("imagestream.cli._generate", "generate", "Generate images, streaming previews."),
    "providers": (
        "imagestream.cli._inspect",
        "providers",
        "List providers, their models and previews.",
    ),
    "plugins": (
        "imagestream.cli._inspect",
        "plugins",
        "List plugins as JSON: version, hooks, status.",
    ),
    "models": ("imagestream.cli._models", "models", "List models and their options."),
    "keys": ("imagestream.cli._keys", "keys", "Store API keys for providers."),
    "logs": ("imagestream.cli._logs", "logs", "Show the log of earlier generations."),
    "cache": ("imagestream.cli._cache", "cache", "Inspect or clear the generation cache."),
}


def _plugin_commands() -> dict[str, click.Command]:
    import warnings

    from .._plugins import get_plugin_manager

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # failures are reported by 'imagestream plugins'
        return get_plugin_manager().registry.commands


class LazyGroup(click.Group):
    """A group whose core commands are imported on first use, and plugins' looked up."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*_COMMANDS, *_plugin_commands()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _COMMANDS:
            module, attr, _ = _COMMANDS[cmd_name]
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        return _plugin_commands().get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        plugin_commands = _plugin_commands()
        rows = [
            (name, _COMMANDS[name][2] if name in _COMMANDS else _short_help(plugin_commands[name]))
            for name in self.list_commands(ctx)
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _short_help(command: click.Command) -> str:
    return command.get_short_help_str(limit=60)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="imagestream", message="imagestream %(version)s")
def main(**_: Any) -> None:
    """Stream image generation from any AI provider through one chunk protocol.

    Try:  imagestream generate "a simple red circle"
    """
