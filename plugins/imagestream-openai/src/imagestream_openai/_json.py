"""Event JSON: orjson when the ``fast`` extra is installed, the standard library otherwise.

OpenAI puts whole images inside JSON as base64, so one event of a streamed
generation is often 2 MB or more. :func:`loads_event` keeps a parser from
scanning those images at all; :func:`loads` and :func:`dumps` are the plain
parser and writer for everything else.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

__all__ = ["FAST_JSON", "dumps", "loads", "loads_body", "loads_event"]


def _optional(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:  # pragma: no cover - depends on the environment
        return None


_orjson = _optional("orjson")

FAST_JSON = _orjson is not None
"""True when orjson parses and writes JSON."""


def _json_loads(data: str | bytes) -> Any:
    return json.loads(data)


def _json_dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


loads: Callable[[str | bytes], Any] = _orjson.loads if _orjson is not None else _json_loads
"""Parse JSON text or UTF-8 bytes."""

dumps: Callable[[Any], bytes] = _orjson.dumps if _orjson is not None else _json_dumps
"""Serialise to compact UTF-8 JSON bytes."""


# Events at least this long may hold an image; smaller ones are parsed as they are.
_LARGE_EVENT = 16 * 1024
# String values at least this long are lifted out before parsing.
_LARGE_VALUE = 4 * 1024
# The fields OpenAI puts images in, as they appear in compact JSON.
_IMAGE_KEY = re.compile(r'"(?:b64_json|partial_image_b64|result)":"')
# A placeholder as written in the JSON text, and the string it parses to.
_PLACEHOLDER = "\\u0000imagestream-image-"
_SENTINEL = "\x00imagestream-image-"


def loads_event(data: str) -> Any:
    """Parse one event's JSON, lifting its multi-megabyte base64 strings out first.

    A JSON parser must scan every character of a string value for quotes and
    escapes and then copy it; for a 2 MB image that scan is most of the cost of
    the event. Base64 holds neither quotes nor backslashes, so each long value
    of an image field is cut out with one slice instead, a short placeholder is
    parsed in its place, and the slice is put back where the placeholder
    landed. Anything unexpected (an escape inside the value, a placeholder that
    cannot be found again) falls back to parsing the whole text, so the result
    is always exactly what :func:`loads` returns.

    A match of ``"result":"`` is always a real key: inside a JSON string every
    quote is escaped, so the pattern cannot occur within another value.
    """
    if len(data) < _LARGE_EVENT:
        return loads(data)
    # JSON must escape NUL, so a string that already looks like a placeholder
    # shows up as this exact text; then every placeholder found later might not
    # be ours. One C-speed search rules that out.
    if _PLACEHOLDER in data:
        return loads(data)
    parts: list[str] = []
    values: list[str] = []
    position = 0  # where the text not yet copied to parts starts
    cursor = 0
    while (match := _IMAGE_KEY.search(data, cursor)) is not None:
        start = match.end()
        end = data.find('"', start)
        if end < 0:
            return loads(data)
        if end - start >= _LARGE_VALUE:
            value = data[start:end]
            if "\\" in value:
                return loads(data)
            parts.append(data[position:start])
            parts.append(f"{_PLACEHOLDER}{len(values)}")
            values.append(value)
            position = end
        # The search resumes after the value, so it never scans an image.
        cursor = end + 1
    if not values:
        return loads(data)
    parts.append(data[position:])
    payload = loads("".join(parts))
    if _restore(payload, values) != len(values):
        return loads(data)
    return payload


def loads_body(body: bytes) -> Any:
    """:func:`loads_event` for a whole response body (a non-streamed image is as large)."""
    return loads_event(body.decode("utf-8"))


def _restore(node: Any, values: list[str]) -> int:
    """Put the lifted values back in place of their placeholders; return how many.

    Every placeholder in ``node`` is one of ours (``loads_event`` checked that
    the text held none before), so each is replaced by the value it indexes.
    """
    restored = 0
    if isinstance(node, dict):
        items: Any = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return 0
    for name, value in items:
        if isinstance(value, str):
            if value.startswith(_SENTINEL):
                node[name] = values[int(value[len(_SENTINEL) :])]
                restored += 1
        elif isinstance(value, (dict, list)):
            restored += _restore(value, values)
    return restored
