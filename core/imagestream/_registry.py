"""The registry of providers and decoders that plugins registered.

Filled lazily: the ``register_*`` hooks run the first time a provider or
decoder is looked up, not when plugins load, and again only after the set of
plugins changed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ._hookcall import ordered_calls
from ._options import did_you_mean
from .errors import PluginError, UnknownDecoderError, UnknownProviderError

if TYPE_CHECKING:
    import click

    from ._decoding import Decoder, DecoderFactory
    from ._plugins import PluginManager
    from ._provider import Provider

__all__ = ["CORE_COMMANDS", "DEFAULT_PROVIDER", "Registry"]

DEFAULT_PROVIDER = "procedural"
"""The provider used when none is named: offline, no key (``imagestream-procedural``)."""

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_COMMAND_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")

T = TypeVar("T")

CORE_COMMANDS = frozenset({"generate", "providers", "plugins"})
"""Subcommands the core defines; no plugin may register these names."""


class Registry:
    """Providers and decoders by name, with the plugin that registered each."""

    def __init__(self, manager: PluginManager) -> None:
        self._manager = manager
        self._providers: dict[str, tuple[Provider, str]] | None = None
        self._decoders: dict[str, tuple[DecoderFactory, str]] | None = None
        self._commands: dict[str, tuple[click.Command, str]] | None = None

    def invalidate(self) -> None:
        """Forget what was registered; the hooks run again on the next lookup."""
        self._providers = None
        self._decoders = None
        self._commands = None

    # -- providers ---------------------------------------------------------

    @property
    def providers(self) -> dict[str, Provider]:
        """Every registered provider, by name."""
        return {name: entry[0] for name, entry in self._provider_table().items()}

    def provider(self, name: str | None) -> Provider:
        """The provider called ``name`` (``None``: the default provider).

        Raises:
            UnknownProviderError: Nothing registered that name; the message
                lists what is installed.
        """
        table = self._provider_table()
        wanted = name or DEFAULT_PROVIDER
        if wanted in table:
            return table[wanted][0]
        known = ", ".join(sorted(table)) or "none"
        guess = did_you_mean(wanted, table)
        raise UnknownProviderError(
            f"no provider named {wanted!r} (installed: {known})",
            hint=f"did you mean {guess!r}?"
            if guess
            else f"pip install imagestream-{wanted}, or run 'imagestream plugins' to see failures",
        )

    def _provider_table(self) -> dict[str, tuple[Provider, str]]:
        if self._providers is None:
            table: dict[str, tuple[Provider, str]] = {}
            self._collect("register_providers", lambda plugin: self._provider_adder(table, plugin))
            self._providers = table
        return self._providers

    def _provider_adder(
        self, table: dict[str, tuple[Provider, str]], plugin: str
    ) -> Callable[[Provider], None]:
        def register(provider: Provider) -> None:
            name = getattr(provider, "name", None)
            if not isinstance(name, str) or not _NAME.match(name):
                raise PluginError(
                    f"plugin {plugin!r} registered a provider with an invalid name {name!r}",
                    hint="use lower case letters, digits, '-', '_' and '.'",
                )
            _claim(table, "provider", name, provider, plugin)

        return register

    # -- decoders ----------------------------------------------------------

    @property
    def decoder_names(self) -> list[str]:
        """Names of every registered decoder."""
        return sorted(self._decoder_table())

    def has_decoder(self, name: str) -> bool:
        """True if a decoder called ``name`` is registered."""
        return name in self._decoder_table()

    def decoder(self, name: str, **options: Any) -> Decoder[Any]:
        """A fresh decoder called ``name``, made with ``options``.

        Raises:
            UnknownDecoderError: Nothing registered that name.
        """
        table = self._decoder_table()
        if name not in table:
            known = ", ".join(sorted(table)) or "none"
            raise UnknownDecoderError(
                f"no stream decoder named {name!r} (installed: {known})",
                hint=f"pip install imagestream-{name}",
            )
        return table[name][0](**options)

    def _decoder_table(self) -> dict[str, tuple[DecoderFactory, str]]:
        if self._decoders is None:
            table: dict[str, tuple[DecoderFactory, str]] = {}
            self._collect("register_decoders", lambda plugin: self._decoder_adder(table, plugin))
            self._decoders = table
        return self._decoders

    def _decoder_adder(
        self, table: dict[str, tuple[DecoderFactory, str]], plugin: str
    ) -> Callable[[str, DecoderFactory], None]:
        def register(name: str, factory: DecoderFactory) -> None:
            if not _NAME.match(name):
                raise PluginError(
                    f"plugin {plugin!r} registered a decoder with an invalid name {name!r}"
                )
            if not callable(factory):
                raise PluginError(
                    f"plugin {plugin!r} registered decoder {name!r} with a non-callable"
                )
            _claim(table, "decoder", name, factory, plugin)

        return register

    # -- commands ----------------------------------------------------------

    @property
    def commands(self) -> dict[str, click.Command]:
        """Every command-line subcommand plugins registered, by name."""
        return {name: entry[0] for name, entry in self._command_table().items()}

    def _command_table(self) -> dict[str, tuple[click.Command, str]]:
        if self._commands is None:
            table: dict[str, tuple[click.Command, str]] = {}
            self._collect("register_commands", lambda plugin: self._command_adder(table, plugin))
            self._commands = table
        return self._commands

    def _command_adder(
        self, table: dict[str, tuple[click.Command, str]], plugin: str
    ) -> Callable[[click.Command], None]:
        import click

        def register(command: click.Command) -> None:
            if not isinstance(command, click.Command):
                raise PluginError(
                    f"plugin {plugin!r} registered {command!r}, which is not a click command"
                )
            name = command.name or ""
            if not _COMMAND_NAME.match(name):
                raise PluginError(
                    f"plugin {plugin!r} registered a command with an invalid name {name!r}",
                    hint="use lower case letters, digits, '-' and '_'",
                )
            if name in CORE_COMMANDS:
                raise PluginError(
                    f"plugin {plugin!r} registered command {name!r}, which is a core command",
                    hint="choose another name",
                )
            _claim(table, "command", name, command, plugin)

        return register

    # -- shared ------------------------------------------------------------

    def _collect(self, hook_name: str, make_register: Callable[[str], Callable[..., None]]) -> None:
        # Call each implementation ourselves (pluggy would call them all in
        # one go) so every registration is attributed to its plugin and one
        # broken plugin cannot hide the others.
        hook = getattr(self._manager.hook, hook_name)
        # Registration order: built-ins first, so the first to claim a name keeps it.
        for plugin_name, call in ordered_calls(hook, registration_order=True):
            try:
                call(register=make_register(plugin_name))
            except Exception as exc:
                self._manager.report_failure(plugin_name, exc)


def _claim(table: dict[str, tuple[T, str]], kind: str, name: str, value: T, plugin: str) -> None:
    """Record ``value`` under ``name`` for ``plugin``; a name another plugin holds is a clash."""
    if name in table and table[name][1] != plugin:
        raise PluginError(
            f"{kind} {name!r} is registered by both {table[name][1]!r} and {plugin!r}",
            hint="uninstall one, or disable it with IMAGESTREAM_DISABLE_PLUGINS",
        )
    table[name] = (value, plugin)
