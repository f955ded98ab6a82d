"""Where the token comes from: the kit's key lookup, with NovelAI's variable names."""

from __future__ import annotations

import warnings

import pytest

from imagestream import ImageRequest, MissingAPIKeyError
from imagestream.provider import KeyConflictWarning
from imagestream_novelai import KeyWarning, NovelAIProvider

VARIABLES = ("NOVELAI_API_KEY", "NOVELAI_TOKEN", "NAI_TOKEN")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment with none of the token variables set."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def key(api_key: str | None = None) -> str:
    return NovelAIProvider().api_key(ImageRequest("1girl", api_key=api_key)).get()


def test_request_key_wins_over_the_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("NOVELAI_API_KEY", "pst-from-env")
    assert key("pst-from-request") == "pst-from-request"


@pytest.mark.parametrize("name", VARIABLES)
def test_each_variable_is_read(env: pytest.MonkeyPatch, name: str) -> None:
    env.setenv(name, " pst-abc \n")
    assert key() == "pst-abc"


def test_variables_that_differ_warn_without_showing_values(env: pytest.MonkeyPatch) -> None:
    env.setenv("NOVELAI_API_KEY", "pst-first-secret")
    env.setenv("NOVELAI_TOKEN", "pst-second-secret")
    env.setenv("NAI_TOKEN", "pst-first-secret")
    with pytest.warns(KeyConflictWarning) as record:
        assert key() == "pst-first-secret"
    message = str(record[0].message)
    assert "NOVELAI_TOKEN" in message and "NAI_TOKEN" not in message
    assert "secret" not in message


def test_the_old_warning_name_is_the_kits() -> None:
    assert KeyWarning is KeyConflictWarning


def test_equal_variables_do_not_warn(env: pytest.MonkeyPatch) -> None:
    env.setenv("NOVELAI_API_KEY", "pst-same")
    env.setenv("NAI_TOKEN", "pst-same")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        key()


def test_a_pasted_bearer_prefix_is_dropped(env: pytest.MonkeyPatch) -> None:
    assert key("Bearer pst-abc") == "pst-abc"
    env.setenv("NAI_TOKEN", "bearer pst-env")
    assert key() == "pst-env"


def test_no_key_anywhere(env: pytest.MonkeyPatch) -> None:
    env.setenv("NOVELAI_API_KEY", "  ")
    with pytest.raises(MissingAPIKeyError) as info:
        key()
    assert info.value.env_var == "NOVELAI_API_KEY"


def test_validate_takes_the_key_from_the_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("NAI_TOKEN", "pst-env-token")
    request = NovelAIProvider().validate(ImageRequest("1girl")).request
    assert request.api_key is not None and request.api_key.get() == "pst-env-token"
    assert "pst-env-token" not in repr(request)
