"""Typed readers for provider options, with one policy for which error a bad value raises.

The policy, the same in every provider:

* :class:`~imagestream.ConfigurationError` when a value **cannot be read** as
  the setting it is for: an unknown option name (with "did you mean"), the
  wrong type, a word that is not one of the choices, a size that is not
  ``WIDTHxHEIGHT``.
* :class:`~imagestream.ValidationError` when a value **is read but refused**:
  a number out of its range, or a combination that the provider or the chosen
  model does not accept.

Every message starts with the provider's name. :class:`Options` reads
``request.options``; the ``read_*`` functions read any one value (a request
field such as ``request.n``) by the same rules.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any, TypeVar, overload

from ._request import parse_size
from .errors import ConfigurationError, ValidationError

__all__ = [
    "Options",
    "did_you_mean",
    "read_choice",
    "read_flag",
    "read_integer",
    "read_list",
    "read_mapping",
    "read_number",
    "read_size",
    "read_text",
]

T = TypeVar("T")

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def _unreadable(provider: str, message: str, hint: str | None = None) -> ConfigurationError:
    return ConfigurationError(f"{provider}: {message}", hint=hint)


def _refused(provider: str, message: str, hint: str | None = None) -> ValidationError:
    return ValidationError(f"{provider}: {message}", hint=hint)


def did_you_mean(name: str, known: Collection[str]) -> str | None:
    """The known name closest to a misspelt ``name``, if one is close enough."""
    import difflib  # only when something is misspelt: the registry imports this at start-up

    matches = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return matches[0] if matches else None


def read_integer(
    value: object, name: str, *, provider: str, low: int | None = None, high: int | None = None
) -> int:
    """A whole number in ``low..high`` (either bound may be open)."""
    # bool is an int subclass, and True is never a meaningful count.
    if isinstance(value, bool) or not isinstance(value, int):
        raise _unreadable(provider, f"{name} must be a whole number, not {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise _refused(provider, f"{name} must be {_bounds(low, high)}, not {value}")
    return value


def read_number(
    value: object,
    name: str,
    *,
    provider: str,
    low: float | None = None,
    high: float | None = None,
) -> float:
    """A finite number in ``low..high`` (integers are accepted)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _unreadable(provider, f"{name} must be a number, not {value!r}")
    result = float(value)
    if (
        not math.isfinite(result)
        or (low is not None and result < low)
        or (high is not None and result > high)
    ):
        raise _refused(provider, f"{name} must be {_bounds(low, high)}, not {value!r}")
    return result


def _bounds(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"between {low:g} and {high:g}"
    if low is not None:
        return f"at least {low:g}"
    if high is not None:
        return f"at most {high:g}"
    return "a finite number"


def read_flag(value: object, name: str, *, provider: str) -> bool:
    """``True`` or ``False``; also the words true/false, yes/no, on/off, 1/0."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise _unreadable(provider, f"{name} must be true or false, not {value!r}")


def read_text(
    value: object, name: str, *, provider: str, empty: bool = False, strip: bool = True
) -> str:
    """A string, stripped unless ``strip`` is false (prompts are sent as written); empty only when ``empty`` is true."""
    if not isinstance(value, str):
        raise _unreadable(provider, f"{name} must be text, not {type(value).__name__}")
    if not value.strip() and not empty:
        raise _unreadable(provider, f"{name} must not be empty")
    return value.strip() if strip else value


def read_list(value: object, name: str, *, provider: str) -> Sequence[Any]:
    """A list (or tuple) of anything; a string is not a list here."""
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
        raise _unreadable(provider, f"{name} must be a list, not {type(value).__name__}")
    return value


def read_choice(
    value: object, name: str, choices: Collection[str], *, provider: str, fold_case: bool = True
) -> str:
    """One of ``choices`` (case-insensitively unless ``fold_case`` is false); the error lists them."""
    listed = ", ".join(sorted(choices))
    if isinstance(value, str):
        word = value.strip()
        if word in choices:
            return word
        if fold_case:
            by_folded = {choice.lower(): choice for choice in choices}
            if word.lower() in by_folded:
                return by_folded[word.lower()]
        guess = did_you_mean(word, choices)
        hint = f"did you mean {guess!r}? " if guess else ""
        raise _unreadable(provider, f"unknown {name} {value!r}", hint=f"{hint}use one of: {listed}")
    raise _unreadable(provider, f"{name} must be one of {listed}, not {value!r}")


def read_size(value: object, name: str = "size", *, provider: str) -> tuple[int, int]:
    """``"1024x768"`` or ``(1024, 768)`` as ``(width, height)``; ``"auto"`` is not a size here."""
    if isinstance(value, tuple) and len(value) == 2 and all(type(v) is int for v in value):
        candidate: str | tuple[int, int] = (value[0], value[1])
    elif isinstance(value, str):
        candidate = value
    else:
        raise _unreadable(provider, f"{name} must be WIDTHxHEIGHT, not {value!r}")
    try:
        size = parse_size(candidate)
    except ConfigurationError as exc:
        raise _unreadable(provider, exc.message, hint=exc.hint) from None
    if size is None:
        raise _unreadable(provider, f"{name} must be WIDTHxHEIGHT, not {value!r}")
    return size


def read_mapping(
    value: object, name: str, *, provider: str, keys: Collection[str] | None = None
) -> Mapping[str, Any]:
    """An object with text keys (all among ``keys`` when given)."""
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise _unreadable(provider, f"{name} must be an object with text keys, not {value!r}")
    if keys is not None:
        unknown = sorted(key for key in value if key not in keys)
        if unknown:
            raise _unreadable(
                provider,
                f"unknown key(s) in {name}: {', '.join(unknown)}",
                hint=f"known: {', '.join(sorted(keys))}",
            )
    return value


class _Missing:
    def __repr__(self) -> str:
        return "<no default>"


_MISSING: Any = _Missing()


class Options:
    """A provider's ``request.options``, read by name with typed readers.

    Unknown names are refused when the object is made, so a typo is caught
    before any value is read::

        options = Options(request.options, provider="acme", known=OPTIONS)
        steps = options.integer("steps", 30, low=1, high=50)
        style = options.choice("style", ("vivid", "natural"))   # None when absent

    Args:
        options: The mapping to read (usually ``request.options``).
        provider: The provider's name, which starts every message.
        known: Every option name the provider accepts (a mapping of names to
            descriptions works too); ``None`` skips the check.

    Raises:
        ConfigurationError: An option name not in ``known``; the message
            suggests the closest known name and the hint lists them all.
    """

    def __init__(
        self, options: Mapping[str, Any], *, provider: str, known: Collection[str] | None = None
    ) -> None:
        self._options = options
        self.provider = provider
        if known is not None:
            unknown = sorted(str(name) for name in options if name not in known)
            if unknown:
                guesses = [g for g in (did_you_mean(name, known) for name in unknown) if g]
                plural = "s" if len(unknown) > 1 else ""
                message = f"unknown option{plural} {', '.join(repr(u) for u in unknown)}"
                if guesses:
                    message += f" (did you mean {', '.join(repr(g) for g in guesses)}?)"
                hint = f"known options: {', '.join(sorted(known))}" if known else "it takes none"
                raise _unreadable(provider, message, hint=hint)

    def __contains__(self, name: object) -> bool:
        return name in self._options

    def __iter__(self) -> Iterator[str]:
        return iter(self._options)

    def raw(self, name: str, default: Any = None) -> Any:
        """The value as given, unchecked."""
        return self._options.get(name, default)

    def _get(self, name: str, default: Any) -> Any:
        value = self._options.get(name)
        return default if value is None else value

    @overload
    def integer(
        self, name: str, *, low: int | None = ..., high: int | None = ...
    ) -> int | None: ...
    @overload
    def integer(
        self, name: str, default: int, *, low: int | None = ..., high: int | None = ...
    ) -> int: ...
    def integer(
        self, name: str, default: Any = None, *, low: int | None = None, high: int | None = None
    ) -> int | None:
        """A whole number option (see :func:`read_integer`); ``default`` when absent."""
        value = self._get(name, _MISSING)
        if value is _MISSING:
            return default  # type: ignore[no-any-return]
        return read_integer(value, name, provider=self.provider, low=low, high=high)

    @overload
    def number(
        self, name: str, *, low: float | None = ..., high: float | None = ...
    ) -> float | None: ...
    @overload
    def number(
        self, name: str, default: float, *, low: float | None = ..., high: float | None = ...
    ) -> float: ...
    def number(
        self,
        name: str,
        default: Any = None,
        *,
        low: float | None = None,
        high: float | None = None,
    ) -> float | None:
        """A number option (see :func:`read_number`); ``default`` when absent."""
        value = self._get(name, _MISSING)
        if value is _MISSING:
            return default  # type: ignore[no-any-return]
        return read_number(value, name, provider=self.provider, low=low, high=high)

    @overload
    def flag(self, name: str) -> bool | None: ...
    @overload
    def flag(self, name: str, default: bool) -> bool: ...
    def flag(self, name: str, default: Any = None) -> bool | None:
        """A true/false option (see :func:`read_flag`); ``default`` when absent."""
        value = self._get(name, _MISSING)
        if value is _MISSING:
            return default  # type: ignore[no-any-return]
        return read_flag(value, name, provider=self.provider)

    @overload
    def text(self, name: str) -> str | None: ...
    @overload
    def text(self, name: str, default: str) -> str: ...
    def text(self, name: str, default: Any = None) -> str | None:
        """A non-empty text option (see :func:`read_text`); ``default`` when absent."""
        value = self._get(name, _MISSING)
        if value is _MISSING:
            return default  # type: ignore[no-any-return]
        return read_text(value, name, provider=self.provider)

    def text_field(self, name: str, given: str | None) -> str | None:
        """A text request field that may also come as the option of its name (``-o NAME``).

        ``given`` (the request's field) when set, else the option. Both set,
        with different text, is a mistake worth naming rather than a silent choice.

        Raises:
            ConfigurationError: Both given, and they differ; or the option is not text.
        """
        option = self.text(name)
        if option is not None and given is not None and option != given:
            raise self.unreadable(
                f"{name} given both as a field and as an option, with different text",
                hint=f"give it once: as {name}= (--{name.replace('_', '-')}) or as -o {name}",
            )
        return given or option

    @overload
    def choice(self, name: str, choices: Collection[str]) -> str | None: ...
    @overload
    def choice(self, name: str, choices: Collection[str], default: str) -> str: ...
    def choice(self, name: str, choices: Collection[str], default: Any = None) -> str | None:
        """One of ``choices`` (see :func:`read_choice`); ``default`` when absent."""
        value = self._get(name, _MISSING)
        if value is _MISSING:
            return default  # type: ignore[no-any-return]
        return read_choice(value, name, choices, provider=self.provider)

    def size(self, name: str) -> tuple[int, int] | None:
        """A ``WIDTHxHEIGHT`` option (see :func:`read_size`); ``None`` when absent."""
        value = self._get(name, _MISSING)
        if value is _MISSING:
            return None
        return read_size(value, name, provider=self.provider)

    def mapping(
        self, name: str, *, keys: Collection[str] | None = None
    ) -> Mapping[str, Any] | None:
        """An object option (see :func:`read_mapping`); ``None`` when absent."""
        value = self._get(name, _MISSING)
        if value is _MISSING:
            return None
        return read_mapping(value, name, provider=self.provider, keys=keys)

    def items(self, name: str) -> Sequence[Any]:
        """A list option (see :func:`read_list`); empty when absent."""
        value = self._get(name, _MISSING)
        if value is _MISSING:
            return ()
        return read_list(value, name, provider=self.provider)

    def texts(self, name: str) -> Sequence[str] | None:
        """A list of strings (a single string is a list of one); ``None`` when absent."""
        value = self._get(name, _MISSING)
        if value is _MISSING:
            return None
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise _unreadable(self.provider, f"{name} must be a list of strings, not {value!r}")
        return tuple(read_text(item, name, provider=self.provider) for item in items)

    def refuse(self, message: str, hint: str | None = None) -> ValidationError:
        """A :class:`ValidationError` in this provider's voice, for the caller to raise."""
        return _refused(self.provider, message, hint)

    def unreadable(self, message: str, hint: str | None = None) -> ConfigurationError:
        """A :class:`ConfigurationError` in this provider's voice, for the caller to raise."""
        return _unreadable(self.provider, message, hint)

    def __repr__(self) -> str:
        return f"Options({self.provider!r}, {sorted(self._options)})"
