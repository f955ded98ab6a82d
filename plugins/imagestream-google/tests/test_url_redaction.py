"""A base URL's credentials never show: not in errors, hints, reprs nor log lines."""

from __future__ import annotations

import logging
import socket

import pytest

import imagestream
from imagestream import Secret
from imagestream.errors import APIConnectionError, ConfigurationError, ImagestreamError
from imagestream_google._endpoint import Endpoint, check_base_url

KEY = "AIzaSy-urltest-DO-NOT-LEAK-0123456789"


def _closed_port() -> int:
    """A port that was just bound and released, so nothing listens there."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


def _shown(error: ImagestreamError, logs: str = "") -> str:
    return " | ".join([str(error), repr(error), str(error.hint), logs])


@pytest.mark.parametrize("userinfo", ["user:pa55@", ""])
@pytest.mark.parametrize(
    ("provider", "model"),
    [("gemini", None), ("vertex", None), ("vertex", "imagen-4.0-generate-001")],
)
async def test_a_connection_error_never_shows_the_urls_credentials(
    caplog: pytest.LogCaptureFixture, userinfo: str, provider: str, model: str | None
) -> None:
    port = _closed_port()
    with caplog.at_level(logging.DEBUG), pytest.raises(ImagestreamError) as caught:
        await imagestream.agenerate(
            "a lighthouse",
            provider=provider,
            model=model,
            base_url=f"http://{userinfo}127.0.0.1:{port}/x?token=SECRET",
            api_key=KEY,
        )
    error = caught.value
    # The key goes in x-goog-api-key: the URL's user and password may be sent
    # along (as Basic auth), and the closed port is what fails.
    assert isinstance(error, APIConnectionError)
    shown = _shown(error, caplog.text)
    assert "pa55" not in shown and "SECRET" not in shown and KEY not in shown
    assert f"127.0.0.1:{port}" in str(error)


def test_the_endpoints_repr_masks_the_urls_credentials() -> None:
    endpoint = Endpoint(
        "https://user:pa55@gw.example:8443?key=SECRET", "v1beta", "models/m", api_key=Secret(KEY)
    )
    shown = repr(endpoint)
    assert "pa55" not in shown and "SECRET" not in shown and KEY not in shown
    assert "gw.example:8443" in shown


def test_a_bad_base_url_is_quoted_without_its_credentials() -> None:
    with pytest.raises(ConfigurationError) as caught:
        check_base_url("ftp://user:pa55@gw.example:21/x?token=SECRET", "gemini")
    shown = _shown(caught.value)
    assert "pa55" not in shown and "SECRET" not in shown
    assert "gw.example" in str(caught.value)
