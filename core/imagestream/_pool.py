"""One pooled HTTP client per event loop, for :func:`imagestream.stream` and friends.

A program that streams 200 images in a loop should open its connections
once, not once per image. The client is made on first use in a loop and
closed when that loop shuts down: ``asyncio.run`` (and any runner that calls
``loop.shutdown_asyncgens()``) closes every async generator still open, and
one such generator, parked for the client's lifetime, closes the client in
its ``finally``. So no "Unclosed client session" warning is left behind.
A loop that is closed without that step should await
``imagestream.aclose_http_client()`` first.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncGenerator

from ._http import HttpClient

__all__ = ["aclose_shared_http", "shared_http"]

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, HttpClient] = (
    weakref.WeakKeyDictionary()
)
# The parked generators, held strongly: the loop tracks them only weakly.
_keepers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncGenerator[None, None]] = (
    weakref.WeakKeyDictionary()
)


def shared_http() -> HttpClient:
    """The running loop's pooled :class:`~imagestream.HttpClient` (``imagestream.http_client()``).

    Made on first use in a loop and closed when that loop shuts down
    (``asyncio.run`` and ``asyncio.Runner`` do this); every
    :func:`imagestream.stream` call and every :class:`~imagestream.Pipeline`
    without a client of its own uses it.
    """
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = _clients[loop] = HttpClient()
        keeper = _close_at_shutdown(client)
        # Starting the generator registers it with the loop's shutdown list.
        _park(keeper)
        _keepers[loop] = keeper
    return client


def _park(keeper: AsyncGenerator[None, None]) -> None:
    # Run the generator to its first yield synchronously: its body has no
    # await before the yield, so one send() completes the step.
    step = keeper.asend(None)
    with contextlib.suppress(StopIteration):
        step.send(None)


async def _close_at_shutdown(client: HttpClient) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await client.close()


async def aclose_shared_http() -> None:
    """Close the running loop's pooled client now (``imagestream.aclose_http_client()``).

    A new one is made if it is needed again. Only needed for a loop that is
    closed without ``shutdown_asyncgens()``.
    """
    loop = asyncio.get_running_loop()
    client = _clients.pop(loop, None)
    keeper = _keepers.pop(loop, None)
    if keeper is not None:
        await keeper.aclose()
    elif client is not None:
        await client.close()
