"""The provider kit's key lookup: request first, then ``key_env`` and its aliases."""

from __future__ import annotations

import warnings
from typing import ClassVar

import pytest

from imagestream import ImageRequest, MissingAPIKeyError, Secret
from imagestream.provider import KeyConflictWarning, Provider, find_key, require_key


class KeyedProvider(Provider):
    name: ClassVar[str] = "keyed"
    key_env: ClassVar[str | None] = "KEYED_API_KEY"
    key_aliases: ClassVar[tuple[str, ...]] = ("KEYED_TOKEN", "OLD_KEYED_TOKEN")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KEYED_API_KEY", "KEYED_TOKEN", "OLD_KEYED_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def test_the_request_key_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYED_API_KEY", "from-env-123")
    key = KeyedProvider().api_key(ImageRequest("x", api_key="given-456"))
    assert key == Secret("given-456")


def test_key_env_then_aliases_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLD_KEYED_TOKEN", "old-token-1")
    assert KeyedProvider().api_key(ImageRequest("x")).get() == "old-token-1"
    monkeypatch.setenv("KEYED_TOKEN", "old-token-1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # equal values: no warning
        assert KeyedProvider().api_key(ImageRequest("x")).get() == "old-token-1"


def test_differing_aliases_warn_naming_variables_not_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KEYED_API_KEY", "first-secret-value")
    monkeypatch.setenv("OLD_KEYED_TOKEN", "second-secret-value")
    with pytest.warns(KeyConflictWarning) as caught:
        key = KeyedProvider().api_key(ImageRequest("x"))
    assert key.get() == "first-secret-value"
    text = str(caught[0].message)
    assert "KEYED_API_KEY" in text and "OLD_KEYED_TOKEN" in text
    assert "secret-value" not in text


def test_missing_key_names_key_env() -> None:
    with pytest.raises(MissingAPIKeyError) as info:
        KeyedProvider().api_key(ImageRequest("x"))
    assert info.value.env_var == "KEYED_API_KEY"
    assert "set KEYED_API_KEY" in str(info.value)
    assert "--key" in str(info.value)
    assert KeyedProvider().find_api_key(ImageRequest("x")) is None


@pytest.mark.parametrize("value", ["", "   ", "Bearer ", "\n"])
def test_blank_values_count_as_unset(value: str) -> None:
    assert find_key(value, ["A"], provider="p", environ={"A": value}) is None


def test_pasted_bearer_prefix_and_whitespace_are_dropped() -> None:
    assert require_key(None, ["A"], provider="p", environ={"A": " Bearer tok-123 \n"}).get() == (
        "tok-123"
    )
    assert require_key("bearer tok-9", ["A"], provider="p", environ={}).get() == "tok-9"


def test_key_variables_lists_env_then_aliases() -> None:
    assert KeyedProvider().key_variables == ("KEYED_API_KEY", "KEYED_TOKEN", "OLD_KEYED_TOKEN")
    assert Provider().key_variables == ()


def test_require_key_without_variables_still_explains() -> None:
    with pytest.raises(MissingAPIKeyError, match="no API key"):
        require_key(None, [], provider="p", environ={})
