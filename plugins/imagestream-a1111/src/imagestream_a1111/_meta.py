"""What the ``a1111`` provider says about itself, for listing it without importing it.

The entry module registers a :class:`~imagestream.provider.LazyProvider`
with these values, and :class:`~imagestream_a1111.A1111Provider` sets its
attributes from them, so the two cannot disagree. Its models are the
server's checkpoints, from :func:`._server.server_models`; the option table
stays with the code that reads it (``OPTIONS`` in :mod:`._provider`),
imported when asked for.
"""

from __future__ import annotations

from typing import Final

NAME: Final = "a1111"

DESCRIPTION: Final = (
    "AUTOMATIC1111 web UI or Forge (--api) on your machine: previews polled while it works"
)

MAX_CONCURRENCY: Final = 1
"""The server runs one job at a time, and its progress is the running job's:
runs against one server (and one login) take turns."""
