"""A base URL's credentials never show: not in errors, hints, reprs nor log lines."""

from __future__ import annotations

import logging
import os
import socket

import pytest

import imagestream
from imagestream.errors import APIConnectionError, ConfigurationError, ImagestreamError

TOKEN = "pst-URLTEST0123456789abcdefABCDEF"


def _closed_port() -> int:
    """A port that was just bound and released, so nothing listens there."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("userinfo", "expected"),
    [("user:pa55@", ConfigurationError), ("", APIConnectionError)],
)
@pytest.mark.parametrize("stream", ["msgpack", "sse", "none"])
async def test_a_connection_error_never_shows_the_urls_credentials(
    caplog: pytest.LogCaptureFixture,
    userinfo: str,
    expected: type[ImagestreamError],
    stream: str,
) -> None:
    port = _closed_port()
    with caplog.at_level(logging.DEBUG), pytest.raises(ImagestreamError) as caught:
        await imagestream.agenerate(
            "1girl, lighthouse",
            provider="novelai",
            base_url=f"http://{userinfo}127.0.0.1:{port}/x?token=SECRET",
            api_key=TOKEN,
            stream=stream,
        )
    error = caught.value
    assert isinstance(error, expected)
    shown = " | ".join([str(error), repr(error), str(error.hint), caplog.text])
    assert "pa55" not in shown
    assert "SECRET" not in shown
    assert TOKEN not in shown
    assert f"127.0.0.1:{port}" in str(error)
    # The request was logged, without its credentials.
    assert f"POST http://{'[redacted]@' if userinfo else ''}127.0.0.1:{port}/x" in caplog.text
