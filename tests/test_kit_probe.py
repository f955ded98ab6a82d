"""The kit's probe_json: a server's JSON, or ``None`` soon, whatever the server does."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from imagestream import _probe
from imagestream.provider import probe_json

Behaviour = Callable[[socket.socket, bytes], None]
"""What the server does with a connection, given the request's head."""


class RawServer:
    """A TCP server on 127.0.0.1 that hands each connection to ``behaviour``."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.requests: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        self._listener.settimeout(0.05)
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            head = b""
            try:
                while b"\r\n\r\n" not in head:
                    data = conn.recv(4096)
                    if not data:
                        return
                    head += data
                self.requests.append(head)
                self.behaviour(conn, head)
            except OSError:
                pass

    def wait(self, seconds: float) -> None:
        """Sleep in a handler, but wake up when the server stops."""
        self._stop.wait(seconds)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()


@pytest.fixture
def server() -> Iterator[Callable[[Behaviour], RawServer]]:
    started: list[RawServer] = []

    def start(behaviour: Behaviour) -> RawServer:
        started.append(RawServer(behaviour))
        return started[-1]

    yield start
    for each in started:
        each.close()


def answer(body: bytes, status: str = "200 OK", **headers: str) -> Behaviour:
    def behave(conn: socket.socket, head: bytes) -> None:
        lines = [f"HTTP/1.1 {status}"] + [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    return behave


MODELS = {"models": ["a.safetensors", "b.ckpt"]}
BODY = json.dumps(MODELS).encode()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- a server that answers ---------------------------------------------------


def test_the_json_of_a_200_with_its_length(server: Any) -> None:
    up = server(answer(BODY, Content_Length=str(len(BODY)), Content_Type="application/json"))
    assert probe_json(up.url + "/object_info?token=t") == MODELS
    [head] = up.requests
    lines = head.decode().split("\r\n")
    assert lines[0] == "GET /object_info?token=t HTTP/1.1"
    assert f"Host: 127.0.0.1:{up.port}" in lines and "Connection: close" in lines
    assert "Accept: application/json" in lines
    assert not any(line.startswith("Authorization") for line in lines)


def test_a_chunked_answer_and_one_read_to_the_end(server: Any) -> None:
    chunked = b"".join(
        b"%x;ext=1\r\n%s\r\n" % (len(piece), piece) for piece in (BODY[:5], BODY[5:])
    )
    up = server(answer(chunked + b"0\r\n\r\n", Transfer_Encoding="chunked"))
    assert probe_json(up.url + "/") == MODELS
    to_the_end = server(answer(BODY))  # no length: the body ends when the server closes
    assert probe_json(to_the_end.url) == MODELS
    assert to_the_end.requests[0].startswith(b"GET / HTTP/1.1\r\n")  # no path: "/"


def test_an_interim_answer_is_skipped(server: Any) -> None:
    def behave(conn: socket.socket, head: bytes) -> None:
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        answer(BODY, Content_Length=str(len(BODY)))(conn, head)

    assert probe_json(server(behave).url) == MODELS


def test_basic_authentication_from_the_url_or_given(server: Any) -> None:
    up = server(answer(BODY, Content_Length=str(len(BODY))))
    probe_json(f"http://alice:p%40ss@127.0.0.1:{up.port}/x")
    probe_json(up.url + "/x", credentials="bob:pw")
    probe_json(f"http://alice:p%40ss@127.0.0.1:{up.port}/x", credentials="bob:pw")  # the URL wins
    sent = [_authorization(head) for head in up.requests]
    assert sent == ["alice:p@ss", "bob:pw", "alice:p@ss"]
    assert all(b"alice" not in head.split(b"\r\n")[1] for head in up.requests)  # Host: no login


def _authorization(head: bytes) -> str | None:
    for line in head.decode().split("\r\n"):
        if line.startswith("Authorization: Basic "):
            return base64.b64decode(line.removeprefix("Authorization: Basic ")).decode()
    return None


def test_credentials_read_only_when_the_server_asks_for_a_login(server: Any) -> None:
    def guarded(conn: socket.socket, head: bytes) -> None:
        if _authorization(head) == "carol:pw":
            answer(BODY, Content_Length=str(len(BODY)))(conn, head)
        else:
            answer(b'{"detail": "no"}', "401 Unauthorized", Content_Length="16")(conn, head)

    asked: list[int] = []

    def stored() -> str:
        asked.append(1)
        return "carol:pw"

    locked = server(guarded)
    assert probe_json(locked.url, credentials=stored) == MODELS
    assert len(asked) == 1 and [_authorization(h) for h in locked.requests] == [None, "carol:pw"]
    open_ = server(answer(BODY, Content_Length=str(len(BODY))))
    assert probe_json(open_.url, credentials=stored) == MODELS
    assert len(asked) == 1  # not asked: no login needed
    assert probe_json(locked.url, credentials=lambda: None) is None
    assert probe_json(locked.url, credentials=lambda: "carol:wrong") is None

    def broken() -> str:
        raise RuntimeError("the key store is unreadable")

    assert probe_json(locked.url, credentials=broken) is None


# -- no answer -----------------------------------------------------------------


def test_nothing_listening_is_none_at_once() -> None:
    port = _closed_port()
    started = time.monotonic()
    for host in ("127.0.0.1", "localhost"):
        assert probe_json(f"http://{host}:{port}/object_info") is None
    assert time.monotonic() - started < 0.5


def test_a_server_that_never_answers_costs_the_timeout(server: Any) -> None:
    silent = server(lambda conn, head: silent.wait(10))
    started = time.monotonic()
    assert probe_json(silent.url, timeout=0.3) is None
    assert 0.25 < time.monotonic() - started < 1.5


def test_a_server_that_drips_its_answer_costs_the_timeout(server: Any) -> None:
    def drip(conn: socket.socket, head: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(100):
            conn.sendall(b" ")
            dripping.wait(0.05)

    dripping = server(drip)
    started = time.monotonic()
    assert probe_json(dripping.url, timeout=0.4) is None
    assert time.monotonic() - started < 1.5


def test_a_slow_name_lookup_costs_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    real = _probe._socket.getaddrinfo

    def slow(host: Any, port: Any, *args: Any) -> Any:
        if args[-1:] == (_probe._socket.AI_NUMERICHOST,):
            return real(host, port, *args)
        release.wait(10)
        raise OSError("no answer from the resolver")

    monkeypatch.setattr(_probe._socket, "getaddrinfo", slow)
    started = time.monotonic()
    try:
        assert probe_json("http://comfy.invalid:8188/x", timeout=0.3) is None
        assert time.monotonic() - started < 1.5
    finally:
        release.set()


@pytest.mark.parametrize(
    "behaviour",
    [
        answer(b"x" * 5000, Content_Length="5000"),
        answer(b"", Content_Length=str(10 * 2**20)),  # announced, never sent
        answer(b"4000\r\n" + b"x" * 0x4000 + b"\r\n0\r\n\r\n", Transfer_Encoding="chunked"),
        answer(b"[" + b"1," * 5000 + b"1]"),  # no length, more than allowed
    ],
    ids=["length", "announced", "chunked", "to-the-end"],
)
def test_an_answer_too_large_is_none(server: Any, behaviour: Behaviour) -> None:
    started = time.monotonic()
    assert probe_json(server(behaviour).url, max_bytes=4096) is None
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize(
    "behaviour",
    [
        answer(b"<html>not json</html>", Content_Length="21"),
        answer(BODY, "404 Not Found", Content_Length=str(len(BODY))),
        answer(BODY, "302 Found", Location="/elsewhere", Content_Length=str(len(BODY))),
        answer(BODY[:10], Content_Length=str(len(BODY))),  # closed early
        answer(b"zz\r\n", Transfer_Encoding="chunked"),
        lambda conn, head: conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"),
        lambda conn, head: conn.sendall(b"\x00\xff" * 40000),
        lambda conn, head: None,  # closed at once
    ],
    ids=["html", "404", "redirect", "short", "bad-chunk", "not-http", "binary", "closed"],
)
def test_garbage_is_none(server: Any, behaviour: Behaviour) -> None:
    assert probe_json(server(behaviour).url, timeout=1.0) is None


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/x",
        "not a url",
        "http://",
        "http://127.0.0.1:99999/x",
        "http://127.0.0.1:1/a b",
        "http://127.0.0.1:1/a\r\nX-Injected: 1",
        "http://127.0.0.1:1/\u00e9",
    ],
)
def test_an_unusable_url_is_none(url: str) -> None:
    assert probe_json(url) is None


def test_https_to_a_server_that_speaks_no_tls_is_none(server: Any) -> None:
    plain = server(answer(BODY, Content_Length=str(len(BODY))))
    started = time.monotonic()
    assert probe_json(f"https://127.0.0.1:{plain.port}/", timeout=0.5) is None
    assert time.monotonic() - started < 1.5


def test_a_login_never_shows(server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    def refuse(conn: socket.socket, head: bytes) -> None:
        answer(head, "500 Oops", Content_Length=str(len(head)))(conn, head)  # echoes the request

    url = server(refuse).url.replace("http://", "http://alice:s3cret-pw@")
    assert probe_json(url, credentials="bob:0ther-pw") is None
    out, err = capsys.readouterr()
    assert "s3cret" not in out + err and "0ther" not in out + err


def test_plain_http_imports_neither_socket_nor_ssl() -> None:
    code = (
        "import sys; from imagestream.provider import probe_json; "
        f"probe_json('http://127.0.0.1:{_closed_port()}/x'); "
        "probe_json('http://localhost:9/x'); "
        "print(sorted({'socket', 'ssl', 'selectors', 'asyncio'} & set(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


def test_https_checks_the_certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import http.server
    import ssl

    if shutil.which("openssl") is None:
        pytest.skip("no openssl to make a certificate with")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        capture_output=True, check=True, timeout=60,
    )  # fmt: skip

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"path": self.path, "login": self.headers["Authorization"]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"https://127.0.0.1:{httpd.server_address[1]}/info?x=1"
        assert probe_json(url) is None  # not a certificate this machine trusts
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        assert probe_json(url, credentials="u:p") == {"path": "/info?x=1", "login": "Basic dTpw"}
    finally:
        httpd.shutdown()
        httpd.server_close()
