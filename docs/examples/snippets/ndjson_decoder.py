"""A decoder plugin: newline-delimited JSON, one value per line."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from imagestream import DecoderLimitError, StreamDecodeError, StreamTruncatedError, hookimpl


class NDJSONDecoder:
    """Bytes in, one parsed JSON value per complete line out."""

    def __init__(self, *, max_line_bytes: int = 16 * 2**20) -> None:
        self.max_line_bytes = max_line_bytes
        self._pending = bytearray()  # the start of a line whose end has not come yet
        self._searched = 0  # bytes of _pending known to hold no newline
        self._offset = 0  # stream offset of _pending[0], for error messages

    def feed(self, data: bytes) -> list[Any]:
        self._pending += data
        values: list[Any] = []
        start = 0
        while (end := self._pending.find(b"\n", self._searched)) != -1:
            values.extend(self._parse(start, end))
            start = self._searched = end + 1
        del self._pending[:start]
        self._offset += start
        self._searched = len(self._pending)
        # Never buffer without bound: a line that does not end fails at the limit.
        if len(self._pending) > self.max_line_bytes:
            raise DecoderLimitError(
                "max_line_bytes", self.max_line_bytes, offset=self._offset, what="unfinished line"
            )
        return values

    def close(self) -> list[Any]:
        if self._pending.strip():
            raise StreamTruncatedError(
                "ndjson: the stream ended inside a line", offset=self._offset
            )
        return []

    def _parse(self, start: int, end: int) -> list[Any]:
        if end - start > self.max_line_bytes:
            raise DecoderLimitError(
                "max_line_bytes", self.max_line_bytes, offset=self._offset + start
            )
        line = bytes(self._pending[start:end]).strip()  # strip() also drops a CR before the LF
        if not line:
            return []
        try:
            return [json.loads(line)]
        except ValueError as exc:
            raise StreamDecodeError(
                f"ndjson: line is not JSON ({exc})", offset=self._offset + start
            ) from None


@hookimpl
def register_decoders(register: Callable[[str, Callable[..., NDJSONDecoder]], None]) -> None:
    """Offer the decoder as ``"ndjson"``: ``get_decoder("ndjson", max_line_bytes=...)``."""
    register("ndjson", NDJSONDecoder)
