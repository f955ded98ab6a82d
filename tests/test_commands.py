"""Plugins add command-line subcommands through register_commands."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import click
import pytest
from click.testing import CliRunner

import imagestream
from imagestream import PluginError
from imagestream._plugins import PluginWarning, reset_plugin_manager
from imagestream.cli import main


def _plugin(*commands: click.Command) -> object:
    class CommandPlugin:
        @imagestream.hookimpl
        def register_commands(self, register: Callable[[click.Command], None]) -> None:
            for command in commands:
                register(command)

    return CommandPlugin()


@click.command(help="Say hello to someone.")
@click.argument("who")
def hello(who: str) -> None:
    click.echo(f"hello {who}")


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("IMAGESTREAM_LOAD_PLUGINS", "")  # only the built-ins, and ours
    reset_plugin_manager()
    yield
    reset_plugin_manager()


def test_a_plugin_command_runs_and_is_listed(fresh: None) -> None:
    imagestream.register_plugin(_plugin(hello), "greeter")
    runner = CliRunner()
    done = runner.invoke(main, ["hello", "world"])
    assert done.exit_code == 0, done.output
    assert done.output == "hello world\n"
    listing = runner.invoke(main, ["--help"]).output
    assert "hello" in listing and "Say hello to someone." in listing
    assert "generate" in listing


def test_misspelt_commands_still_fail_cleanly(fresh: None) -> None:
    imagestream.register_plugin(_plugin(hello), "greeter")
    done = CliRunner().invoke(main, ["helo", "world"])
    assert done.exit_code == 2
    assert "No such command 'helo'. Did you mean 'hello'?" in done.output


@pytest.mark.parametrize(
    ("command", "text"),
    [
        (click.Command("generate"), "is a core command"),
        (click.Command("Bad Name"), "invalid name"),
        ("not a command", "not a click command"),
    ],
)
def test_bad_registrations_are_the_plugins_failure(fresh: None, command: object, text: str) -> None:
    imagestream.register_plugin(_plugin(hello), "good")
    imagestream.register_plugin(_plugin(command), "bad")  # type: ignore[arg-type]
    manager = imagestream.get_plugin_manager()
    with pytest.warns(PluginWarning, match=text):
        assert list(manager.registry.commands) == ["hello"]  # the others' commands stay
    info = {i.name: i for i in manager.plugin_infos()}["bad"]
    assert info.status == "failed" and text in (info.error or "")


def test_strict_mode_raises(fresh: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGESTREAM_STRICT_PLUGINS", "1")
    reset_plugin_manager()
    imagestream.register_plugin(_plugin(click.Command("generate")), "bad")
    with pytest.raises(PluginError, match="is a core command"):
        imagestream.get_plugin_manager().registry.commands  # noqa: B018


def test_two_plugins_may_not_claim_one_name(fresh: None) -> None:
    imagestream.register_plugin(_plugin(hello), "first")
    imagestream.register_plugin(_plugin(click.Command("hello")), "second")
    with pytest.warns(PluginWarning, match="'hello' is registered by both 'first' and 'second'"):
        assert imagestream.get_plugin_manager().registry.commands["hello"] is hello
