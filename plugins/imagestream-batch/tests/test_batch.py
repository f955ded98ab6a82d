"""A batch run in this process: exact, resumable, retrying, within its limits and budget."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from _batchkit import TinyProvider, manifest_states, read_results, write_job
from click.testing import CliRunner
from rich.console import Console

import imagestream
from imagestream import ModelInfo, Pricing, ValidationError
from imagestream.testing import PluginHarness
from imagestream_batch import BatchStats, JobError, arun_batch, run_batch
from imagestream_batch._cli import batch
from imagestream_batch._display import BatchDisplay, describe
from imagestream_batch._limits import PROBE_WINDOWS, Budget, ProviderLimiter


def job_of(tmp_path: Path, count: int, **extra: object) -> Path:
    return write_job(
        tmp_path / "job.jsonl",
        ({"id": f"r{i}", "prompt": f"prompt {i}", **extra} for i in range(count)),
    )


def check_outputs(out: Path, ids: list[str]) -> list[dict[str, Any]]:
    """Every id done once in the results, its files whole and as recorded; no temporaries."""
    results = read_results(out / "results.jsonl")
    assert [line["id"] for line in results] == ids
    assert all(line["status"] == "done" for line in results)
    for line in results:
        paths = line["paths"]
        assert isinstance(paths, list)
        for path, digest in zip(paths, line["sha256"], strict=True):
            data = Path(path).read_bytes()
            assert data.startswith(b"\x89PNG")
            assert hashlib.sha256(data).hexdigest() == digest
    assert set(manifest_states(out).values()) == {"done"}
    assert not list(out.glob(".*.batch-tmp"))
    return results


def test_a_thousand_requests_each_done_exactly_once(tmp_path: Path, tiny: TinyProvider) -> None:
    job = job_of(tmp_path, 1000, provider="tiny")
    seen: list[int] = []

    started = time.perf_counter()
    summary = run_batch(job, concurrency=32, observer=lambda stats: seen.append(stats.done))
    elapsed = time.perf_counter() - started

    assert summary.ok and (summary.done, summary.done_now, summary.failed) == (1000, 1000, 0)
    assert summary.images == 1000 and summary.pending == 0
    assert sorted(tiny.calls) == sorted(f"prompt {i}" for i in range(1000))
    assert set(tiny.calls.values()) == {1}
    out = tmp_path / "job-images"
    check_outputs(out, [f"r{i}" for i in range(1000)])
    assert len(list(out.glob("*.png"))) == 1000
    assert seen[-1] == 1000 and seen == sorted(seen)
    assert elapsed < 60


def test_a_rerun_runs_nothing_and_a_changed_line_is_refused_then_rerun(
    tmp_path: Path, tiny: TinyProvider
) -> None:
    job = job_of(tmp_path, 5, provider="tiny")
    run_batch(job)
    again = run_batch(job)
    assert (again.done, again.done_now, again.images) == (5, 0, 0)
    assert set(tiny.calls.values()) == {1}
    before = (tmp_path / "job-images" / "r3.png").read_bytes()

    lines = job.read_text().splitlines()
    lines[3] = json.dumps({"id": "r3", "prompt": "another prompt", "provider": "tiny"})
    job.write_text("\n".join(lines) + "\n")
    with pytest.raises(JobError) as caught:
        run_batch(job)
    assert [str(problem) for problem in caught.value.problems] == [
        "line 4: id 'r3' was done with another request (the line, or a default it takes "
        "from the command line, changed)"
    ]
    assert "another prompt" not in tiny.calls
    # A default that a line takes changes its request too.
    with pytest.raises(JobError, match="5 changed lines"):
        run_batch(job_of(tmp_path, 5, provider="tiny"), size="8x8")

    job.write_text("\n".join(lines) + "\n")
    summary = run_batch(job, rerun_changed=True)
    assert (summary.done, summary.done_now) == (5, 1)
    assert tiny.calls["another prompt"] == 1
    assert (tmp_path / "job-images" / "r3.png").read_bytes() != before
    assert sum(tiny.calls.values()) == 6


def test_several_images_are_numbered(tmp_path: Path, tiny: TinyProvider) -> None:
    job = write_job(
        tmp_path / "job.jsonl",
        [{"id": "cat", "prompt": "cats", "n": 3, "seed": 10}, {"id": "dog", "prompt": "dog"}],
    )
    summary = run_batch(job, provider="tiny", out_dir=tmp_path / "out")
    assert summary.images == 4
    results = check_outputs(tmp_path / "out", ["cat", "dog"])
    cat = results[0]
    assert [Path(str(path)).name for path in cat["paths"]] == [
        "cat-1.png",
        "cat-2.png",
        "cat-3.png",
    ]
    assert (cat["seed"], cat["seeds"]) == (10, [10, 11, 12])
    assert [Path(str(path)).name for path in results[1]["paths"]] == ["dog.png"]


def test_transient_failures_are_retried_then_recorded_failed_without_blocking(
    tmp_path: Path, imagestream_plugins: PluginHarness
) -> None:
    tiny = TinyProvider(fail={"prompt 1": 2, "prompt 2": 99})
    imagestream_plugins.register_provider(tiny)
    job = job_of(tmp_path, 6, provider="tiny")

    summary = run_batch(job, retries=3, backoff=0.01, max_backoff=0.02)

    assert (summary.done, summary.failed, summary.pending) == (5, 1, 0)
    assert not summary.ok
    assert summary.failures == (("r2", "ServerError", "tiny: overloaded [HTTP 503]"),)
    assert tiny.calls["prompt 1"] == 3 and tiny.calls["prompt 2"] == 4  # 1 + 3 retries
    assert summary.retries == 2 + 3
    results = {line["id"]: line for line in read_results(tmp_path / "job-images" / "results.jsonl")}
    assert results["r2"]["status"] == "failed"
    assert results["r2"]["error"] == {
        "type": "ServerError",
        "message": "tiny: overloaded [HTTP 503]",
        "hint": None,
    }
    assert results["r1"]["timings"]["attempts"] == 3
    assert manifest_states(tmp_path / "job-images")["r2"] == "failed"

    # Failed requests run again next time (unless --skip-failed); done ones never.
    tiny.fail["prompt 2"] = 0
    assert run_batch(job, retry_failed=False).done_now == 0
    again = run_batch(job)
    assert (again.done, again.done_now, again.failed) == (6, 1, 0)
    assert tiny.calls["prompt 1"] == 3


def test_a_request_the_provider_refuses_stops_the_job_before_it_runs(
    tmp_path: Path, imagestream_plugins: PluginHarness
) -> None:
    class Picky(TinyProvider):
        def validate(self, request: imagestream.ImageRequest) -> imagestream.ImageRequest:
            if "forbidden" in request.prompt:
                raise ValidationError("tiny: that prompt is forbidden")
            return request

    picky = Picky()
    imagestream_plugins.register_provider(picky)
    job = write_job(
        tmp_path / "job.jsonl",
        [{"id": "a", "prompt": "fine"}, {"id": "b", "prompt": "forbidden fruit"}],
    )
    with pytest.raises(JobError) as caught:
        run_batch(job, provider="tiny")
    assert [str(problem) for problem in caught.value.problems] == [
        "line 2: tiny: that prompt is forbidden"
    ]
    assert picky.calls == {}
    assert not (tmp_path / "job-images").exists()


@pytest.mark.parametrize(("own", "per_provider", "most"), [(1, None, 1), (None, 2, 2)])
def test_concurrency_limits_are_respected(
    tmp_path: Path,
    imagestream_plugins: PluginHarness,
    own: int | None,
    per_provider: int | None,
    most: int,
) -> None:
    tiny = TinyProvider(delay=0.01, max_concurrency=own)
    imagestream_plugins.register_provider(tiny)
    summary = run_batch(
        job_of(tmp_path, 12, provider="tiny"), concurrency=8, per_provider=per_provider
    )
    assert summary.ok
    assert tiny.most_active == most


def test_max_cost_stops_starting_requests(
    tmp_path: Path, imagestream_plugins: PluginHarness
) -> None:
    # Reported cost, no price list: the estimate is the average seen so far.
    tiny = TinyProvider(cost=0.10)
    imagestream_plugins.register_provider(tiny)
    job = job_of(tmp_path, 10, provider="tiny")

    summary = run_batch(job, concurrency=1, max_cost=0.25)

    assert (summary.done, summary.pending, summary.stopped) == (2, 8, "max-cost")
    assert summary.total_cost_usd == pytest.approx(0.20)
    assert len(tiny.calls) == 2
    results = read_results(tmp_path / "job-images" / "results.jsonl")
    assert [line["status"] for line in results] == ["done"] * 2 + ["pending"] * 8
    # The budget covers the job, earlier runs included.
    assert run_batch(job, concurrency=1, max_cost=0.25).done_now == 0
    assert run_batch(job, concurrency=1, max_cost=0.45).done_now == 2


def test_max_cost_with_a_price_per_image(
    tmp_path: Path, imagestream_plugins: PluginHarness
) -> None:
    class Priced(TinyProvider):
        models = (ModelInfo("tiny-1", pricing=Pricing(per_image=0.10)),)
        default_model = "tiny-1"

    priced = Priced(delay=0.01, cost=None)
    imagestream_plugins.register_provider(priced)

    summary = run_batch(job_of(tmp_path, 10, provider="tiny", n=2), concurrency=4, max_cost=0.70)

    # 0.20 a request: three fit (0.60), a fourth would pass 0.70.
    assert (summary.done, summary.stopped) == (3, "max-cost")
    assert len(priced.calls) == 3


async def test_an_interrupted_run_leaves_nothing_running_and_resumes(
    tmp_path: Path, imagestream_plugins: PluginHarness
) -> None:
    tiny = TinyProvider(delay=0.05)
    imagestream_plugins.register_provider(tiny)
    job = job_of(tmp_path, 40, provider="tiny")
    progress: list[BatchStats] = []
    task = asyncio.create_task(arun_batch(job, concurrency=4, observer=progress.append))
    for _ in range(400):
        await asyncio.sleep(0.01)
        if progress and progress[-1].done >= 6:
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    out = tmp_path / "job-images"
    states = manifest_states(out)
    assert "running" not in states.values()
    done_first = {request_id for request_id, state in states.items() if state == "done"}
    assert 6 <= len(done_first) < 40

    summary = await arun_batch(job, concurrency=4)
    assert (summary.done, summary.done_now) == (40, 40 - len(done_first))
    # Recorded done: never generated again. Cut off while running: generated again.
    assert all(tiny.calls[f"prompt {request_id[1:]}"] == 1 for request_id in done_first)
    assert set(tiny.calls) == {f"prompt {i}" for i in range(40)}
    check_outputs(out, [f"r{i}" for i in range(40)])


def test_the_command(tmp_path: Path, tiny: TinyProvider) -> None:
    job = write_job(
        tmp_path / "job.jsonl",
        [{"id": "a", "prompt": "p"}, {"id": "b", "prompt": "q", "n": 2}],
    )
    out = tmp_path / "out"
    runner = CliRunner()
    done = runner.invoke(
        batch, [str(job), "-p", "tiny", "--out-dir", str(out), "--json", "-o", "style", "x"]
    )
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    assert (summary["done"], summary["images"], summary["engine"]) == (2, 3, "local")
    assert summary["results"] == str(out / "results.jsonl")
    assert sorted(path.name for path in out.glob("*.png")) == ["a.png", "b-1.png", "b-2.png"]

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a"}\n', encoding="utf-8")
    refused = runner.invoke(batch, [str(bad), "--json"])
    assert refused.exit_code == 1
    assert json.loads(refused.stdout)["error"]["type"] == "JobError"
    assert "line 1: no prompt" in refused.stderr


def test_one_run_per_output_directory(tmp_path: Path, tiny: TinyProvider) -> None:
    from imagestream_batch import Manifest

    job = job_of(tmp_path, 2, provider="tiny")
    with (
        Manifest(tmp_path / "job-images"),
        pytest.raises(imagestream.ConfigurationError, match="another imagestream batch is running"),
    ):
        run_batch(job)
    assert run_batch(job).ok


def test_the_manifest_is_sqlite_in_wal_mode(tmp_path: Path, tiny: TinyProvider) -> None:
    run_batch(job_of(tmp_path, 3, provider="tiny"))
    db = sqlite3.connect(tmp_path / "job-images" / "manifest.db")
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        rows = db.execute("SELECT id, state, attempts, length(hash) FROM requests ORDER BY id")
        assert list(rows) == [("r0", "done", 1, 64), ("r1", "done", 1, 64), ("r2", "done", 1, 64)]
    finally:
        db.close()


def test_the_progress_line() -> None:
    stats = BatchStats(total=12, earlier=2, to_run=10, done=4, failed=1, running=3, images=4)
    stats.cost_usd, stats.spent_before, stats.rate_limited = 0.5, 1.25, 2
    stats.started -= 60
    line = describe(stats)
    assert line.startswith(
        "4 done · 1 failed · 3 running · 2 earlier · 4.0 img/min · $1.75 · 2x 429"
    )
    assert line.endswith("ETA 1m 00s")  # five of ten in a minute: a minute to go

    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=160)
    with BatchDisplay(console=console) as display:
        display.update(stats)
    assert "5/10" in screen.getvalue() and "3 running" in screen.getvalue()
    assert not BatchDisplay(console=Console(file=io.StringIO())).enabled  # not a terminal


def test_aimd_halves_once_per_burst_and_grows_back() -> None:
    limiter = ProviderLimiter("p", 8)
    epochs = [limiter.acquire() for _ in range(8)]
    assert not limiter.can_start(0.0)
    # Eight refusals of requests started at the same limit: one halving.
    for epoch in epochs:
        limiter.release()
        limiter.throttled(epoch, 2.0, now=100.0)
    assert (limiter.limit, limiter.decreases, limiter.resume_at) == (4, 1, 102.0)
    assert not limiter.can_start(101.0) and limiter.can_start(102.0)
    # A refusal of a request started after the halving halves again.
    epoch = limiter.acquire()
    limiter.release()
    limiter.throttled(epoch, None, now=200.0)
    assert limiter.limit == 2 and limiter.resume_at > 200.0
    for _ in range(2):
        limiter.succeeded()
    assert limiter.limit == 3
    # 4 drew the last 429: it is tried again only after eight windows at 3.
    for _ in range(3 * PROBE_WINDOWS - 1):
        limiter.succeeded()
    assert limiter.limit == 3
    limiter.succeeded()
    assert (limiter.limit, limiter.refused_at) == (4, None)
    for _ in range(4 + 5):
        limiter.succeeded()
    assert limiter.limit == 6
    for _ in range(100):
        limiter.succeeded()
    assert limiter.limit == 8  # never past the ceiling
    assert limiter.lowest == 2


def test_budget_learns_a_token_price_from_one_request_first() -> None:
    budget = Budget(1.0, pricing_of=lambda provider, model: Pricing(output_image=40.0))
    assert budget.admit("a", "p", None, 1) is True
    assert budget.admit("b", "p", None, 1) is False  # the price is being learnt
    budget.settle("a", "p", None, 0.30, 1)
    assert budget.estimate("p", None, 2) == pytest.approx(0.60)
    assert budget.admit("b", "p", None, 2) is True
    assert budget.admit("c", "p", None, 1) is False  # 0.30 + 0.60 + 0.30 > 1.0, b in flight
    budget.settle("b", "p", None, 0.60, 2)
    assert budget.admit("c", "p", None, 1) is None  # nothing in flight can free room: stop
