"""The generation log: what a logged run records, what it never does, and ``imagestream logs``."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import imagestream
from imagestream import SaveOptions
from imagestream._builtins.log import GenerationLog, mask_url
from imagestream._logdb import (
    SCHEMA_VERSION,
    LogEntry,
    LoggedImage,
    LogWriteWarning,
    connect,
    log_path,
    logs_enabled,
    read_entries,
    set_logs_enabled,
    write_entry,
)
from imagestream._plugins import CORE_PLUGINS, PluginManager
from imagestream.cli import main
from imagestream.testing import ScriptedProvider

KEY = "sk-test-NEVERLOG-0123456789abcdef"
SMALL = {"provider": "procedural", "size": "32x32", "steps": 3}


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own data directory: nothing touches the user's log."""
    where = tmp_path / "data"
    monkeypatch.setenv("IMAGESTREAM_DATA_DIR", str(where))
    monkeypatch.delenv("IMAGESTREAM_DISABLE_PLUGINS", raising=False)
    return where


def rows(sql: str, *params: Any) -> list[sqlite3.Row]:
    conn = sqlite3.connect(log_path())
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def every_byte(directory: Path) -> bytes:
    """The database, its write-ahead log and anything else in the data dir."""
    return b"".join(path.read_bytes() for path in sorted(directory.iterdir()) if path.is_file())


# -- recording ---------------------------------------------------------------


async def test_a_logged_run_records_the_run(data_dir: Path, tmp_path: Path) -> None:
    before = datetime.now().astimezone()
    result = await imagestream.agenerate(
        "a red circle", seed=7, log=True, save=SaveOptions(out_dir=tmp_path / "out"), **SMALL
    )
    (row,) = rows("SELECT * FROM generations")
    assert row["prompt"] == "a red circle"
    assert row["provider"] == "procedural"
    assert row["model"] == "procedural-1"
    started = datetime.fromisoformat(row["time"])
    assert started.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= started <= datetime.now().astimezone()

    options = json.loads(row["options_json"])
    assert options["size"] == "32x32"
    assert options["steps"] == 3
    assert options["seed"] == 7
    assert "api_key" not in options and "prompt" not in options

    assert result.analytics is not None
    assert row["total_s"] == pytest.approx(result.analytics.total_s)
    assert 0 < row["first_preview_s"] <= row["first_final_s"] <= row["total_s"]
    assert row["input_tokens"] == 3  # the procedural provider counts prompt words
    assert row["output_tokens"] == 0
    assert row["cost_usd"] == 0.0
    assert row["previews"] == len(result.previews) > 0
    assert row["image_count"] == 1
    assert row["text"] == result.text != ""
    assert row["error_type"] is None and row["error_message"] is None

    (saved,) = result.saved
    (image,) = rows("SELECT * FROM images WHERE generation_id = ?", row["id"])
    assert image["path"] == str(saved.path.absolute())
    assert image["sha256"] == saved.sha256
    assert image["mime_type"] == "image/png"
    assert (image["width"], image["height"]) == (32, 32)
    assert image["seed"] == 7
    assert image["bytes"] == saved.bytes


def test_the_database_is_versioned_and_in_wal_mode(data_dir: Path) -> None:
    imagestream.generate("a blue square", log=True, **SMALL)
    conn = sqlite3.connect(log_path())
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
    # Opening again migrates nothing and keeps the row.
    connect().close()
    assert len(rows("SELECT id FROM generations")) == 1


async def test_an_unsaved_image_is_logged_without_a_path() -> None:
    result = await imagestream.agenerate("a green star", log=True, **SMALL)
    (image,) = rows("SELECT * FROM images")
    assert image["path"] is None
    assert image["sha256"] == result.images[0].image.sha256


@pytest.mark.parametrize(
    "switch", [{}, {"log": False}, {"log": None}], ids=["absent", "false", "none"]
)
def test_without_log_true_nothing_is_written(data_dir: Path, switch: dict[str, Any]) -> None:
    imagestream.generate("a red circle", **SMALL, **switch)
    imagestream.Pipeline("procedural").generate("a red circle", size="32x32", steps=1)
    assert not data_dir.exists()


async def test_a_pipeline_default_logs_every_run() -> None:
    pipe = imagestream.Pipeline("procedural", log=True, size="32x32", steps=2)
    await pipe.agenerate("one")
    await pipe.agenerate("two", log=False)
    assert [row["prompt"] for row in rows("SELECT prompt FROM generations")] == ["one"]


async def test_a_failing_run_records_its_error() -> None:
    with pytest.raises(imagestream.ConfigurationError):
        await imagestream.agenerate("a red circle", model="nope", log=True, **SMALL)
    (row,) = rows("SELECT * FROM generations")
    assert row["error_type"] == "ConfigurationError"
    assert "unknown model 'nope'" in row["error_message"]
    assert row["prompt"] == "a red circle"
    assert row["total_s"] is not None


async def test_a_run_failing_mid_stream_records_what_arrived() -> None:
    preview = imagestream.ImagePreview(image=imagestream.ImageData.from_bytes(b"x"), index=0)
    provider = ScriptedProvider(
        chunks=[
            imagestream.TextDelta("thinking about it"),
            preview,
            imagestream.ProviderError("the server hung up", provider="scripted"),
        ]
    )
    with pytest.raises(imagestream.ProviderError):
        await imagestream.Pipeline(provider, log=True).agenerate("a cat")
    (row,) = rows("SELECT * FROM generations")
    assert row["error_type"] == "ProviderError"
    assert "hung up" in row["error_message"]
    assert row["previews"] == 1
    assert row["text"] == "thinking about it"


# -- never a key -------------------------------------------------------------


class Leaky:
    """Middleware whose error quotes the key, as a careless server might."""

    @imagestream.hookimpl
    def on_request(self, request: imagestream.ImageRequest, context: Any) -> None:
        assert request.api_key is not None
        raise imagestream.ValidationError(
            f"refused key {request.api_key.get()} for {request.base_url}, "
            "see https://other.example/help?access_token=othersecret99&page=2"
        )


async def test_keys_never_reach_the_database(data_dir: Path) -> None:
    credentials = {
        "api_key": KEY,
        "base_url": "https://someone:hunter2pass@gw.example/v1?key=querysecret",
    }
    final = imagestream.ImageFinal(image=imagestream.ImageData.from_bytes(b"\x89PNG\r\n\x1a\n"))
    pipe = imagestream.Pipeline(ScriptedProvider(chunks=[final]), log=True)
    await pipe.agenerate(
        f"a prompt that quotes {KEY}",
        auth_token="tokensecret42",
        nested={"password": "nestedsecret42", "fine": f"also {KEY}"},
        **credentials,
    )
    with pytest.raises(imagestream.ValidationError):
        await imagestream.Pipeline(
            ScriptedProvider(chunks=[final]), middleware=[Leaky()], log=True
        ).agenerate("refused", **credentials)

    assert len(rows("SELECT id FROM generations")) == 2
    stored = every_byte(data_dir)
    secrets = (
        KEY,
        "hunter2pass",
        "querysecret",
        "tokensecret42",
        "nestedsecret42",
        "othersecret99",
    )
    for secret in secrets:
        assert secret.encode() not in stored, secret
    options = json.loads(rows("SELECT options_json FROM generations")[0][0])
    assert options["base_url"] == "https://[redacted]@gw.example/v1?key=[redacted]"
    assert options["options"]["auth_token"] == "[redacted]"
    assert options["options"]["nested"] == {"password": "[redacted]", "fine": "also [redacted]"}
    (message,) = [row[0] for row in rows("SELECT error_message FROM generations") if row[0]]
    assert message.startswith("refused key [redacted] for https://[redacted]@gw.example/v1?key=")
    assert "page=2" in message


def test_mask_url() -> None:
    assert mask_url("https://gw.example/v1") == "https://gw.example/v1"
    assert (
        mask_url("http://u:p@h:8080/x?a=1&b=2#frag")
        == "http://[redacted]@h:8080/x?a=[redacted]&b=[redacted]"
    )


# -- a log that cannot be written never fails a run ----------------------------


async def test_a_locked_log_warns_and_the_run_succeeds() -> None:
    await imagestream.agenerate("first", log=True, **SMALL)
    holder = sqlite3.connect(log_path(), isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.warns(LogWriteWarning, match="locked"):
            result = await imagestream.agenerate("second", log=True, **SMALL)
    finally:
        holder.close()
    assert len(result.images) == 1
    assert [row["prompt"] for row in rows("SELECT prompt FROM generations")] == ["first"]


def test_a_corrupt_log_warns_and_the_run_succeeds(data_dir: Path) -> None:
    data_dir.mkdir()
    garbage = b"this is not an SQLite database, just bytes " * 100
    log_path().write_bytes(garbage)
    with pytest.warns(LogWriteWarning, match="not a database"):
        result = imagestream.generate("a red circle", log=True, **SMALL)
    assert len(result.images) == 1
    assert log_path().read_bytes() == garbage  # left for the user to look at


def test_a_failed_run_with_a_broken_log_keeps_its_own_error(data_dir: Path) -> None:
    data_dir.mkdir()
    log_path().write_bytes(b"garbage" * 100)
    with pytest.warns(LogWriteWarning), pytest.raises(imagestream.ConfigurationError):
        imagestream.generate("a red circle", model="nope", log=True, **SMALL)


async def test_an_unusable_data_dir_warns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    occupied = tmp_path / "a-file"
    occupied.write_text("not a directory")
    monkeypatch.setenv("IMAGESTREAM_DATA_DIR", str(occupied))
    with pytest.warns(LogWriteWarning):
        result = await imagestream.agenerate("a red circle", log=True, **SMALL)
    assert result.images


async def test_a_log_from_a_newer_imagestream_is_not_written() -> None:
    await imagestream.agenerate("first", log=True, **SMALL)
    conn = sqlite3.connect(log_path())
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.warns(LogWriteWarning, match="newer"):
        await imagestream.agenerate("second", log=True, **SMALL)
    assert [entry["prompt"] for entry in read_entries()] == ["first"]  # still readable


async def test_a_bug_while_recording_is_only_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"boom {KEY}")

    monkeypatch.setattr("imagestream._builtins.log.build_entry", broken)
    with pytest.warns(LogWriteWarning, match="boom") as caught:
        result = await imagestream.agenerate("a red circle", log=True, api_key=KEY, **SMALL)
    assert result.images
    assert KEY not in str(caught[0].message)


# -- no cost while streaming ---------------------------------------------------


def test_the_log_does_no_per_chunk_work() -> None:
    assert not hasattr(GenerationLog, "on_chunk")
    manager = PluginManager(strict=True)
    manager.add_builtins(CORE_PLUGINS)
    assert manager.infos["log"].hooks == ("on_error", "on_result")


async def test_the_write_runs_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[int] = []
    real = write_entry

    def spy(entry: LogEntry, *args: Any, **kwargs: Any) -> int:
        threads.append(threading.get_ident())
        return real(entry, *args, **kwargs)

    monkeypatch.setattr("imagestream._logdb.write_entry", spy)
    await imagestream.agenerate("a red circle", log=True, **SMALL)
    assert threads and threads[0] != threading.get_ident()


# -- timings whichever order the analytics runs in -----------------------------


class LateAnalytics(imagestream.AnalyticsMiddleware):
    """The analytics middleware with its on_result after everything else's."""

    @imagestream.hookimpl(trylast=True)
    def on_result(self, result: imagestream.GenerationResult, context: Any) -> None:
        super().on_result(result, context)


async def test_timings_come_from_the_analytics_tracker_when_it_attaches_late() -> None:
    manager = PluginManager(strict=True)
    manager.add_plugin(LateAnalytics(), "late-analytics")  # registered first: called last
    manager.add_builtins(CORE_PLUGINS)
    result = await imagestream.Pipeline("procedural", manager=manager).agenerate(
        "a red circle", log=True, size="32x32", steps=3
    )
    (row,) = rows("SELECT * FROM generations")
    assert result.analytics is not None
    assert row["first_preview_s"] is not None and row["first_final_s"] is not None


async def test_without_analytics_the_total_comes_from_the_run_start() -> None:
    await imagestream.Pipeline("procedural").agenerate(
        "a red circle", log=True, size="32x32", steps=2
    )
    (row,) = rows("SELECT * FROM generations")
    assert row["total_s"] > 0
    assert row["first_preview_s"] is None and row["first_final_s"] is None
    assert row["input_tokens"] == 3  # from the usage chunk


# -- the on/off setting ----------------------------------------------------------


def test_logs_off_and_on(data_dir: Path) -> None:
    assert logs_enabled()
    set_logs_enabled(False)
    assert (data_dir / "logs-off").exists()
    assert not logs_enabled()
    set_logs_enabled(True)
    assert logs_enabled()
    set_logs_enabled(True)  # already on: nothing to do


def test_the_data_dir_defaults_to_the_platforms(monkeypatch: pytest.MonkeyPatch) -> None:
    import platformdirs

    monkeypatch.delenv("IMAGESTREAM_DATA_DIR")
    assert log_path() == Path(platformdirs.user_data_dir("imagestream")) / "logs.db"


# -- imagestream logs ------------------------------------------------------------


def entry(prompt: str, **fields: Any) -> LogEntry:
    return LogEntry(
        time="2026-01-02T03:04:05.000+00:00",
        prompt=prompt,
        provider="procedural",
        model="procedural-1",
        options={"size": "32x32", "seed": 1},
        total_s=1.5,
        first_preview_s=0.25,
        first_final_s=1.25,
        input_tokens=3,
        output_tokens=0,
        cost_usd=0.0,
        previews=4,
        images=(
            LoggedImage(
                path="/tmp/x.png",
                sha256="ab" * 32,
                mime_type="image/png",
                width=32,
                height=32,
                seed=1,
            ),
        ),
        **fields,
    )


def run(*args: str) -> Any:
    outcome = CliRunner().invoke(main, ["logs", *args], catch_exceptions=False)
    return outcome


@pytest.fixture
def four_runs() -> list[str]:
    prompts = ["a red circle", "a blue square", "a red-hot triangle", "two green circles"]
    for prompt in prompts:
        write_entry(entry(prompt))
    write_entry(
        entry("a failed circle", error_type="ProviderError", error_message="server hung up")
    )
    return [*prompts, "a failed circle"]


def test_logs_without_a_database() -> None:
    assert run().output.strip() == "no logs yet"
    assert json.loads(run("--json").output) == []
    outcome = run("status")
    assert "Logging is on" in outcome.output and "No log database yet" in outcome.output
    assert not log_path().exists()  # reading never creates the log


def test_logs_shows_the_last_three_most_recent_last(four_runs: list[str]) -> None:
    outcome = run()
    assert outcome.exit_code == 0
    shown = [
        line.split(":", 1)[1].strip() for line in outcome.output.splitlines() if "prompt:" in line
    ]
    assert shown == four_runs[-3:]
    assert "error:    ProviderError: server hung up" in outcome.output
    assert "took:     1.50 s (first preview 0.25 s, first final 1.25 s)" in outcome.output
    assert "image:    /tmp/x.png  image/png, 32x32, seed 1" in outcome.output


@pytest.mark.parametrize(("count", "expected"), [("1", 1), ("0", 5), ("10", 5)])
def test_logs_count(four_runs: list[str], count: str, expected: int) -> None:
    entries = json.loads(run("-n", count, "--json").output)
    assert [e["prompt"] for e in entries] == four_runs[-expected:]


def test_logs_json(four_runs: list[str]) -> None:
    entries = json.loads(run("--json").output)
    assert len(entries) == 3
    first = entries[0]
    assert first["prompt"] == "a red-hot triangle"
    assert first["options"] == {"seed": 1, "size": "32x32"}
    assert first["images"][0]["sha256"] == "ab" * 32
    assert {
        "id",
        "time",
        "provider",
        "model",
        "total_s",
        "first_preview_s",
        "first_final_s",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "previews",
        "text",
        "error_type",
        "error_message",
    } <= set(first)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("circle", ["a red circle", "two green circles", "a failed circle"]),
        ("circ", ["a red circle", "two green circles", "a failed circle"]),
        ("red", ["a red circle", "a red-hot triangle"]),
        ("red-hot", ["a red-hot triangle"]),
        ('"unbalanced AND', []),
        ("-", []),
    ],
)
def test_logs_search(four_runs: list[str], query: str, expected: list[str]) -> None:
    outcome = run("-q", query, "-n", "0", "--json")
    assert outcome.exit_code == 0, outcome.output
    assert [e["prompt"] for e in json.loads(outcome.output)] == expected


def test_logs_search_without_fts(four_runs: list[str]) -> None:
    conn = sqlite3.connect(log_path())
    conn.executescript(
        "DROP TRIGGER generations_fts_insert; DROP TRIGGER generations_fts_delete;"
        "DROP TRIGGER generations_fts_update; DROP TABLE generations_fts;"
    )
    conn.close()
    assert [e["prompt"] for e in read_entries(limit=0, search="circ")] == [
        "a red circle",
        "two green circles",
        "a failed circle",
    ]
    assert read_entries(limit=0, search="100%") == []


def test_logs_search_without_a_match(four_runs: list[str]) -> None:
    assert run("-q", "zebra").output.strip() == "no logs match 'zebra'"


def test_logs_path(data_dir: Path) -> None:
    assert run("path").output.strip() == str(data_dir / "logs.db")


def test_logs_off_on_and_status(four_runs: list[str]) -> None:
    assert "Logging is off" in run("off").output
    assert not logs_enabled()
    outcome = run("status")
    assert "Logging is off" in outcome.output
    assert f"Log database: {log_path()}" in outcome.output
    assert "Runs logged:  5" in outcome.output
    assert "Size:" in outcome.output
    assert "Logging is on" in run("on").output
    assert logs_enabled()
    assert "Logging is on" in run("status").output


def test_logs_of_a_corrupt_database_is_an_error_not_a_traceback(data_dir: Path) -> None:
    data_dir.mkdir()
    log_path().write_bytes(b"garbage" * 100)
    outcome = CliRunner().invoke(main, ["logs"])
    assert outcome.exit_code == 1
    assert "cannot read the generation log" in outcome.output
    assert "Runs logged:  unknown" in CliRunner().invoke(main, ["logs", "status"]).output
