"""The ``imagestream`` command line.

Subcommands are imported only when they run, so ``imagestream --help`` loads
neither plugins nor provider code and answers quickly however many plugins are
installed.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

__all__ = ["main"]

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
}


class LazyGroup(click.Group):
    """A group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _COMMANDS:
            return None
        module, attr, _ = _COMMANDS[cmd_name]
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, _COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="imagestream", message="imagestream %(version)s")
def main(**_: Any) -> None:
    """Stream image generation from any AI provider through one chunk protocol.

    Try:  imagestream generate "a simple red circle"
    """
