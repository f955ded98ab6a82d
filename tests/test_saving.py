"""Tests for ``imagestream._saving`` and the built-in ``filesystem`` saver."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from imagestream._builtins.filesystem import FilesystemSaver, save_image
from imagestream._chunks import ImageFinal
from imagestream._context import RunContext
from imagestream._image import ImageData
from imagestream._request import ImageRequest
from imagestream._saving import (
    DEFAULT_OUT_DIR,
    SaveOptions,
    default_name,
    fix_suffix,
    numbered,
    safe_join,
    write_atomic,
)
from imagestream.errors import SaveError, UnsafePathError
from imagestream.testing import ScriptedProvider, make_png

PNG = make_png(6, 4)


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (7, 5), (10, 200, 30)).save(buffer, "JPEG")
    return buffer.getvalue()


JPEG = _jpeg()


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def _temp_files(directory: Path) -> list[str]:
    return [name for name in _names(directory) if name.endswith(".tmp")]


@pytest.fixture
def umask_077() -> Iterator[None]:
    """A restrictive umask, to prove the file mode is set explicitly."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


# --- write_atomic ------------------------------------------------------------------------


@pytest.mark.usefixtures("umask_077")
def test_write_atomic_writes_content_with_mode_644(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "img.png"
    written = write_atomic(target, PNG)
    assert written == target
    assert target.read_bytes() == PNG
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert _names(target.parent) == ["img.png"]


def test_write_atomic_takes_next_free_name(tmp_path: Path) -> None:
    target = tmp_path / "img.png"
    paths = [write_atomic(target, bytes([i]) * 10) for i in range(4)]
    assert [p.name for p in paths] == ["img.png", "img-1.png", "img-2.png", "img-3.png"]
    for i, path in enumerate(paths):
        assert path.read_bytes() == bytes([i]) * 10
    assert _temp_files(tmp_path) == []


def test_write_atomic_skips_taken_numbers(tmp_path: Path) -> None:
    (tmp_path / "img.png").write_bytes(b"0")
    (tmp_path / "img-1.png").write_bytes(b"1")
    (tmp_path / "img-3.png").write_bytes(b"3")
    assert write_atomic(tmp_path / "img.png", PNG) == tmp_path / "img-2.png"
    assert (tmp_path / "img-1.png").read_bytes() == b"1"


def test_write_atomic_name_without_suffix(tmp_path: Path) -> None:
    (tmp_path / "raw").write_bytes(b"x")
    assert write_atomic(tmp_path / "raw", PNG) == tmp_path / "raw-1"


@pytest.mark.usefixtures("umask_077")
def test_write_atomic_overwrite_replaces(tmp_path: Path) -> None:
    target = tmp_path / "img.png"
    target.write_bytes(b"old content")
    target.chmod(0o600)
    assert write_atomic(target, PNG, overwrite=True) == target
    assert target.read_bytes() == PNG
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert _names(tmp_path) == ["img.png"]


def test_write_atomic_failure_leaves_nothing(tmp_path: Path) -> None:
    """Publishing fails (the name is a directory): SaveError, and the temp file is gone."""
    (tmp_path / "img.png").mkdir()
    with pytest.raises(SaveError) as info:
        write_atomic(tmp_path / "img.png", PNG, overwrite=True)
    assert info.value.path == tmp_path / "img.png"
    assert _names(tmp_path) == ["img.png"]
    assert _names(tmp_path / "img.png") == []


def test_write_atomic_fsync_failure_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(SaveError, match="I/O error"):
        write_atomic(tmp_path / "img.png", PNG)
    assert _names(tmp_path) == []


def test_write_atomic_gives_up_after_max_tries(tmp_path: Path) -> None:
    for name in ("img.png", "img-1.png", "img-2.png"):
        (tmp_path / name).write_bytes(b"taken")
    with pytest.raises(SaveError, match="no free file name"):
        write_atomic(tmp_path / "img.png", PNG, max_tries=3)
    assert _names(tmp_path) == ["img-1.png", "img-2.png", "img.png"]


def test_write_atomic_parent_is_a_file(tmp_path: Path) -> None:
    """The directory cannot be created because a regular file is in the way."""
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"")
    with pytest.raises(SaveError, match="cannot write to") as info:
        write_atomic(blocker / "sub" / "img.png", PNG)
    assert info.value.path == blocker / "sub" / "img.png"
    assert isinstance(info.value.__cause__, OSError)


def test_write_atomic_read_only_directory(tmp_path: Path) -> None:
    directory = tmp_path / "ro"
    directory.mkdir()
    directory.chmod(0o555)
    try:
        if os.access(directory, os.W_OK):
            pytest.skip("permission bits are not enforced for this user (root?)")
        with pytest.raises(SaveError):
            write_atomic(directory / "img.png", PNG)
        assert _names(directory) == []
    finally:
        directory.chmod(0o755)


def test_write_atomic_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On file systems without hard links the exclusive-create fallback still numbers names."""

    def no_links(src: Any, dst: Any) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    first = write_atomic(tmp_path / "img.png", b"first")
    second = write_atomic(tmp_path / "img.png", b"second")
    assert (first.name, second.name) == ("img.png", "img-1.png")
    assert first.read_bytes() == b"first"
    assert second.read_bytes() == b"second"
    assert _temp_files(tmp_path) == []


def test_write_atomic_other_link_errors_become_save_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_link(src: Any, dst: Any) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "link", broken_link)
    with pytest.raises(SaveError):
        write_atomic(tmp_path / "img.png", PNG)
    assert _names(tmp_path) == []


def test_concurrent_writers_get_distinct_files(tmp_path: Path) -> None:
    """Threads racing for one name each get their own file, with their own bytes only."""
    workers = 12
    payloads = [bytes([i]) * (50_000 + i) for i in range(workers)]
    results: list[Path | None] = [None] * workers
    errors: list[BaseException] = []
    barrier = threading.Barrier(workers)

    def work(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = write_atomic(tmp_path / "race.png", payloads[i])
        except BaseException as exc:  # collected and re-checked below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    paths = [p for p in results if p is not None]
    assert len(set(paths)) == workers
    for i, path in enumerate(results):
        assert path is not None
        assert path.read_bytes() == payloads[i]
    expected = {"race.png"} | {f"race-{n}.png" for n in range(1, workers)}
    assert set(_names(tmp_path)) == expected


# --- safe_join -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["img.png", "sub/img.png", "a b.png", "ünïcode.png", "..png"])
def test_safe_join_accepts_names_inside(tmp_path: Path, name: str) -> None:
    assert safe_join(tmp_path, name) == tmp_path / name


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "..",
        "/etc/passwd",
        "a/../../b",
        "a/../b",
        "sub/../../../etc/passwd",
        "nul\x00.png",
        "line\nbreak.png",
        "tab\t.png",
        "bell\x07.png",
        "del\x7f.png",
        "",
    ],
)
def test_safe_join_refuses(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnsafePathError):
        safe_join(tmp_path, name)


def test_unsafe_path_error_is_a_save_error(tmp_path: Path) -> None:
    with pytest.raises(SaveError) as info:
        safe_join(tmp_path, "../x")
    assert info.value.hint is not None


def test_safe_join_refuses_symlink_escaping(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    outside = tmp_path / "outside"
    out_dir.mkdir()
    outside.mkdir()
    (out_dir / "link").symlink_to(outside, target_is_directory=True)
    (out_dir / "file-link.png").symlink_to(outside / "victim.png")
    with pytest.raises(UnsafePathError, match="not a file inside"):
        safe_join(out_dir, "link/img.png")
    with pytest.raises(UnsafePathError):
        safe_join(out_dir, "file-link.png")


def test_safe_join_allows_symlink_staying_inside(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real", target_is_directory=True)
    assert safe_join(tmp_path, "alias/img.png") == tmp_path / "alias" / "img.png"


def test_safe_join_with_symlinked_output_directory(tmp_path: Path) -> None:
    """The output directory itself may be a symlink; names inside it are fine."""
    (tmp_path / "real").mkdir()
    (tmp_path / "out").symlink_to(tmp_path / "real", target_is_directory=True)
    assert safe_join(tmp_path / "out", "img.png") == tmp_path / "out" / "img.png"


@pytest.mark.parametrize("name", [".", "./", "./."])
def test_safe_join_refuses_the_directory_itself(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnsafePathError):
        safe_join(tmp_path, name)


# --- fix_suffix, numbered, default_name -----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("out.jpg", PNG, "out.png"),
        ("out.png", PNG, "out.png"),
        ("out.PNG", PNG, "out.PNG"),
        ("out", PNG, "out.png"),
        ("out.jpeg", JPEG, "out.jpeg"),
        ("out.JPG", JPEG, "out.JPG"),
        ("out.jpg", JPEG, "out.jpg"),
        ("out.png", JPEG, "out.jpg"),
        ("out.tar.gz", PNG, "out.tar.png"),
        ("out.png", b"not an image", "out.png"),
        ("out", b"", "out"),
    ],
)
def test_fix_suffix(name: str, data: bytes, expected: str) -> None:
    assert fix_suffix(Path("dir") / name, data) == Path("dir") / expected


def test_numbered() -> None:
    assert numbered(Path("d/out.png"), 0) == Path("d/out.png")
    assert numbered(Path("d/out.png"), 1) == Path("d/out-1.png")
    assert numbered(Path("d/out.png"), 12) == Path("d/out-12.png")
    assert numbered(Path("d/out"), 2) == Path("d/out-2")


def _stamp(now: float) -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(now))


def test_default_name_format() -> None:
    now = 1_700_000_000.25  # exactly representable, so the milliseconds are exact
    assert default_name("image/png", now=now) == f"image-{_stamp(now)}-250.png"
    assert default_name("image/jpeg", sample=3, now=now) == f"image-{_stamp(now)}-250-3.jpg"
    assert default_name("image/webp", now=now).endswith("-250.webp")
    assert default_name("image/gif", now=now).endswith(".gif")
    assert default_name(None, now=now).endswith("-250.bin")
    assert default_name("image/tiff", now=now).endswith("-250.bin")


def test_default_name_uses_current_time() -> None:
    before = time.time()
    name = default_name("image/png")
    assert re.fullmatch(r"image-\d{8}-\d{6}-\d{3}\.png", name)
    assert name[6:21] in {_stamp(before), _stamp(before + 1), _stamp(time.time())}


def test_save_options_defaults_and_conversion() -> None:
    options = SaveOptions()
    assert options.out_dir == DEFAULT_OUT_DIR
    assert options.output is None
    assert options.filename is None
    assert not options.overwrite
    converted = SaveOptions(out_dir="x/y", output="z.png")
    assert converted.out_dir == Path("x/y")
    assert converted.output == Path("z.png")


# --- the filesystem saver -----------------------------------------------------------------


def _final(data: bytes, sample: int = 0) -> ImageFinal:
    return ImageFinal(ImageData.from_bytes(data), sample=sample)


def test_save_image_to_explicit_output_numbers_later_images(tmp_path: Path) -> None:
    options = SaveOptions(output=tmp_path / "out.jpg")
    saved = [save_image(_final(PNG, sample=i), options, index=i) for i in range(3)]
    assert [s.path.name for s in saved] == ["out.png", "out-1.png", "out-2.png"]
    first = saved[0]
    assert first.mime_type == "image/png"
    assert first.bytes == len(PNG)
    assert first.sha256 == hashlib.sha256(PNG).hexdigest()
    assert (first.width, first.height) == (6, 4)
    assert [s.sample for s in saved] == [0, 1, 2]
    assert all(s.path.read_bytes() == PNG for s in saved)


def test_save_image_with_filename_inside_out_dir(tmp_path: Path) -> None:
    options = SaveOptions(out_dir=tmp_path / "imgs", filename="cat.png")
    first = save_image(_final(JPEG), options, index=0)
    second = save_image(_final(JPEG), options, index=1)
    assert first.path == tmp_path / "imgs" / "cat.jpg"
    assert second.path == tmp_path / "imgs" / "cat-1.jpg"
    assert (first.width, first.height, first.mime_type) == (7, 5, "image/jpeg")


def test_save_image_does_not_overwrite_unless_asked(tmp_path: Path) -> None:
    (tmp_path / "cat.png").write_bytes(b"old")
    kept = save_image(_final(PNG), SaveOptions(out_dir=tmp_path, filename="cat.png"))
    assert kept.path == tmp_path / "cat-1.png"
    assert (tmp_path / "cat.png").read_bytes() == b"old"
    replaced = save_image(
        _final(PNG), SaveOptions(out_dir=tmp_path, filename="cat.png", overwrite=True)
    )
    assert replaced.path == tmp_path / "cat.png"
    assert (tmp_path / "cat.png").read_bytes() == PNG


def test_save_image_default_names_in_out_dir(tmp_path: Path) -> None:
    options = SaveOptions(out_dir=tmp_path)
    saved = [save_image(_final(PNG), options, index=i) for i in range(3)]
    names = [s.path.name for s in saved]
    assert len(set(names)) == 3
    assert re.fullmatch(r"image-\d{8}-\d{6}-\d{3}\.png", names[0])
    assert re.fullmatch(r"image-\d{8}-\d{6}-\d{3}-1\.png", names[1])
    assert all(s.path.parent == tmp_path for s in saved)


def test_save_image_unknown_bytes_get_bin(tmp_path: Path) -> None:
    saved = save_image(_final(b"opaque payload"), SaveOptions(out_dir=tmp_path))
    assert saved.path.suffix == ".bin"
    assert saved.mime_type is None
    assert (saved.width, saved.height) == (None, None)


@pytest.mark.parametrize("filename", ["../escape.png", "/abs.png", "a/../../b.png"])
def test_save_image_refuses_escaping_filename(tmp_path: Path, filename: str) -> None:
    out_dir = tmp_path / "out"
    with pytest.raises(UnsafePathError):
        save_image(_final(PNG), SaveOptions(out_dir=out_dir, filename=filename))
    assert _names(tmp_path) == []


def test_save_image_dot_filename_stays_inside(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    try:
        saved = save_image(_final(PNG), SaveOptions(out_dir=out_dir, filename="."))
    except UnsafePathError:
        return
    assert saved.path.parent == out_dir, f"written to {saved.path}"


def _context() -> RunContext:
    async def no_generate() -> Any:
        raise AssertionError("not used")

    return RunContext(
        ImageRequest("p"),
        ScriptedProvider(),
        decoders=lambda *a, **k: None,  # type: ignore[arg-type]
        http=lambda: None,  # type: ignore[arg-type, return-value]
        generate=no_generate,
    )


async def test_filesystem_saver_numbers_images_of_one_run(tmp_path: Path) -> None:
    saver = FilesystemSaver()
    context = _context()
    options = SaveOptions(output=tmp_path / "run.png")
    first = await saver.save(_final(PNG), options, context)
    second = await saver.save(_final(PNG, sample=1), options, context)
    assert (first.path.name, second.path.name) == ("run.png", "run-1.png")
    assert context.state["imagestream.saved"] == 2
    other_run = await saver.save(_final(PNG), SaveOptions(output=tmp_path / "b.png"), _context())
    assert other_run.path.name == "b.png"


async def test_filesystem_saver_raises_save_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(SaveError):
        await FilesystemSaver().save(_final(PNG), SaveOptions(out_dir=blocker / "d"), _context())


def test_directory_fsyncs_are_shared_and_each_covers_its_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writers at the same time share directory fsyncs, and none returns before one covered it."""
    from imagestream import _saving

    durable: set[str] = set()
    calls = 0
    lock = threading.Lock()

    def slow_fsync(directory: Path) -> None:
        nonlocal calls
        present = set(os.listdir(directory))  # what this fsync makes durable
        time.sleep(0.02)
        with lock:
            calls += 1
            durable.update(present)

    monkeypatch.setattr(_saving, "_fsync_directory", slow_fsync)
    uncovered: list[str] = []

    def work(number: int) -> None:
        written = write_atomic(tmp_path / f"image-{number}.png", make_png(2, 2))
        with lock:
            if written.name not in durable:
                uncovered.append(written.name)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)
    assert uncovered == []
    assert len(os.listdir(tmp_path)) == 24
    assert calls < 24
