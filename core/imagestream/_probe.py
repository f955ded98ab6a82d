"""A short blocking GET for what a server lists: its JSON, or nothing.

``imagestream providers`` shows the models a server on your machine has
(ComfyUI's checkpoints, the web UI's) by asking it, outside any event loop,
in a process that needs no network stack otherwise. :func:`probe_json` asks
with one HTTP/1.1 ``GET`` over a bare socket: the C module ``_socket``, not
``socket`` and what that imports, and ``ssl`` only for an ``https`` URL. A
server that is not running refuses at once; one that is silent, slow or
drips its answer costs ``timeout`` seconds at most, the name lookup
included; an answer larger than ``max_bytes``, not a 200 or not JSON is no
answer. Nothing is raised, and no credential goes anywhere but into the
request's ``Authorization`` header.
"""

from __future__ import annotations

import _socket
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = ["PROBE_MAX_BYTES", "PROBE_TIMEOUT", "probe_json"]

PROBE_TIMEOUT = 1.0
"""Seconds the whole exchange may take by default: name lookup, connection, request, answer."""

PROBE_MAX_BYTES = 8 * 2**20
"""The largest answer body read by default."""

_MAX_HEAD = 64 * 2**10
_CHUNK = 64 * 2**10


def probe_json(
    url: str,
    *,
    credentials: str | Callable[[], str | None] | None = None,
    timeout: float = PROBE_TIMEOUT,
    max_bytes: int = PROBE_MAX_BYTES,
) -> Any | None:
    """``GET url`` and its JSON answer, or ``None``: for listing what a server has.

    Blocking, and bounded: meant for ``imagestream providers`` (a
    :class:`~imagestream.provider.LazyProvider`'s ``models`` function),
    never for a run, which has :class:`~imagestream.HttpClient`. It sends
    ``Accept: application/json`` and ``Connection: close``, never goes
    through a proxy, follows no redirect and does not retry.

    Args:
        url: An ``http://`` or ``https://`` URL (its query kept). A
            ``user:password@`` in it is sent as HTTP basic authentication,
            and then wins over ``credentials``.
        credentials: ``user:password`` for HTTP basic authentication; or a
            function returning it (or ``None``), called only when the
            server answers 401 without, for credentials that are costly to
            read (a key store), and the request then sent once more.
        timeout: Seconds for everything, the name lookup included.
        max_bytes: The largest body read; a larger one is no answer.

    Returns:
        The parsed JSON of a 200 answer; ``None`` when there is none: no
        server, a refusal, a timeout, another status, a body too large,
        not JSON. Never raises (but ``KeyboardInterrupt``).
    """
    deadline = time.monotonic() + timeout
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = parts.hostname
        if scheme not in ("http", "https") or not host:
            return None
        port = parts.port or (443 if scheme == "https" else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        authority = parts.netloc.rpartition("@")[2]
        login: str | None = None
        if parts.username is not None:
            login = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        elif isinstance(credentials, str):
            login = credentials
        request = _request(target, authority, login)
        status, body = _exchange(host, port, scheme == "https", request, deadline, max_bytes)
        if status == 401 and login is None and callable(credentials):
            login = credentials()
            if login:
                request = _request(target, authority, login)
                status, body = _exchange(
                    host, port, scheme == "https", request, deadline, max_bytes
                )
        if status != 200:
            return None
        return json.loads(body)
    except Exception:  # no server, not that server, not JSON: no answer, no error
        return None


def _request(target: str, authority: str, login: str | None) -> bytes:
    if any(ord(char) < 33 or ord(char) == 127 for char in target + authority):
        raise ValueError("a space or a control character in the URL")  # would split the request
    lines = [
        f"GET {target} HTTP/1.1",
        f"Host: {authority}",
        "Accept: application/json",
        "User-Agent: imagestream",
        "Connection: close",
    ]
    if login is not None:
        import binascii

        token = binascii.b2a_base64(login.encode("utf-8"), newline=False).decode("ascii")
        lines.append(f"Authorization: Basic {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the server took too long")
    return left


def _addresses(host: str, port: int, deadline: float) -> list[tuple[Any, ...]]:
    """``getaddrinfo`` for ``host``; a name is looked up in a thread, so the deadline holds."""
    kind = _socket.SOCK_STREAM
    # An ASCII name goes as bytes: a str is encoded with the idna codec, an import more.
    name: str | bytes = host.encode("ascii") if host.isascii() else host
    try:
        return _socket.getaddrinfo(name, port, 0, kind, 0, _socket.AI_NUMERICHOST)
    except OSError:
        pass  # a name, not an address
    import threading

    found: list[list[tuple[Any, ...]]] = []

    def look_up() -> None:
        try:
            found.append(_socket.getaddrinfo(name, port, 0, kind))
        except OSError:
            found.append([])

    lookup = threading.Thread(target=look_up, name="imagestream-probe-lookup", daemon=True)
    lookup.start()
    lookup.join(_remaining(deadline))
    if not found:
        raise TimeoutError("the name lookup took too long")
    return found[0]


def _connect(host: str, port: int, deadline: float) -> _socket.socket:
    failure: OSError = OSError(f"no address for {host!r}")
    for family, kind, proto, _, address in _addresses(host, port, deadline):
        sock = _socket.socket(family, kind, proto)
        try:
            sock.settimeout(_remaining(deadline))
            sock.connect(address)
        except OSError as exc:
            sock.close()
            failure = exc
            continue
        return sock
    raise failure


def _exchange(
    host: str, port: int, tls: bool, request: bytes, deadline: float, max_bytes: int
) -> tuple[int, bytes]:
    """Send ``request``; the answer's status, and its body when the status is 200."""
    sock: Any = _connect(host, port, deadline)
    try:
        if tls:
            import socket
            import ssl

            sock = socket.socket(fileno=sock.detach())
            sock.settimeout(_remaining(deadline))
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        reader = _Reader(sock, deadline, max_bytes + _MAX_HEAD)
        sock.settimeout(_remaining(deadline))
        sock.sendall(request)
        while True:
            status, headers = reader.head()
            if not 100 <= status < 200:
                break  # (an interim answer, which nothing asked for, is skipped)
        if status != 200:
            return status, b""
        return status, _body(reader, headers, max_bytes)
    finally:
        sock.close()


def _body(reader: _Reader, headers: dict[str, str], max_bytes: int) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        pieces: list[bytes] = []
        size = 0
        while True:
            line = reader.line()
            length = int(line.split(b";", 1)[0].strip(), 16)
            if length == 0:
                return b"".join(pieces)  # (trailers, if any, are left unread)
            size += length
            if size > max_bytes:
                raise ValueError("the answer is too large")
            pieces.append(reader.exactly(length))
            if reader.line():
                raise ValueError("a chunk longer than it said")
    if "content-length" in headers:
        length = int(headers["content-length"])
        if not 0 <= length <= max_bytes:
            raise ValueError("the answer is too large")
        return reader.exactly(length)
    body = reader.rest()
    if len(body) > max_bytes:
        raise ValueError("the answer is too large")
    return body


class _Reader:
    """Reads an answer off a socket, within a deadline and a byte budget."""

    def __init__(self, sock: Any, deadline: float, budget: int) -> None:
        self._sock = sock
        self._deadline = deadline
        self._budget = budget
        self._buffer = bytearray()
        self._closed = False

    def _fill(self) -> None:
        if self._closed:
            raise ConnectionError("the server closed the connection early")
        self._sock.settimeout(_remaining(self._deadline))
        data: bytes = self._sock.recv(_CHUNK)
        if not data:
            self._closed = True
            return
        self._budget -= len(data)
        if self._budget < 0:
            raise ValueError("the answer is too large")
        self._buffer += data

    def line(self, limit: int = _MAX_HEAD) -> bytes:
        """The next line, without its end."""
        while b"\n" not in self._buffer:
            if len(self._buffer) > limit:
                raise ValueError("a line too long")
            self._fill()
        end = self._buffer.index(b"\n")
        line = bytes(self._buffer[:end]).rstrip(b"\r")
        del self._buffer[: end + 1]
        return line

    def head(self) -> tuple[int, dict[str, str]]:
        """The status line's code, and the headers (lower-case names)."""
        version, _, rest = self.line().partition(b" ")
        if not version.startswith(b"HTTP/1."):
            raise ValueError("not an HTTP/1 answer")
        status = int(rest[:3])
        headers: dict[str, str] = {}
        size = 0
        while line := self.line():
            size += len(line)
            if size > _MAX_HEAD:
                raise ValueError("the headers are too long")
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    def exactly(self, length: int) -> bytes:
        """The next ``length`` bytes."""
        while len(self._buffer) < length:
            self._fill()
        data = bytes(self._buffer[:length])
        del self._buffer[:length]
        return data

    def rest(self) -> bytes:
        """Everything until the server closes the connection."""
        while not self._closed:
            self._fill()
        data = bytes(self._buffer)
        self._buffer.clear()
        return data
