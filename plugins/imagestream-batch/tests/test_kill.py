"""The real command in a subprocess, killed every way there is, then run again: nothing lost, nothing twice."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from _batchkit import DELAY_ENV, HANG_ENV, RECORD_ENV, manifest_states, read_results, write_job

LAUNCHER = Path(__file__).with_name("_batchkit.py")
COUNT = 150
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the last chunk of every whole PNG

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir(), reason="the mid-write kill finds files through /proc"
)


def start(job: Path, out: Path, record: Path, **env: str) -> subprocess.Popen[bytes]:
    environment = {
        **os.environ,
        "IMAGESTREAM_LOAD_PLUGINS": "batch",  # the command; the launcher adds 'tiny'
        RECORD_ENV: str(record),
        DELAY_ENV: "0.03",
        **env,
    }
    command = [sys.executable, str(LAUNCHER), "batch", str(job), "-p", "tiny"]
    command += ["--out-dir", str(out), "--concurrency", "4", "-q"]
    return subprocess.Popen(
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def wait_for(condition: Any, what: str, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended ({proc.returncode}) before {what}: {proc.stderr}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def done_ids(out: Path) -> set[str]:
    return {request_id for request_id, state in manifest_states(out).items() if state == "done"}


def check_done_files(out: Path) -> None:
    """Every request the manifest says is done has each of its files, whole, as recorded."""
    db = sqlite3.connect(f"file:{out / 'manifest.db'}?mode=ro", uri=True)
    try:
        rows = list(db.execute("SELECT id, record FROM requests WHERE state = 'done'"))
    finally:
        db.close()
    for request_id, text in rows:
        record = json.loads(text)
        for name, digest in zip(record["files"], record["sha256"], strict=True):
            data = (out / name).read_bytes()
            assert hashlib.sha256(data).hexdigest() == digest, request_id


def generated(record: Path) -> list[str]:
    return record.read_text(encoding="utf-8").splitlines() if record.exists() else []


@pytest.mark.timeout(240)
def test_every_kind_of_kill_loses_nothing_and_repeats_nothing(tmp_path: Path) -> None:
    job = write_job(
        tmp_path / "job.jsonl",
        ({"id": f"r{i}", "prompt": f"prompt {i}"} for i in range(COUNT)),
    )
    out = tmp_path / "out"
    record = tmp_path / "generated.txt"
    marker = tmp_path / "writing"
    # (how it is stopped, its exit status, whether it may leave requests 'running')
    kills = [
        ("SIGINT", signal.SIGINT, 130),
        ("SIGTERM", signal.SIGTERM, 143),
        ("SIGKILL in the middle of writing an image", signal.SIGKILL, -signal.SIGKILL),
        ("SIGKILL", signal.SIGKILL, -signal.SIGKILL),
    ]
    done_before: set[str] = set()
    generated_before = 0  # lines of the record when done_before was read
    for what, sig, status in kills:
        hang = "writing" in what
        proc = start(job, out, record, **({HANG_ENV: str(marker)} if hang else {}))
        try:
            if hang:
                wait_for(marker.exists, "an image write", proc)
            else:
                wanted = len(done_before) + 10
                wait_for(lambda wanted=wanted: len(done_ids(out)) >= wanted, "progress", proc)
            proc.send_signal(sig)
            assert proc.wait(timeout=60) == status, (
                what,
                proc.stderr.read() if proc.stderr else b"",
            )
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout:
                proc.stdout.close()
            if proc.stderr:
                proc.stderr.close()
        states = manifest_states(out)
        if sig != signal.SIGKILL:
            # A run that is told to stop puts what it was running back to pending.
            assert "running" not in states.values(), what
        if hang:
            # Killed with a temporary half written: the request is not done, and
            # its name holds nothing or a whole image (one a killed run wrote
            # earlier, before the request was recorded done).
            temporary = Path(marker.read_text(encoding="utf-8"))
            assert temporary.exists() and temporary.name.endswith(".batch-tmp")
            name = temporary.name[1:].split(".png.")[0] + ".png"
            request_id = name.removesuffix(".png")
            assert states[request_id] == "running"
            if (out / name).exists():
                assert (out / name).read_bytes()[-12:] == PNG_END
        check_done_files(out)
        done_now = done_ids(out)
        assert done_before <= done_now, what  # done stays done
        assert len(done_now) < COUNT, f"{what}: the run finished before it was stopped"
        # Nothing done before this run was generated again by it.
        since = generated(record)[generated_before:]
        assert not {f"prompt {request_id[1:]}" for request_id in done_before} & set(since), what
        done_before, generated_before = done_now, len(generated(record))

    proc = start(job, out, record)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr.decode()

    everything = generated(record)
    assert set(everything) == {f"prompt {i}" for i in range(COUNT)}
    since = everything[generated_before:]
    assert not {f"prompt {request_id[1:]}" for request_id in done_before} & set(since)
    # Generated more than once: only requests a kill cut off while they ran.
    again = sum(count - 1 for count in Counter(everything).values())
    assert again <= (4 + 12) * len(kills)  # generating, or generated and not yet recorded
    results = read_results(out / "results.jsonl")
    assert [line["id"] for line in results] == [f"r{i}" for i in range(COUNT)]
    assert {line["status"] for line in results} == {"done"}
    check_done_files(out)
    assert sorted(path.name for path in out.glob("*.png")) == sorted(
        f"r{i}.png" for i in range(COUNT)
    )
    assert not list(out.glob(".*"))  # the temporaries of the killed runs are gone
