"""--rerun-changed: a changed line's earlier images never stay presented as its output, nor are lost."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from _batchkit import TinyProvider, manifest_states, read_results, write_job
from click.testing import CliRunner

from imagestream_batch import run_batch
from imagestream_batch._cli import batch
from imagestream_batch._manifest import ManifestWriter

BOOKKEEPING = {
    "results.jsonl",
    "manifest.db",
    "manifest.lock",
    "manifest.db-wal",
    "manifest.db-shm",
}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def images_in(directory: Path) -> dict[str, str]:
    """``name -> sha256`` of the files in ``directory`` (not below), the batch's own left out."""
    if not directory.is_dir():
        return {}
    return {
        entry.name: digest(entry)
        for entry in directory.iterdir()
        if entry.is_file() and entry.name not in BOOKKEEPING
    }


def record_of(out: Path, request_id: str) -> dict[str, Any]:
    db = sqlite3.connect(f"file:{out / 'manifest.db'}?mode=ro", uri=True)
    try:
        (text,) = db.execute("SELECT record FROM requests WHERE id = ?", (request_id,)).fetchone()
    finally:
        db.close()
    result: dict[str, Any] = json.loads(text)
    return result


def check_current(out: Path, expected: dict[str, list[str]]) -> list[dict[str, Any]]:
    """The results and the manifest list exactly ``expected`` (id -> file names), whole on disk,
    and no other image sits in the output directory."""
    results = read_results(out / "results.jsonl")
    assert {line["id"]: [Path(p).name for p in line["paths"]] for line in results} == expected
    for line in results:
        assert line["status"] == "done"
        assert [Path(p).parent for p in line["paths"]] == [out] * len(line["paths"])
        assert [digest(Path(p)) for p in line["paths"]] == line["sha256"]
        assert record_of(out, line["id"])["files"] == [Path(p).name for p in line["paths"]]
    assert set(manifest_states(out).values()) == {"done"}
    assert set(images_in(out)) == {name for names in expected.values() for name in names}
    assert not list(out.glob(".*.batch-tmp"))
    return results


def test_fewer_images_after_a_change_moves_the_extra_ones_aside(
    tmp_path: Path, tiny: TinyProvider
) -> None:
    out = tmp_path / "out"
    job = write_job(tmp_path / "job.jsonl", [{"id": "cat", "prompt": "cats", "n": 3}])
    run_batch(job, provider="tiny", out_dir=out)
    before = images_in(out)
    assert set(before) == {"cat-1.png", "cat-2.png", "cat-3.png"}

    write_job(job, [{"id": "cat", "prompt": "cats", "n": 1}, {"id": "dog", "prompt": "dog"}])
    summary = run_batch(job, provider="tiny", out_dir=out, rerun_changed=True)

    assert summary.ok and summary.done_now == 2 and summary.images == 2
    assert summary.replaced == 3 and summary.as_dict()["replaced"] == 3
    results = check_current(out, {"cat": ["cat.png"], "dog": ["dog.png"]})
    # Nothing lost: the earlier version is whole in replaced/, under its own names.
    assert images_in(out / "replaced") == before
    assert [Path(p).name for p in results[0]["replaced"]] == sorted(before)
    assert all(Path(p).parent == out / "replaced" for p in results[0]["replaced"])
    assert "replaced" not in results[1]
    # A run with nothing changed moves nothing and keeps the same results.
    again = run_batch(job, provider="tiny", out_dir=out)
    assert (again.done_now, again.replaced) == (0, 0)
    assert read_results(out / "results.jsonl") == results
    assert images_in(out / "replaced") == before


def test_the_same_names_are_moved_aside_too_and_replaced_is_never_overwritten(
    tmp_path: Path, tiny: TinyProvider
) -> None:
    out = tmp_path / "out"
    job = write_job(tmp_path / "job.jsonl", [{"id": "cat", "prompt": "one"}])
    run_batch(job, provider="tiny", out_dir=out)
    first = digest(out / "cat.png")
    (out / "replaced").mkdir()
    (out / "replaced" / "cat.png").write_bytes(b"the user's own file")

    write_job(job, [{"id": "cat", "prompt": "two"}])
    run_batch(job, provider="tiny", out_dir=out, rerun_changed=True)
    second = digest(out / "cat.png")
    write_job(job, [{"id": "cat", "prompt": "three"}])
    run_batch(job, provider="tiny", out_dir=out, rerun_changed=True)

    check_current(out, {"cat": ["cat.png"]})
    assert len({first, second, digest(out / "cat.png")}) == 3
    assert images_in(out / "replaced") == {
        "cat.png": hashlib.sha256(b"the user's own file").hexdigest(),
        "cat-1.png": first,
        "cat-2.png": second,
    }


def test_a_changed_format_moves_the_old_file_aside(tmp_path: Path, tiny: TinyProvider) -> None:
    pytest.importorskip("PIL")
    out = tmp_path / "out"
    job = write_job(tmp_path / "job.jsonl", [{"id": "cat", "prompt": "cats", "n": 2}])
    run_batch(job, provider="tiny", out_dir=out)
    before = images_in(out)

    write_job(job, [{"id": "cat", "prompt": "cats", "n": 2, "output_format": "jpeg"}])
    summary = run_batch(job, provider="tiny", out_dir=out, rerun_changed=True)

    assert summary.ok and summary.replaced == 2
    check_current(out, {"cat": ["cat-1.jpg", "cat-2.jpg"]})
    assert images_in(out / "replaced") == before


def test_a_rerun_that_fails_keeps_the_old_images_until_one_succeeds(
    tmp_path: Path, tiny: TinyProvider
) -> None:
    out = tmp_path / "out"
    job = write_job(tmp_path / "job.jsonl", [{"id": "cat", "prompt": "cats", "n": 3}])
    run_batch(job, provider="tiny", out_dir=out)
    before = images_in(out)

    write_job(job, [{"id": "cat", "prompt": "kittens", "n": 1}])
    tiny.fail["kittens"] = 2
    failed = run_batch(job, provider="tiny", out_dir=out, rerun_changed=True, retries=0)
    assert (failed.failed, failed.replaced) == (1, 0)
    assert images_in(out) == before  # where they were, untouched
    assert not (out / "replaced").exists()
    (line,) = read_results(out / "results.jsonl")
    assert (line["status"], line["paths"]) == ("failed", [])

    # A run that stops before it starts the request keeps them too.
    held = run_batch(job, provider="tiny", out_dir=out, retry_failed=False)
    assert (held.done_now, held.replaced) == (0, 0) and images_in(out) == before

    # The line fails once more, then is done: the images of the version done earlier go aside.
    again = run_batch(job, provider="tiny", out_dir=out, retries=0)
    assert again.failed == 1 and images_in(out) == before
    done = run_batch(job, provider="tiny", out_dir=out)
    assert done.ok and done.replaced == 3
    check_current(out, {"cat": ["cat.png"]})
    assert images_in(out / "replaced") == before


@pytest.mark.parametrize(
    ("request_id", "stem"),
    [
        ("../up", "_.._up"),
        ("a b/c", "a_b_c"),
        (".hidden", "_.hidden"),
        ("-dash", "_-dash"),
        ("猫 cat", "猫_cat"),
        ("replaced", "replaced"),
        ("results", "results"),
    ],
)
def test_unusual_ids_are_moved_aside_inside_the_output_directory(
    tmp_path: Path, tiny: TinyProvider, request_id: str, stem: str
) -> None:
    out = tmp_path / "out"
    job = write_job(tmp_path / "job.jsonl", [{"id": request_id, "prompt": "p", "n": 2}])
    run_batch(job, provider="tiny", out_dir=out)
    before = images_in(out)
    assert set(before) == {f"{stem}-1.png", f"{stem}-2.png"}

    write_job(job, [{"id": request_id, "prompt": "p", "n": 1}])
    summary = run_batch(job, provider="tiny", out_dir=out, rerun_changed=True)

    assert summary.ok and summary.replaced == 2
    check_current(out, {request_id: [f"{stem}.png"]})
    assert images_in(out / "replaced") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.jsonl", "out"]


def test_names_the_manifest_should_not_hold_are_never_touched(
    tmp_path: Path, tiny: TinyProvider
) -> None:
    out = tmp_path / "out"
    job = write_job(tmp_path / "job.jsonl", [{"id": "cat", "prompt": "cats"}])
    run_batch(job, provider="tiny", out_dir=out)
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"not the batch's")
    (out / "sub").mkdir()
    (out / "sub" / "x.png").write_bytes(b"nor this")
    (out / "link.png").symlink_to(outside)
    record = record_of(out, "cat")
    record["files"] += ["../outside.png", str(outside), "sub/x.png", "link.png", "sub", ".", ".."]
    record["sha256"] += [None] * 7
    db = sqlite3.connect(out / "manifest.db")
    with db:
        db.execute("UPDATE requests SET record = ? WHERE id = 'cat'", (json.dumps(record),))
    db.close()

    write_job(job, [{"id": "cat", "prompt": "dogs"}])
    summary = run_batch(job, provider="tiny", out_dir=out, rerun_changed=True)

    assert summary.ok and summary.replaced == 1
    assert set(images_in(out / "replaced")) == {"cat.png"}
    assert outside.read_bytes() == b"not the batch's"
    assert (out / "sub" / "x.png").read_bytes() == b"nor this"
    assert (out / "link.png").is_symlink()


def test_a_run_killed_while_replacing_leaves_no_duplicate_and_nothing_stale(
    tmp_path: Path, tiny: TinyProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    job = write_job(tmp_path / "job.jsonl", [{"id": "cat", "prompt": "cats", "n": 3}])
    run_batch(job, provider="tiny", out_dir=out)
    before = images_in(out)

    # Killed after the earlier images went aside and the new one was written,
    # before the manifest recorded it: the request is not done.
    real_commit = ManifestWriter._commit

    def commit(self: ManifestWriter, batch: list[Any]) -> None:
        if any(update.state == "done" for update, _, _ in batch):
            raise OSError("killed")
        real_commit(self, batch)

    monkeypatch.setattr(ManifestWriter, "_commit", commit)
    write_job(job, [{"id": "cat", "prompt": "kittens", "n": 1}])
    with pytest.raises(OSError, match="killed"):
        run_batch(job, provider="tiny", out_dir=out, rerun_changed=True)
    assert manifest_states(out) == {"cat": "pending"}
    assert images_in(out / "replaced") == before
    # And killed in the middle of a move: cat-1.png is in both places.
    os.link(out / "replaced" / "cat-1.png", out / "cat-1.png")
    monkeypatch.setattr(ManifestWriter, "_commit", real_commit)

    summary = run_batch(job, provider="tiny", out_dir=out)
    assert summary.ok and summary.done_now == 1
    check_current(out, {"cat": ["cat.png"]})
    assert images_in(out / "replaced") == before  # once each


def test_the_command_says_where_the_earlier_images_went(tmp_path: Path, tiny: TinyProvider) -> None:
    out = tmp_path / "out"
    job = write_job(tmp_path / "job.jsonl", [{"id": "cat", "prompt": "cats", "n": 2}])
    runner = CliRunner()
    args = [str(job), "-p", "tiny", "--out-dir", str(out)]
    assert runner.invoke(batch, args).exit_code == 0
    write_job(job, [{"id": "cat", "prompt": "cats"}])
    refused = runner.invoke(batch, args)
    assert refused.exit_code != 0 and "replaced/" in refused.output

    result = runner.invoke(batch, [*args, "--rerun-changed", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[-1])["replaced"] == 2
    assert f"2 earlier images moved to {out / 'replaced'}" in result.stderr
    assert "replaced/" in runner.invoke(batch, ["--help"]).output


@pytest.mark.parametrize("new_id_first", [False, True])
def test_an_earlier_image_under_a_name_another_id_now_takes_is_kept(
    tmp_path: Path, tiny: TinyProvider, new_id_first: bool
) -> None:
    out = tmp_path / "out"
    job = write_job(tmp_path / "job.jsonl", [{"id": "img", "prompt": "p", "n": 2}])
    run_batch(job, provider="tiny", out_dir=out)
    before = images_in(out)
    assert set(before) == {"img-1.png", "img-2.png"}

    lines: list[dict[str, Any]] = [{"id": "img", "prompt": "p"}, {"id": "img-1", "prompt": "q"}]
    write_job(job, lines[::-1] if new_id_first else lines)
    summary = run_batch(job, provider="tiny", out_dir=out, rerun_changed=True)

    assert summary.ok and summary.replaced == 2
    check_current(out, {"img": ["img.png"], "img-1": ["img-1.png"]})
    assert images_in(out / "replaced") == before


def test_a_manifest_of_the_first_schema_is_upgraded(tmp_path: Path, tiny: TinyProvider) -> None:
    out = tmp_path / "out"
    job = write_job(tmp_path / "job.jsonl", [{"id": "cat", "prompt": "cats", "n": 2}])
    run_batch(job, provider="tiny", out_dir=out)
    before = images_in(out)
    db = sqlite3.connect(out / "manifest.db")
    with db:
        db.execute("ALTER TABLE requests DROP COLUMN superseded")
        db.execute("PRAGMA user_version = 1")
    db.close()

    write_job(job, [{"id": "cat", "prompt": "cats"}])
    summary = run_batch(job, provider="tiny", out_dir=out, rerun_changed=True)

    assert summary.ok and summary.replaced == 2
    check_current(out, {"cat": ["cat.png"]})
    assert images_in(out / "replaced") == before
    db = sqlite3.connect(out / "manifest.db")
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    finally:
        db.close()


def test_without_hard_links_the_files_are_copied_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imagestream_batch._files import set_aside

    (tmp_path / "a.png").write_bytes(b"earlier")
    (tmp_path / "replaced").mkdir()
    (tmp_path / "replaced" / "a.png").write_bytes(b"the user's")
    earlier = [("a.png", hashlib.sha256(b"earlier").hexdigest())]

    def no_links(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EPERM, "no hard links here")

    monkeypatch.setattr(os, "link", no_links)
    assert set_aside(tmp_path, earlier) == ["replaced/a-1.png"]
    assert not (tmp_path / "a.png").exists()
    # Killed before the original went: the copy is found, not made again.
    (tmp_path / "a.png").write_bytes(b"earlier")
    assert set_aside(tmp_path, earlier) == ["replaced/a-1.png"]
    assert not (tmp_path / "a.png").exists()
    assert images_in(tmp_path / "replaced") == {
        "a.png": hashlib.sha256(b"the user's").hexdigest(),
        "a-1.png": earlier[0][1],
    }
    assert sorted(p.name for p in (tmp_path / "replaced").iterdir()) == ["a-1.png", "a.png"]
