"""How a command reads ``-o KEY VALUE`` provider options."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

__all__ = ["option_value", "provider_options"]


def option_value(raw: str) -> Any:
    """One ``-o KEY VALUE`` value: a JSON literal (number, true/false, null, list), else the text."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def provider_options(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Every ``-o KEY VALUE`` of a command line, read as :func:`option_value` reads one.

    Plugin commands call this so that ``-o`` means the same everywhere.
    """
    return {name: option_value(value) for name, value in pairs}
