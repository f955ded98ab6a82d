"""A 429 storm from a local server is absorbed: the provider slows down, waits as asked, finishes."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _batchkit import HttpProvider, png, read_results, write_job
from aiohttp import web

from imagestream.testing import PluginHarness
from imagestream_batch import arun_batch

STORM_S = 0.5  # everything is refused for this long after the first request
WAIT_MS = 300  # what each refusal asks for (retry-after-ms)
CAPACITY = 3  # then: more than this many at once are refused
WORK_S = 0.02


class StormServer:
    """Refuses everything at first, then whatever passes its capacity; records each arrival."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.outcomes: list[tuple[float, bool]] = []  # (arrival, refused)
        self.refused = 0
        self.served = 0
        self.active = 0
        self.most_active_served = 0
        self.image = base64.b64encode(png(4, 4, (10, 200, 30))).decode("ascii")

    async def generate(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        self.arrivals.append(now)
        await request.json()
        storm = now - self.arrivals[0] < STORM_S
        refused = storm or self.active >= CAPACITY
        self.outcomes.append((now, refused))
        if refused:
            self.refused += 1
            return web.json_response(
                {"error": {"message": "slow down", "type": "rate_limit"}},
                status=429,
                headers={"retry-after-ms": str(WAIT_MS)},
            )
        self.active += 1
        self.most_active_served = max(self.most_active_served, self.active)
        try:
            await asyncio.sleep(WORK_S)
            self.served += 1
            return web.json_response({"b64": self.image})
        finally:
            self.active -= 1


@pytest.fixture
async def storm() -> AsyncIterator[tuple[StormServer, str]]:
    server = StormServer()
    app = web.Application()
    app.router.add_post("/generate", server.generate)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.25)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield server, f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.mark.timeout(60)
async def test_a_429_storm_is_absorbed(
    tmp_path: Path, imagestream_plugins: PluginHarness, storm: tuple[StormServer, str]
) -> None:
    server, url = storm
    imagestream_plugins.register_provider(HttpProvider())
    job = write_job(
        tmp_path / "job.jsonl", ({"id": f"r{i}", "prompt": f"prompt {i}"} for i in range(60))
    )

    summary = await arun_batch(job, provider="http-tiny", base_url=url, concurrency=16, retries=0)

    # Every request done once, none failed, although --retries 0: 429s do not count.
    assert (summary.done, summary.failed) == (60, 0)
    assert server.served == 60
    results = read_results(tmp_path / "job-images" / "results.jsonl")
    assert sorted(line["id"] for line in results) == sorted(f"r{i}" for i in range(60))
    assert server.refused >= 16
    assert summary.rate_limited == server.refused

    # The wait each refusal asked for was honoured: after the opening burst,
    # nothing came until the first refusal's retry-after-ms had passed.
    first = server.arrivals[0]
    assert not [t - first for t in server.arrivals if 0.15 < t - first < WAIT_MS / 1000 - 0.02]
    # The limit came down to what the server takes: once the storm was over,
    # few refusals (it probes one more now and then), not one in four.
    after = [refused for t, refused in server.outcomes if t - first > STORM_S]
    assert len(after) >= 60
    assert sum(after) <= len(after) / 8
