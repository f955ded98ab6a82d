"""The queue between the worker thread and the event loop, on its own: no torch needed.

What it must keep: every item reaches a reader, in order, the end last; at
most ``capacity`` wait unread (the worker blocks beyond); a cancel or a
closed loop ends every wait of the worker at once; the loop is woken only
when it waits, once however many items arrive meanwhile.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from imagestream_diffusers import _channel
from imagestream_diffusers._channel import Channel, End


@pytest.fixture
def wakes() -> Iterator[Callable[[asyncio.AbstractEventLoop], list[int]]]:
    """Counts the loop's call_soon_threadsafe calls (the channel's wake-ups) from then on."""
    patched: list[asyncio.AbstractEventLoop] = []

    def count(loop: asyncio.AbstractEventLoop) -> list[int]:
        calls: list[int] = []
        original = loop.call_soon_threadsafe

        def counting(callback: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            return original(callback, *args, **kwargs)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        patched.append(loop)
        return calls

    yield count
    for loop in patched:
        del loop.call_soon_threadsafe


def start(target: Callable[[], Any]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


async def read_all(channel: Channel) -> list[Any]:
    items = []
    while not isinstance(item := await channel.get(), End):
        items.append(item)
    items.append(item)
    return items


async def test_items_that_pile_up_are_all_read_in_order_with_one_wake_up(
    wakes: Callable[[asyncio.AbstractEventLoop], list[int]],
) -> None:
    loop = asyncio.get_running_loop()
    calls = wakes(loop)
    channel = Channel(loop, 8)
    reader = asyncio.create_task(read_all(channel))
    await until(lambda: channel._waiter is not None)  # the reader waits

    def produce() -> None:  # all at once, before the loop gets round to reading
        for number in range(6):
            assert channel.put(number)
        channel.close()

    start(produce).join()
    items = await reader

    assert items[:-1] == list(range(6))
    assert items[-1] == End()
    assert len(calls) == 1  # the first put woke the loop; the others found it awake


async def test_a_fast_reader_is_woken_for_each_item_and_misses_none() -> None:
    loop = asyncio.get_running_loop()
    channel = Channel(loop, 2)
    count = 2000
    failure = RuntimeError("done")

    def produce() -> None:
        for number in range(count):
            if number % 50 == 0:
                time.sleep(0.001)  # now and then the reader catches up and waits
            assert channel.put(number)
        channel.close(failure)

    worker = start(produce)
    items = []
    chance = random.Random(7)
    while not isinstance(item := await channel.get(), End):
        items.append(item)
        if chance.random() < 0.05:
            await asyncio.sleep(0)
    worker.join(5)

    assert items == list(range(count))
    assert item.error is failure  # the end, with its error, after every item


async def test_a_reader_that_stops_reading_blocks_the_worker_at_capacity() -> None:
    loop = asyncio.get_running_loop()
    channel = Channel(loop, 3)
    sent: list[int] = []

    def produce() -> None:
        for number in range(10):
            if not channel.put(number):
                return
            sent.append(number)
        channel.close()

    worker = start(produce)
    await until(lambda: len(sent) == 3)
    await asyncio.sleep(0.2)
    assert len(sent) == 3 and channel.pending() == 3  # no more than capacity waits
    assert worker.is_alive()

    assert await channel.get() == 0  # one read makes room for one more
    await until(lambda: len(sent) == 4)
    assert channel.pending() == 3

    rest = await read_all(channel)
    assert rest[:-1] == list(range(1, 10))
    worker.join(5)


async def test_cancelling_ends_a_worker_that_waits_for_room_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_channel, "_POLL", 60.0)  # only the cancel itself can end the wait
    loop = asyncio.get_running_loop()
    channel = Channel(loop, 2)
    refused = threading.Event()

    def produce() -> None:
        number = 0
        while channel.put(number):
            number += 1
        refused.set()

    worker = start(produce)
    await until(lambda: channel.pending() == 2)
    await asyncio.sleep(0.05)  # the worker waits for room
    channel.cancel()
    worker.join(10)

    assert refused.is_set()  # woken by the cancel, not left to its next look
    assert not channel.put("late")  # and every later put refuses


async def test_a_reader_cancelled_while_waiting_leaves_the_channel_usable() -> None:
    loop = asyncio.get_running_loop()
    channel = Channel(loop, 2)
    waiting = asyncio.create_task(channel.get())
    await until(lambda: channel._waiter is not None)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert channel._waiter is None

    start(lambda: (channel.put("a"), channel.close())).join()
    assert await read_all(channel) == ["a", End()]


def test_a_closed_loop_counts_as_a_cancel() -> None:
    loop = asyncio.new_event_loop()
    channel = Channel(loop, 2)

    async def wait_for_an_item() -> None:
        asyncio.get_running_loop().call_later(0.01, loop.stop)
        await channel.get()

    with pytest.raises(RuntimeError):  # the loop stopped before the item came
        loop.run_until_complete(wait_for_an_item())
    loop.close()

    assert not channel.put("lost")  # the reader's loop is gone: refused
    assert channel.cancelled.is_set()


def test_a_loop_that_closes_while_the_worker_waits_for_room_ends_the_wait() -> None:
    loop = asyncio.new_event_loop()
    channel = Channel(loop, 1)
    assert channel.put("waits unread")
    refused = threading.Event()
    worker = start(lambda: channel.put("blocked") or refused.set())
    time.sleep(0.02)
    loop.close()  # no cancel: the loop simply went away
    worker.join(5)

    assert refused.is_set()
    assert channel.cancelled.is_set()


def test_a_closed_loop_is_noticed_without_anything_to_send() -> None:
    loop = asyncio.new_event_loop()
    channel = Channel(loop, 2)
    busy = threading.Lock()
    busy.acquire()
    assert not channel.abandoned()
    loop.close()

    assert channel.abandoned()  # what each step looks at first
    assert channel.cancelled.is_set()
    assert not channel.wait(busy)  # nor is a device waited for on its behalf
