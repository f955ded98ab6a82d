"""The ``imagestream`` command line.

:func:`run` is the ``imagestream`` console script (and ``python -m
imagestream``); :data:`main` is its click group, for tests and for
embedding. Plugins that add commands use :func:`provider_options`,
:func:`reported_errors` and :func:`stdin_is_terminal` from here.

The package imports nothing until a name is read: ``imagestream providers``
and ``imagestream plugins``, run as they are typed most (no other argument
than ``--json``), print their listing without click, which costs as much to
import as the listing itself (see :mod:`._listing`). Everything else goes
through the group.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._errors import reported_errors
    from ._group import DEFAULT_COMMAND, main, stdin_is_terminal
    from ._options import provider_options

__all__ = [
    "DEFAULT_COMMAND",
    "main",
    "provider_options",
    "reported_errors",
    "run",
    "stdin_is_terminal",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "DEFAULT_COMMAND": "._group",
        "main": "._group",
        "stdin_is_terminal": "._group",
        "provider_options": "._options",
        "reported_errors": "._errors",
    },
    __all__,
)


def run() -> None:
    """The ``imagestream`` console script: a listing command directly, anything else through click."""
    try:
        from ._listing import run_listing

        code = run_listing(sys.argv[1:])
        if code is None:
            from ._group import main

            main()
            return
    except KeyboardInterrupt:
        # Ctrl-C while the command line is still being imported: one line, as
        # once it runs (its commands report interruptions themselves).
        sys.stderr.write("error: interrupted\n")
        code = 130
    sys.exit(code)
