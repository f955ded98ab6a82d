"""``imagestream keys``: store API keys so runs need neither ``--key`` nor a variable."""

from __future__ import annotations

import sys
import warnings

import click

from ..errors import ConfigurationError
from ._errors import reported_errors


@click.group()
def keys() -> None:
    """Store API keys for providers, in a file only you can read.

    A run uses its --key first, then the provider's environment variable,
    then the key stored here under the provider's name.
    """


@keys.command(name="set")
@click.argument("name")
@click.option(
    "--force", is_flag=True, help="Store the key even if no installed provider has this name."
)
def set_key(name: str, force: bool) -> None:
    """Store the key for provider NAME.

    The key is asked for without echo, or read from stdin (one line) when
    stdin is not a terminal.

    \b
    Try:  imagestream keys set openai
    or:   printf '%s' "$KEY" | imagestream keys set openai
    """
    from .._keys import _clean
    from .._keystore import KeyStore

    with reported_errors(verbose=False):
        store = KeyStore()
        if not force:
            _check_provider(name)
        value = _clean(_read_value(name))
        if not value:
            raise ConfigurationError(
                f"{name}: no key given",
                hint=f"type or paste it at the prompt, or pipe it: ... | imagestream keys set {name}",
            )
        if any(ch.isspace() or not ch.isprintable() for ch in value):
            raise ConfigurationError(
                f"{name}: the key has spaces or control characters in it",
                hint="paste the key alone, on one line",
            )
        store.set(name, value)
    click.echo(f"stored the key for {name} in {store.path}", err=True)


@keys.command(name="list")
def list_keys() -> None:
    """List the names that have a stored key (never the keys)."""
    from .._keystore import KeyStore

    with reported_errors(verbose=False):
        names = KeyStore().names()
    for name in names:
        click.echo(name)


@keys.command(name="remove")
@click.argument("name")
def remove_key(name: str) -> None:
    """Forget the stored key for NAME."""
    from .._keystore import KeyStore
    from .._options import did_you_mean

    with reported_errors(verbose=False):
        store = KeyStore()
        if not store.remove(name):
            guess = did_you_mean(name, store.names())
            raise ConfigurationError(
                f"no key stored for {name!r}",
                hint=f"did you mean {guess!r}?" if guess else "'imagestream keys list' shows them",
            )
    click.echo(f"removed the key for {name}", err=True)


@keys.command(name="path")
def key_path() -> None:
    """Print the path of the key store file (it may not exist yet)."""
    from .._keystore import keys_path

    click.echo(str(keys_path()))


def _check_provider(name: str) -> None:
    from .._options import did_you_mean
    from .._plugins import get_plugin_manager

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # failures are reported by 'imagestream plugins'
        installed = get_plugin_manager().registry.providers
    if name in installed:
        return
    guess = did_you_mean(name, installed)
    known = ", ".join(sorted(installed)) or "none"
    force = f"pass --force to store the key under {name!r} anyway"
    raise ConfigurationError(
        f"no installed provider is named {name!r} (installed: {known})",
        hint=f"did you mean {guess!r}? Or {force}" if guess else force,
    )


def _read_value(name: str) -> str:
    if sys.stdin.isatty():
        value: str = click.prompt(
            f"Key for {name}", hide_input=True, default="", show_default=False
        )
        return value
    return sys.stdin.readline()
