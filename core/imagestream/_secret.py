"""``Secret``: an API key that never prints.

A module of its own, apart from the request, so the key store and the
redaction it needs import no ``attrs`` class.
"""

from __future__ import annotations

__all__ = ["Secret"]


class Secret:
    """An API key. Its ``repr`` and ``str`` never show the value; call :meth:`get`.

    Deliberately not an ``attrs`` class, so ``attrs.asdict`` of a request keeps
    the ``Secret`` object (redacted) instead of exposing its field.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def __setattr__(self, name: str, value: object) -> None:
        if hasattr(self, "_value"):
            raise AttributeError("Secret is immutable")
        object.__setattr__(self, name, value)

    def __reduce__(self) -> tuple[object, ...]:
        return (Secret, (self._value,))

    def get(self) -> str:
        """The key itself, for an ``Authorization`` header and nothing else."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)
