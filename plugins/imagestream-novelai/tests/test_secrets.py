"""The token never shows: not in errors, not in their causes, not in logs, whatever fails."""

from __future__ import annotations

import logging
import socket
import traceback
from typing import Any

import pytest

from imagestream import ImagestreamError, MissingAPIKeyError
from imagestream.provider import MASK
from imagestream_novelai import NovelAIProvider

CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("401 echoing the header", {"echo_auth": True}, {"api_key": "pst-WRONGWRONGWRONG-leak-me"}),
    ("429 echoing the header", {"echo_auth": True, "fail_status": 429}, {}),
    ("402 echoing the header", {"echo_auth": True, "fail_status": 402}, {}),
    ("500 echoing the header", {"echo_auth": True, "fail_status": 500}, {}),
    ("error event quoting the token", {"error_event_after": 1}, {}),
    ("error event quoting the token, sse", {"error_event_after": 1}, {"stream": "sse"}),
    ("truncated stream", {"truncate_final": True}, {}),
    ("garbage", {"garbage_after": 1}, {}),
    ("dropped connection", {"drop_after": 2}, {}),
    ("stream ended early", {"end_after": 1}, {}),
    ("zip endpoint error", {"echo_auth": True, "fail_status": 400}, {"stream": "none"}),
    ("200 page quoting the token", {"page": True}, {}),
    ("200 page quoting the token, zip endpoint", {"page": True}, {"stream": "none"}),
]


def _everything_said(error: BaseException, caplog: pytest.LogCaptureFixture) -> str:
    parts = [str(error), repr(error), "".join(traceback.format_exception(error)), caplog.text]
    if isinstance(error, ImagestreamError):
        parts += [str(error.hint), repr(error.partial)]
    return "\n".join(parts)


@pytest.mark.parametrize(("case", "script", "params"), CASES, ids=[case[0] for case in CASES])
async def test_token_never_appears(
    nai: Any, caplog: pytest.LogCaptureFixture, case: str, script: dict[str, Any], params: dict[str, Any]
) -> None:
    caplog.set_level(logging.DEBUG)
    token = params.get("api_key", nai.server.token)
    for name, value in script.items():
        setattr(nai.server.script, name, value)
    nai.server.script.error_event = {"message": f"token {nai.server.token} rejected (Bearer {nai.server.token})"}
    if script.get("page"):
        quoted = f"<html>token {nai.server.token} (Bearer {nai.server.token})</html>"
        nai.server.script.page = ("text/html", quoted.encode())
    with pytest.raises(ImagestreamError) as info:
        await nai.run(steps=4, **params)
    said = _everything_said(info.value, caplog)
    assert token not in said
    assert token[4:] not in said  # not even without its prefix
    if script.get("echo_auth") or "error_event_after" in script or "page" in script:
        assert MASK in str(info.value)  # the server did quote it: it was redacted


async def test_token_not_shown_when_the_server_is_unreachable(
    nai_plugins: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import imagestream

    caplog.set_level(logging.DEBUG)
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    token = "pst-UNREACHABLE-secret-value-1234"
    pipe = imagestream.Pipeline(NovelAIProvider(retry=imagestream.RetryPolicy(max_retries=0)))
    with pytest.raises(ImagestreamError) as info:
        await pipe.agenerate("1girl", base_url=f"http://127.0.0.1:{port}", api_key=token)
    assert token not in _everything_said(info.value, caplog)


async def test_missing_key_names_the_variable_and_sends_nothing(nai: Any) -> None:
    with pytest.raises(MissingAPIKeyError) as info:
        await nai.run(api_key=None)
    assert "NOVELAI_API_KEY" in str(info.value)
    assert nai.server.requests == []
