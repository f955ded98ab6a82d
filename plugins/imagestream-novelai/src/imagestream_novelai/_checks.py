"""Small readers for option values: each checks one value and says what is wrong with it.

Two kinds of refusal, as in the rest of imagestream:
:class:`~imagestream.ConfigurationError` for a value that cannot be read (the
wrong type, an unknown name) and :class:`~imagestream.ValidationError` for a
readable value that cannot be used (out of range, a combination that does
not go together). Every message starts with ``novelai:``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from imagestream import ConfigurationError, ValidationError

__all__ = ["choice", "flag", "integer", "items", "mapping", "number", "refused", "text", "unreadable"]


def refused(message: str, hint: str | None = None) -> ValidationError:
    """A readable value the request cannot use."""
    return ValidationError(f"novelai: {message}", hint=hint)


def unreadable(message: str, hint: str | None = None) -> ConfigurationError:
    """A value that cannot be read as the setting it is for."""
    return ConfigurationError(f"novelai: {message}", hint=hint)


def number(value: object, name: str, low: float, high: float) -> float:
    """A finite number in ``low..high``."""
    # bool is an int: "scale": true is surely a mistake.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise unreadable(f"{name} must be a number, not {value!r}")
    result = float(value)
    if not math.isfinite(result) or not low <= result <= high:
        raise refused(f"{name} must be between {low:g} and {high:g}, not {value!r}")
    return result


def integer(value: object, name: str, low: int, high: int) -> int:
    """A whole number in ``low..high``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise unreadable(f"{name} must be a whole number, not {value!r}")
    if not low <= value <= high:
        raise refused(f"{name} must be between {low} and {high}, not {value}")
    return value


def flag(value: object, name: str) -> bool:
    """``True`` or ``False``, nothing truthy."""
    if not isinstance(value, bool):
        raise unreadable(f"{name} must be true or false, not {value!r}")
    return value


def text(value: object, name: str) -> str:
    """A string."""
    if not isinstance(value, str):
        raise unreadable(f"{name} must be text, not {type(value).__name__}")
    return value


def choice(value: object, name: str, choices: Sequence[str] | frozenset[str]) -> str:
    """One of ``choices``; the error lists them."""
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(sorted(choices))
        raise unreadable(f"unknown {name} {value!r}", hint=f"use one of: {listed}")
    return value


def mapping(value: object, name: str, keys: frozenset[str]) -> Mapping[str, Any]:
    """An object whose keys are all among ``keys``."""
    if not isinstance(value, Mapping):
        raise unreadable(f"{name} must be an object (a dict), not {type(value).__name__}")
    unknown = sorted(str(key) for key in value if key not in keys)
    if unknown:
        raise unreadable(f"unknown key(s) in {name}: {', '.join(unknown)}", hint=f"known: {', '.join(sorted(keys))}")
    return value


def items(value: object, name: str) -> Sequence[Any]:
    """A list (not a string)."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise unreadable(f"{name} must be a list")
    return value
