"""Test helpers that run things elsewhere: a fake server on a thread of its own, a command on a terminal.

Command-line tests run ``imagestream`` in a child process against a fake
provider server, so the server cannot live on the test's event loop, and a
progress bar is drawn only when stderr is a terminal. Exported by
:mod:`imagestream.testing`.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

import pytest

__all__ = ["run_in_terminal", "serve_in_thread"]


class _Server(Protocol):
    async def start(self) -> Any: ...
    async def stop(self) -> Any: ...


S = TypeVar("S", bound=_Server)


@contextmanager
def serve_in_thread(server: S, *, timeout: float = 10.0) -> Iterator[S]:
    """Run ``server`` (``await start()`` / ``await stop()``) on an event loop in a background thread.

    For tests whose code under test runs its own loop, or runs in a child
    process: the server keeps answering while the test blocks. Stopped, and
    its loop closed, when the block ends.
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name=type(server).__name__, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(timeout=timeout)
        try:
            yield server
        finally:
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout=timeout)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=timeout)
        loop.close()


def run_in_terminal(
    command: Sequence[str], env: Mapping[str, str] | None = None, *, timeout: float = 60.0
) -> tuple[int, str, str]:
    """Run ``command`` with stderr on a pseudo-terminal: ``(exit code, stdout, what the terminal showed)``.

    What the terminal showed is decoded as UTF-8 with bad bytes replaced,
    escape sequences and all. Skips the test where there are no
    pseudo-terminals (Windows).
    """
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    try:
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
            env=None if env is None else dict(env),
        )
    finally:
        os.close(slave)
    shown: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO once the child has closed its end
                return
            if not data:
                return
            shown.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        stdout, _ = process.communicate(timeout=timeout)
        reader.join(timeout=10)
    finally:
        os.close(master)
    return process.returncode, stdout.decode(), b"".join(shown).decode("utf-8", "replace")
