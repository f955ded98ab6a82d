"""The same job on a local Ray started by the test: the same images, and a killed worker loses nothing."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _batchkit import manifest_states, read_results, write_job

from imagestream_batch import RayEngine, arun_batch, run_batch

ray: Any = pytest.importorskip("ray")

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A Ray of two CPUs for this module's tests, stopped after them."""
    ray.init(
        num_cpus=2,
        object_store_memory=100 * 1024**2,
        include_dashboard=False,
        log_to_driver=False,
    )
    try:
        yield
    finally:
        ray.shutdown()


def procedural_job(path: Path, count: int) -> Path:
    """Offline requests (the procedural provider, installed with the tests), seeded."""
    return write_job(
        path,
        (
            {"id": f"r{i}", "prompt": f"a small blue square {i}", "seed": i, "size": "48x48"}
            for i in range(count)
        ),
    )


def digests(results: Path) -> dict[str, list[str]]:
    return {line["id"]: line["sha256"] for line in read_results(results)}


def test_the_same_job_gives_the_same_images_on_ray(tmp_path: Path, local_ray: None) -> None:
    job = procedural_job(tmp_path / "job.jsonl", 40)

    here = run_batch(job, out_dir=tmp_path / "local", provider="procedural", steps=2)
    engine = RayEngine(workers=2)
    there = run_batch(job, out_dir=tmp_path / "ray", provider="procedural", steps=2, engine=engine)

    assert (here.done, there.done, there.engine) == (40, 40, "ray")
    assert engine.executed == 40 and engine.lost == 0
    assert digests(tmp_path / "ray" / "results.jsonl") == digests(
        tmp_path / "local" / "results.jsonl"
    )
    assert engine.actors == []  # closed with the batch


async def test_a_worker_killed_mid_job_loses_nothing(tmp_path: Path, local_ray: None) -> None:
    count = 120
    job = procedural_job(tmp_path / "job.jsonl", count)
    engine = RayEngine(workers=2, worker_cpus=0.5)
    out = tmp_path / "out"
    batch = asyncio.create_task(
        arun_batch(job, out_dir=out, provider="procedural", steps=6, concurrency=8, engine=engine)
    )
    victim = None
    for _ in range(6000):
        await asyncio.sleep(0.01)
        if batch.done():
            break
        actors = engine.actors
        if engine.executed >= 20 and actors and engine.busy(actors[0]) > 0:
            victim = actors[0]
            ray.kill(victim)
            break
    assert victim is not None, "the job ended before a worker could be killed mid-job"
    summary = await asyncio.wait_for(batch, 240)

    assert (summary.done, summary.failed, summary.pending) == (count, 0, 0)
    assert engine.lost >= 1 and engine.replaced == 1
    assert summary.lost == engine.lost
    # Each request recorded done exactly once: one results line, one file each.
    results = read_results(out / "results.jsonl")
    assert [line["id"] for line in results] == [f"r{i}" for i in range(count)]
    assert set(manifest_states(out).values()) == {"done"}
    assert len(list(out.glob("*.png"))) == count
    # The requests the dead worker held ran again: one more attempt each.
    db = sqlite3.connect(out / "manifest.db")
    try:
        extra = db.execute("SELECT sum(attempts - 1) FROM requests").fetchone()[0]
    finally:
        db.close()
    assert extra == engine.lost
    # And their images are the ones a local run makes.
    local = await arun_batch(job, out_dir=tmp_path / "local", provider="procedural", steps=6)
    assert local.done == count
    assert digests(out / "results.jsonl") == digests(tmp_path / "local" / "results.jsonl")
