"""The registry of providers and decoders that plugins registered.

Filled lazily: the ``register_*`` hooks run the first time a provider or
decoder is looked up, not when plugins load, and again only after the set of
plugins changed. A provider registered as a
:class:`~imagestream.provider.LazyProvider` is listed as it is, and its class
imported only when it is looked up by name, to run.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ._hookcall import ordered_calls
from .errors import ConfigurationError, PluginError, UnknownDecoderError, UnknownProviderError

if TYPE_CHECKING:
    import click

    from ._decoding import Decoder, DecoderFactory
    from ._plugins import PluginInfo, PluginManager
    from ._provider import Provider

__all__ = ["CORE_COMMANDS", "DEFAULT_PROVIDER", "Registry"]

DEFAULT_PROVIDER = "procedural"
"""The provider used when none is named: offline, no key (``imagestream-procedural``)."""

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_COMMAND_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")

T = TypeVar("T")

CORE_COMMANDS = frozenset(
    {"generate", "providers", "plugins", "models", "keys", "logs", "cache", "help"}
)
"""Subcommands the core defines (``help`` is ``--help``); no plugin may register these names."""


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
        """Every registered provider, by name, as registered: nothing is imported.

        A :class:`~imagestream.provider.LazyProvider` is listed as it is: what
        ``imagestream providers`` shows is declared on it.
        """
        return {name: entry[0] for name, entry in self._provider_table().items()}

    def provider(self, name: str | None) -> Provider:
        """The provider called ``name`` (``None``: the default provider), ready to run.

        A provider registered as a :class:`~imagestream.provider.LazyProvider`
        is loaded (its class imported) and returned itself.

        Raises:
            UnknownProviderError: Nothing registered that name. The message
                says so when a plugin of that name is installed but failed
                to load or is disabled; otherwise it lists what is installed
                and suggests the closest name, or the package to install.
                Also when the provider's class fails to load (the plugin is
                then reported as failed).
        """
        table = self._provider_table()
        wanted = name or DEFAULT_PROVIDER
        if wanted in table:
            return self._loaded(table, wanted)
        raise _missing_provider(wanted, sorted(table), self._manager.plugin_infos())

    def _loaded(self, table: dict[str, tuple[Provider, str]], name: str) -> Provider:
        from ._provider import LazyProvider

        provider, plugin = table[name]
        if not isinstance(provider, LazyProvider):
            return provider
        try:
            return provider.load()
        except Exception as exc:
            del table[name]
            self._manager.report_failure(plugin, exc)
            raise UnknownProviderError(
                f"provider {name!r} is installed but failed to load: {type(exc).__name__}: {exc}",
                hint="see `imagestream plugins`",
            ) from exc

    def provider_for_model(self, model_id: str) -> Provider:
        """The one installed provider whose :attr:`~imagestream.Provider.models` list ``model_id``.

        Raises:
            ConfigurationError: No provider lists it (with the closest listed
                model), or more than one does (naming them all).
        """
        table = self._provider_table()
        owners = sorted(name for name, (provider, _) in table.items() if _lists(provider, model_id))
        if len(owners) == 1:
            return self._loaded(table, owners[0])
        if owners:
            named = " and ".join(repr(owner) for owner in owners)
            raise ConfigurationError(
                f"model {model_id!r} is offered by {named}",
                hint="name the provider: " + " or ".join(f"-p {owner}" for owner in owners),
            )
        listed = {m.id: name for name, (provider, _) in table.items() for m in provider.models}
        from ._options import did_you_mean

        guess = did_you_mean(model_id, listed)
        raise ConfigurationError(
            f"unknown model {model_id!r}: no installed provider lists it",
            hint=f"did you mean {guess!r} ({listed[guess]})?"
            if guess
            else "'imagestream models' lists them; for an unlisted id, name its provider with -p",
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


def _lists(provider: Provider, model_id: str) -> bool:
    return any(model.id == model_id for model in provider.models)


def _plugin_for(name: str, infos: list[PluginInfo]) -> PluginInfo | None:
    """The installed plugin that would provide ``name``: same entry point or package name."""
    packages = {f"imagestream-{name}", f"imagestream_{name}"}
    return next(
        (info for info in infos if info.name == name or info.distribution in packages), None
    )


def _missing_provider(
    wanted: str, installed: list[str], infos: list[PluginInfo]
) -> UnknownProviderError:
    """The error for a provider name nothing registered, saying why as precisely as known."""
    plugin = _plugin_for(wanted, infos)
    if plugin is not None and plugin.status == "failed":
        return UnknownProviderError(
            f"provider {wanted!r} is installed but failed to load: {plugin.error}",
            hint="see `imagestream plugins`",
        )
    if plugin is not None and plugin.status == "disabled":
        return UnknownProviderError(
            f"provider {wanted!r} is installed but disabled",
            hint="remove it from IMAGESTREAM_DISABLE_PLUGINS",
        )
    from ._options import did_you_mean

    broken = [info.name for info in infos if info.status != "loaded" and not info.builtin]
    # A name close to one that is installed is a typo: never tell to pip install it.
    guess = did_you_mean(wanted, [*installed, *broken])
    if guess:
        hint = f"did you mean {guess!r}?"
    else:
        hint = f"pip install imagestream-{wanted}"
        failed = [info.name for info in infos if info.status == "failed"]
        if failed:
            hint += (
                f"; plugins that failed to load: {', '.join(failed)} (see `imagestream plugins`)"
            )
    return UnknownProviderError(
        f"no provider named {wanted!r} (installed: {', '.join(installed) or 'none'})", hint=hint
    )


def _claim(table: dict[str, tuple[T, str]], kind: str, name: str, value: T, plugin: str) -> None:
    """Record ``value`` under ``name`` for ``plugin``; a name another plugin holds is a clash."""
    if name in table and table[name][1] != plugin:
        raise PluginError(
            f"{kind} {name!r} is registered by both {table[name][1]!r} and {plugin!r}",
            hint="uninstall one, or disable it with IMAGESTREAM_DISABLE_PLUGINS",
        )
    table[name] = (value, plugin)
