"""The key store: ``imagestream keys`` and the last place ``find_key`` looks."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner, Result

import imagestream
from imagestream import ConfigurationError, ImageRequest, MissingAPIKeyError, Secret
from imagestream._keystore import KeyStore, keys_path, stored_key
from imagestream._plugins import reset_plugin_manager
from imagestream.cli import main
from imagestream.provider import Provider, find_key, require_key

SECRET = "sk-stored-0123456789"


class KeyedProvider(Provider):
    name: ClassVar[str] = "keyedtest"
    key_env: ClassVar[str | None] = "KEYEDTEST_API_KEY"
    key_aliases: ClassVar[tuple[str, ...]] = ("KEYEDTEST_TOKEN",)


class KeylessProvider(Provider):
    name: ClassVar[str] = "keylesstest"


class _Providers:
    @imagestream.hookimpl
    def register_providers(self, register: Any) -> None:
        register(KeyedProvider())
        register(KeylessProvider())


@pytest.fixture(autouse=True)
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh configuration directory (not yet created) and no key variables."""
    directory = tmp_path / "config" / "imagestream"
    monkeypatch.setenv("IMAGESTREAM_CONFIG_DIR", str(directory))
    for name in ("KEYEDTEST_API_KEY", "KEYEDTEST_TOKEN", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    return directory


@pytest.fixture
def our_providers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("IMAGESTREAM_LOAD_PLUGINS", "")  # the built-ins, and ours
    reset_plugin_manager()
    imagestream.register_plugin(_Providers(), "keyed-test-providers")
    yield
    reset_plugin_manager()


def keys(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, ["keys", *args], input=input)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- the commands -------------------------------------------------------------


def test_set_reads_one_line_from_stdin_and_list_shows_names_only(
    our_providers: None, config: Path
) -> None:
    done = keys("set", "keyedtest", input=f"  {SECRET}  \nsecond line\n")
    assert done.exit_code == 0, done.output
    assert SECRET not in done.output
    assert str(config / "keys.json") in done.output
    assert KeyStore().get("keyedtest") == SECRET  # stripped, first line only

    listed = keys("list")
    assert listed.exit_code == 0, listed.output
    assert listed.stdout == "keyedtest\n"
    assert SECRET not in listed.output


def test_set_replaces_and_keeps_other_names(our_providers: None) -> None:
    assert keys("set", "keyedtest", input="first-key\n").exit_code == 0
    assert keys("set", "keylesstest", "--force", input="other-key\n").exit_code == 0
    assert keys("set", "keyedtest", input="Bearer second-key\n").exit_code == 0
    assert KeyStore().get("keyedtest") == "second-key"
    assert KeyStore().get("keylesstest") == "other-key"
    assert keys("list").stdout == "keyedtest\nkeylesstest\n"


@pytest.mark.parametrize("given", ["", "\n", "   \n", "Bearer \n"])
def test_an_empty_value_is_an_error(our_providers: None, config: Path, given: str) -> None:
    done = keys("set", "keyedtest", input=given)
    assert done.exit_code == 1
    assert "no key given" in done.output
    assert not (config / "keys.json").exists()


def test_a_value_with_spaces_inside_is_refused_without_echoing_it(our_providers: None) -> None:
    done = keys("set", "keyedtest", input="sk-one sk-two\n")
    assert done.exit_code == 1
    assert "spaces" in done.output
    assert "sk-one" not in done.output


def test_a_terminal_gets_a_hidden_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    from imagestream.cli import _keys

    class Terminal:
        def isatty(self) -> bool:
            return True

        def readline(self) -> str:
            raise AssertionError("a terminal is prompted, not read")

    asked: dict[str, Any] = {}

    def prompt(text: str, **kwargs: Any) -> str:
        asked.update(kwargs, text=text)
        return SECRET

    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr(_keys.click, "prompt", prompt)
    assert _keys._read_value("openai") == SECRET
    assert asked["hide_input"] is True
    assert "openai" in asked["text"]


def test_an_unknown_name_gets_did_you_mean_and_force_stores_it(
    our_providers: None, config: Path
) -> None:
    done = keys("set", "keyedtset", input=f"{SECRET}\n")
    assert done.exit_code == 1
    assert "no installed provider is named 'keyedtset'" in done.output
    assert "did you mean 'keyedtest'?" in done.output
    assert "--force" in done.output
    assert not (config / "keys.json").exists()

    forced = keys("set", "keyedtset", "--force", input=f"{SECRET}\n")
    assert forced.exit_code == 0, forced.output
    assert KeyStore().names() == ["keyedtset"]


def test_force_still_refuses_a_name_that_cannot_be_one(config: Path) -> None:
    done = keys("set", "../evil", "--force", input=f"{SECRET}\n")
    assert done.exit_code == 1
    assert "cannot name a key" in done.output
    assert not config.exists()


def test_remove(our_providers: None) -> None:
    assert keys("set", "keyedtest", input=f"{SECRET}\n").exit_code == 0
    missing = keys("remove", "keyedtset")
    assert missing.exit_code == 1
    assert "no key stored for 'keyedtset'" in missing.output
    assert "did you mean 'keyedtest'?" in missing.output

    done = keys("remove", "keyedtest")
    assert done.exit_code == 0, done.output
    assert KeyStore().names() == []
    assert keys("list").stdout == ""
    assert keys("remove", "keyedtest").exit_code == 1


def test_path_prints_the_file_even_before_it_exists(config: Path) -> None:
    done = keys("path")
    assert done.exit_code == 0
    assert done.stdout == f"{config / 'keys.json'}\n"
    assert not config.exists()


@pytest.mark.skipif(sys.platform != "linux", reason="the XDG layout is Linux's")
def test_without_the_override_the_user_config_dir_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IMAGESTREAM_CONFIG_DIR")
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert keys_path() == tmp_path / ".config" / "imagestream" / "keys.json"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert keys_path() == tmp_path / "xdg" / "imagestream" / "keys.json"
    assert (
        keys_path({"IMAGESTREAM_CONFIG_DIR": str(tmp_path / "x")}) == tmp_path / "x" / "keys.json"
    )


# -- the file -----------------------------------------------------------------


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("umask", [0o000, 0o022, 0o277])
def test_file_is_0600_and_directory_0700_whatever_the_umask(config: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        KeyStore().set("openai", SECRET)
        KeyStore().set("novelai", SECRET)  # a rewrite keeps the mode
    finally:
        os.umask(old)
    assert mode(config / "keys.json") == 0o600
    assert mode(config) == 0o700 & ~umask


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_a_wide_open_file_is_narrowed_on_the_next_write(config: Path) -> None:
    config.mkdir(parents=True)
    (config / "keys.json").write_text('{"openai": "x"}')
    (config / "keys.json").chmod(0o644)
    KeyStore().set("novelai", SECRET)
    assert mode(config / "keys.json") == 0o600
    assert KeyStore().names() == ["novelai", "openai"]


def test_the_temporary_file_is_created_private_and_not_left_behind(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[tuple[str, int, int]] = []
    real_open = os.open

    def spy(path: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
        opened.append((os.fspath(path), flags, mode))
        return real_open(path, flags, mode, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(os, "open", spy)
        KeyStore().set("openai", SECRET)
    created = [(path, flags, m) for path, flags, m in opened if flags & os.O_CREAT]
    assert len(created) == 1
    path, flags, created_mode = created[0]
    assert Path(path).parent == config and Path(path).name != "keys.json"
    assert flags & os.O_EXCL
    assert created_mode == 0o600
    assert sorted(os.listdir(config)) == ["keys.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    KeyStore().set("openai", "old-key-1")
    before = (config / "keys.json").read_bytes()

    def fail(*_: Any) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(os, "replace", fail)
        with pytest.raises(ConfigurationError) as info:
            KeyStore().set("openai", SECRET)
    assert str(config / "keys.json") in info.value.message
    assert "No space left on device" in info.value.message
    assert SECRET not in str(info.value)
    assert (config / "keys.json").read_bytes() == before
    assert sorted(os.listdir(config)) == ["keys.json"]
    assert stored_key("openai") == "old-key-1"


def test_the_file_is_plain_json_with_a_note(config: Path) -> None:
    KeyStore().set("openai", SECRET)
    data = json.loads((config / "keys.json").read_text(encoding="utf-8"))
    assert data["openai"] == SECRET
    assert any(name.startswith("//") for name in data)
    assert KeyStore().names() == ["openai"]


def test_an_edited_file_is_read_again(config: Path) -> None:
    KeyStore().set("openai", "first-key-1")
    assert stored_key("openai") == "first-key-1"
    (config / "keys.json").write_text('{"openai": "edited-key-22"}')
    assert stored_key("openai") == "edited-key-22"
    (config / "keys.json").unlink()
    assert stored_key("openai") is None


@pytest.mark.parametrize(
    "content",
    [
        b'{"openai": "sk-stored-0123456789"',  # cut short
        b'["sk-stored-0123456789"]',
        b'{"openai": ["sk-stored-0123456789"]}',
        b'{"openai": "sk-stored-\xff0123456789"}',
    ],
    ids=["truncated", "not-an-object", "not-a-string", "not-utf8"],
)
def test_a_corrupt_file_is_a_configuration_error_naming_the_path(
    our_providers: None, config: Path, content: bytes
) -> None:
    config.mkdir(parents=True)
    (config / "keys.json").write_bytes(content)
    with pytest.raises(ConfigurationError) as info:
        KeyStore().names()
    text = f"{info.value} {info.value.__cause__} {info.value.__context__}"
    assert str(config / "keys.json") in info.value.message
    assert "sk-stored" not in text
    assert info.value.__cause__ is None
    assert info.value.hint and "delete" in info.value.hint

    with pytest.raises(ConfigurationError):
        find_key(None, ["KEYEDTEST_API_KEY"], provider="openai")
    for args in (["list"], ["remove", "openai"], ["set", "keyedtest"]):
        done = keys(*args, input="new-key-1\n")
        assert done.exit_code == 1, args
        assert "cannot read the key store" in done.output
        assert "sk-stored" not in done.output
    assert (config / "keys.json").read_bytes() == content  # never overwritten


def test_a_file_that_cannot_be_read_names_the_path(config: Path) -> None:
    (config / "keys.json").mkdir(parents=True)
    with pytest.raises(ConfigurationError, match="cannot read the key store") as info:
        stored_key("openai")
    assert str(config / "keys.json") in info.value.message


# -- the order: explicit > environment > key store ------------------------------


def test_find_key_order(tmp_path: Path) -> None:
    environ = {"IMAGESTREAM_CONFIG_DIR": str(tmp_path)}
    KeyStore(tmp_path / "keys.json").set("p", "stored-key-3")
    env = ["P_KEY", "P_TOKEN"]
    assert find_key(None, env, provider="p", environ=environ) == Secret("stored-key-3")
    assert find_key(None, env, provider="q", environ=environ) is None
    environ["P_TOKEN"] = "env-key-2"
    assert find_key(None, env, provider="p", environ=environ) == Secret("env-key-2")
    assert find_key("given-key-1", env, provider="p", environ=environ) == Secret("given-key-1")
    del environ["P_TOKEN"]
    assert find_key(Secret("given-key-1"), env, provider="p", environ=environ) == Secret(
        "given-key-1"
    )
    assert require_key(None, env, provider="p", environ=environ).get() == "stored-key-3"
    with pytest.raises(MissingAPIKeyError):
        require_key(None, env, provider="q", environ=environ)


def test_the_store_is_not_read_when_a_key_is_given_or_set(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config.mkdir(parents=True)
    (config / "keys.json").write_text("not json")  # reading it would raise
    env = ["KEYEDTEST_API_KEY"]
    assert find_key("given-key-1", env, provider="keyedtest") == Secret("given-key-1")
    monkeypatch.setenv("KEYEDTEST_API_KEY", "env-key-2")
    assert find_key(None, env, provider="keyedtest") == Secret("env-key-2")
    # A provider that reads no variable takes no key, and never reads the file.
    assert KeylessProvider().find_api_key(ImageRequest("x")) is None
    assert KeylessProvider().concurrency_key(ImageRequest("x")) is not None
    monkeypatch.delenv("KEYEDTEST_API_KEY")
    with pytest.raises(ConfigurationError):
        find_key(None, env, provider="keyedtest")


def test_a_kit_provider_falls_back_to_its_stored_key(monkeypatch: pytest.MonkeyPatch) -> None:
    provider = KeyedProvider()
    with pytest.raises(MissingAPIKeyError):
        provider.api_key(ImageRequest("x"))
    KeyStore().set("keyedtest", SECRET)
    assert provider.api_key(ImageRequest("x")) == Secret(SECRET)
    monkeypatch.setenv("KEYEDTEST_TOKEN", "alias-key-2")
    assert provider.api_key(ImageRequest("x")) == Secret("alias-key-2")
    assert provider.api_key(ImageRequest("x", api_key="given-key-1")) == Secret("given-key-1")


def test_the_openai_provider_uses_the_stored_key(monkeypatch: pytest.MonkeyPatch) -> None:
    reset_plugin_manager()
    try:
        provider = imagestream.get_provider("openai")
        request = ImageRequest("a red circle", provider="openai")
        with pytest.raises(MissingAPIKeyError):
            provider.validate(request)
        assert keys("set", "openai", input=f"{SECRET}\n").exit_code == 0
        checked = provider.validate(request)
        assert checked.request.api_key == Secret(SECRET)
        assert SECRET not in repr(checked)
        monkeypatch.setenv("OPENAI_API_KEY", "env-key-2")
        assert provider.validate(request).request.api_key == Secret("env-key-2")
    finally:
        reset_plugin_manager()


def test_no_value_in_any_repr() -> None:
    KeyStore().set("keyedtest", SECRET)
    key = KeyedProvider().api_key(ImageRequest("x"))
    assert SECRET not in repr(key) + str(key) + repr(KeyStore())
