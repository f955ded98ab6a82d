"""The ``imagestream`` command line: its click group.

The core's subcommands are imported only when they run. Plugins add their
own through the ``register_commands`` hook; those are looked up only when a
command that is not the core's is asked for, or when the commands are listed
(``--help``), so running a core command never loads plugin code for it.

``generate`` is the default command, as ``prompt`` is llm's: when the first
argument is neither a command nor an option of the group itself,
``imagestream "a red circle"`` runs ``imagestream generate "a red circle"``.
"""

from __future__ import annotations

import importlib
import sys

import click

from ._errors import plugin_failures, quiet_plugin_warnings

__all__ = ["DEFAULT_COMMAND", "LazyGroup", "main", "stdin_is_terminal"]

DEFAULT_COMMAND = "generate"
"""The command run when the first argument names none."""

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

    # Listing commands needs the installed plugins, not the built-ins (which import
    # the run machinery): a command that runs gets them with get_plugin_manager().
    from .._plugins import listing_plugin_manager

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # failures are reported by 'imagestream plugins'
        return listing_plugin_manager().registry.commands


def stdin_is_terminal() -> bool:
    """True when standard input is a terminal, so nothing was piped in."""
    return sys.stdin is not None and sys.stdin.isatty()


class LazyGroup(click.Group):
    """A group whose core commands are imported on first use, and plugins' looked up.

    It runs :data:`DEFAULT_COMMAND` when the arguments name no command.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] == "help":
            args = [*args[1:], "--help"]  # 'imagestream help [COMMAND]', as people type it
        elif self._runs_default(ctx, args):
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)

    def _runs_default(self, ctx: click.Context, args: list[str]) -> bool:
        if not args:
            from . import stdin_is_terminal  # the package's: what a test patches

            # Bare 'imagestream' shows the help, unless a prompt is piped in.
            return not ctx.resilient_parsing and not stdin_is_terminal()
        first = args[0]
        if first.startswith("-"):
            own = {opt for param in self.get_params(ctx) for opt in param.opts}
            return first not in own  # an option of generate, or a prompt after '--'
        if first in _COMMANDS:
            return False
        if first.split() != [first]:
            return True  # words with spaces: a prompt, never a command name
        if first in _plugin_commands():
            return False
        # One word close to a command is a typo (resolve_command says so); any other is a prompt.
        return _closest(first.lower(), self.list_commands(ctx)) is None

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0]
        unknown = not name.startswith("-") and self.get_command(ctx, name) is None
        if unknown and not ctx.resilient_parsing:
            message = f"No such command {name!r}."
            guess = _closest(name.lower(), self.list_commands(ctx))
            if guess:
                message += f" Did you mean {guess!r}?"
            raise click.UsageError(message, ctx)
        return super().resolve_command(ctx, args)

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


def _closest(name: str, known: list[str]) -> str | None:
    from .._options import did_you_mean

    return did_you_mean(name, known)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="imagestream", message="imagestream %(version)s")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Stream image generation from any AI provider through one chunk protocol.

    COMMAND defaults to generate, so a prompt alone generates.

    Examples:

    \b
      imagestream "a simple red circle"
      imagestream models --options
    """
    # A plugin that fails to load is one line on stderr when the command ends
    # (or earlier, from commands that report themselves), never a Python warning.
    ctx.with_resource(quiet_plugin_warnings())
    ctx.call_on_close(plugin_failures(ctx).report)
