"""A package's names imported on first use: the module ``__getattr__`` every light package needs.

imagestream imports every installed plugin's entry module in every process
that loads plugins, and importing a submodule runs its package's
``__init__.py`` first. A package that exports its provider class, its
option table or its errors therefore names them in a table and imports each
only when it is first read; :func:`lazy_exports` makes the two module
functions that do it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    module: str,
    names: Mapping[str, str],
    listed: Iterable[str] = (),
    *,
    package: str | None = None,
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``module``, importing each of ``names`` when first read.

    ::

        __all__ = ["SolidProvider", "OPTIONS"]
        __getattr__, __dir__ = lazy_exports(
            __name__, {"SolidProvider": "._provider", "OPTIONS": "._options"}, __all__
        )

    Args:
        module: The module's ``__name__``; the value read is kept in it, so
            the import happens once.
        names: Exported name -> where it lives: a module (relative to
            ``package``, or absolute), or ``"module:attribute"`` for a name
            kept under another one there.
        listed: What ``dir()`` shows besides ``names`` (``__all__``, say).
        package: What relative modules are relative to (default: ``module``
            itself, right for a package's ``__init__``).
    """
    table = dict(names)
    anchor = package or module

    def __getattr__(name: str) -> Any:
        try:
            where = table[name]
        except KeyError:
            raise AttributeError(f"module {module!r} has no attribute {name!r}") from None
        source, _, attribute = where.partition(":")
        value = getattr(importlib.import_module(source, anchor), attribute or name)
        setattr(sys.modules[module], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*listed, *table})

    return __getattr__, __dir__
