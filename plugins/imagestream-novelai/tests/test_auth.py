"""Where the token comes from."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from imagestream import ImageRequest, MissingAPIKeyError, Secret
from imagestream_novelai import KeyWarning, NovelAIProvider
from imagestream_novelai._auth import resolve_key


def test_request_key_wins_over_the_environment() -> None:
    key = resolve_key(Secret("pst-from-request"), {"NOVELAI_API_KEY": "pst-from-env"})
    assert key.get() == "pst-from-request"


@pytest.mark.parametrize("name", ["NOVELAI_API_KEY", "NOVELAI_TOKEN", "NAI_TOKEN"])
def test_each_variable_is_read(name: str) -> None:
    assert resolve_key(None, {name: " pst-abc \n"}).get() == "pst-abc"


def test_variables_that_differ_warn_without_showing_values() -> None:
    environ = {"NOVELAI_API_KEY": "pst-first-secret", "NOVELAI_TOKEN": "pst-second-secret", "NAI_TOKEN": "pst-first-secret"}
    with pytest.warns(KeyWarning) as record:
        key = resolve_key(None, environ)
    assert key.get() == "pst-first-secret"
    message = str(record[0].message)
    assert "NOVELAI_TOKEN" in message and "NAI_TOKEN" not in message
    assert "secret" not in message


def test_equal_variables_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolve_key(None, {"NOVELAI_API_KEY": "pst-same", "NAI_TOKEN": "pst-same"})


def test_a_pasted_bearer_prefix_is_dropped() -> None:
    assert resolve_key(Secret("Bearer pst-abc"), {}).get() == "pst-abc"


def test_no_key_anywhere() -> None:
    with pytest.raises(MissingAPIKeyError) as info:
        resolve_key(None, {"NOVELAI_API_KEY": "  "})
    assert info.value.env_var == "NOVELAI_API_KEY"


def test_validate_takes_the_key_from_the_environment(monkeypatch: Any) -> None:
    monkeypatch.delenv("NOVELAI_API_KEY", raising=False)
    monkeypatch.delenv("NOVELAI_TOKEN", raising=False)
    monkeypatch.setenv("NAI_TOKEN", "pst-env-token")
    request = NovelAIProvider().validate(ImageRequest("1girl"))
    assert request.api_key is not None and request.api_key.get() == "pst-env-token"
    assert "pst-env-token" not in repr(request)
