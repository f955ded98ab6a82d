"""The ZIP archive ``/ai/generate-image`` returns: one ``image_N.png`` per sample.

The archive comes from the network, so it is read as untrusted input: a
small archive can inflate to gigabytes (a "zip bomb"), and that must be an
error, not an exhausted machine. Three limits apply, all checked before or
while inflating, never after:

* the number of entries, read from the central directory before any entry
  is opened;
* the sizes the archive declares, per entry and in total, before inflating;
* the bytes actually produced, counted while each entry is inflated in
  bounded pieces, because declared sizes are written by whoever made the
  archive and may lie.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from typing import Final

import attrs

from imagestream import DecoderLimitError, StreamDecodeError

__all__ = [
    "DEFAULT_MAX_ARCHIVE_BYTES",
    "DEFAULT_MAX_ENTRIES",
    "DEFAULT_MAX_ENTRY_BYTES",
    "DEFAULT_MAX_TOTAL_BYTES",
    "ZipImage",
    "ZipLimits",
    "read_zip_images",
]

DEFAULT_MAX_ENTRIES: Final = 32
"""Entries accepted in one archive (a batch has at most 8 images)."""

DEFAULT_MAX_ENTRY_BYTES: Final = 64 * 2**20
"""Uncompressed bytes accepted for one entry (a 2048x1536 RGBA PNG is at most ~12 MiB)."""

DEFAULT_MAX_TOTAL_BYTES: Final = 256 * 2**20
"""Uncompressed bytes accepted for the whole archive."""

DEFAULT_MAX_ARCHIVE_BYTES: Final = 128 * 2**20
"""Compressed bytes read from the network for one archive."""

_PIECE: Final = 256 * 1024
_NAME: Final = re.compile(r"(?:^|/)image_(\d+)\.[A-Za-z0-9]+$")


@attrs.frozen
class ZipLimits:
    """Caps on one archive.

    Attributes:
        max_entries: Most entries (files and folders) in the archive.
        max_entry_bytes: Most uncompressed bytes in one entry.
        max_total_bytes: Most uncompressed bytes in all entries together.
        max_archive_bytes: Most bytes of the archive itself read from the network.
    """

    max_entries: int = DEFAULT_MAX_ENTRIES
    max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES
    max_archive_bytes: int = DEFAULT_MAX_ARCHIVE_BYTES


@attrs.frozen
class ZipImage:
    """One image from the archive.

    Attributes:
        sample: The sample index (``N`` of ``image_N.png``, else archive order).
        name: The entry's name in the archive.
        data: The entry's bytes.
    """

    sample: int
    name: str
    data: bytes = attrs.field(repr=lambda value: f"<{len(value)} bytes>")


def _inflate(archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int, budget: int) -> bytes:
    """One entry's bytes, read in bounded pieces and counted against both caps."""
    pieces = []
    size = 0
    with archive.open(info) as entry:
        while piece := entry.read(_PIECE):
            size += len(piece)
            if size > cap:
                raise DecoderLimitError("max_entry_bytes", cap, what=f"entry {info.filename!r} inflates further")
            if size > budget:
                raise DecoderLimitError("max_total_bytes", budget, what="the archive inflates further")
            pieces.append(piece)
    return b"".join(pieces)


def read_zip_images(body: bytes, limits: ZipLimits | None = None) -> list[ZipImage]:
    """The images in a ZIP body, ordered by sample.

    Raises:
        StreamDecodeError: The body is not a readable ZIP archive, or holds no file.
        DecoderLimitError: A limit was exceeded (declared or actual).
    """
    limits = limits or ZipLimits()
    try:
        archive = zipfile.ZipFile(io.BytesIO(body))
    except (zipfile.BadZipFile, zlib.error, ValueError, EOFError) as exc:
        start = body[:16].decode("utf-8", "replace")
        raise StreamDecodeError(
            f"the non-streaming response is not a ZIP archive ({exc}; it starts {start!r})"
        ) from None
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_entries:
            raise DecoderLimitError("max_entries", limits.max_entries, what=f"the archive lists {len(infos)} entries")
        files = [info for info in infos if not info.is_dir()]
        declared = 0
        for info in files:
            if info.file_size > limits.max_entry_bytes:
                raise DecoderLimitError(
                    "max_entry_bytes",
                    limits.max_entry_bytes,
                    what=f"entry {info.filename!r} declares {info.file_size} bytes",
                )
            declared += info.file_size
        if declared > limits.max_total_bytes:
            raise DecoderLimitError(
                "max_total_bytes", limits.max_total_bytes, what=f"the entries declare {declared} bytes"
            )
        if not files:
            raise StreamDecodeError("the ZIP archive holds no image")
        images = []
        used = 0
        taken: set[int] = set()
        for order, info in enumerate(files):
            try:
                data = _inflate(archive, info, limits.max_entry_bytes, limits.max_total_bytes - used)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
                # A corrupt entry, a size that lied (CRC mismatch), an
                # unsupported compression or an encrypted entry.
                raise StreamDecodeError(f"cannot read {info.filename!r} from the ZIP archive: {exc}") from None
            used += len(data)
            match = _NAME.search(info.filename)
            sample = int(match[1]) if match else order
            while sample in taken:  # two entries claiming one index keep their order
                sample += 1
            taken.add(sample)
            images.append(ZipImage(sample=sample, name=info.filename, data=data))
    return sorted(images, key=lambda image: image.sample)
