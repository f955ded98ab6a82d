"""A base URL's credentials never show: not in errors, hints, reprs nor log lines."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest

import imagestream
from imagestream import Secret
from imagestream.errors import APIConnectionError, ConfigurationError, ImagestreamError
from imagestream_openai._config import Endpoint, resolve_base_url

KEY = "sk-urltest-DO-NOT-LEAK-0123456789"


def _closed_port() -> int:
    """A port that was just bound and released, so nothing listens there."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


def _shown(error: ImagestreamError, logs: str = "") -> str:
    return " | ".join([str(error), repr(error), str(error.hint), logs])


@pytest.mark.parametrize(
    ("userinfo", "expected"),
    [("user:pa55@", ConfigurationError), ("", APIConnectionError)],
)
@pytest.mark.parametrize(
    "params",
    [{}, {"stream": False}, {"api": "responses"}, {"auth_header": "api-key"}],
)
async def test_a_connection_error_never_shows_the_urls_credentials(
    caplog: pytest.LogCaptureFixture,
    userinfo: str,
    expected: type[ImagestreamError],
    params: dict[str, Any],
) -> None:
    if params.get("auth_header") == "api-key" and userinfo:
        # No Authorization header of its own: the URL's credentials are sent
        # (as Basic auth), and the closed port is what fails.
        expected = APIConnectionError
    port = _closed_port()
    with caplog.at_level(logging.DEBUG), pytest.raises(ImagestreamError) as caught:
        await imagestream.agenerate(
            "a lighthouse",
            provider="openai",
            base_url=f"http://{userinfo}127.0.0.1:{port}/v1?token=SECRET",
            api_key=KEY,
            model="gpt-image-1",
            **params,
        )
    error = caught.value
    assert isinstance(error, expected)
    shown = _shown(error, caplog.text)
    assert "pa55" not in shown and "SECRET" not in shown and KEY not in shown
    assert f"127.0.0.1:{port}" in str(error)


def test_the_endpoints_repr_masks_the_urls_credentials() -> None:
    endpoint = Endpoint("https://user:pa55@gw.example:8443/v1?api_key=SECRET", Secret(KEY))
    shown = repr(endpoint)
    assert "pa55" not in shown and "SECRET" not in shown and KEY not in shown
    assert "gw.example:8443/v1" in shown


def test_a_bad_base_url_is_quoted_without_its_credentials() -> None:
    with pytest.raises(ConfigurationError) as caught:
        resolve_base_url("http://user:pa55@gw.example:99999/v1?token=SECRET")
    shown = _shown(caught.value)
    assert "pa55" not in shown and "SECRET" not in shown
    assert "gw.example" in str(caught.value)
