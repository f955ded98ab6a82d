"""The plugin module the ``imagestream`` entry point names: registers the ``sse`` decoder.

It stays light on purpose: the plugin manager imports it at start-up, and the
decoder (which needs nothing beyond the standard library and attrs) is
imported when the first one is made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from imagestream import hookimpl
from imagestream.errors import ConfigurationError

if TYPE_CHECKING:
    from ._decoder import SSEDecoder

__all__ = ["make_decoder", "register_decoders"]

OPTIONS = (
    "data_sink",
    "data_sink_min_bytes",
    "last_event_id",
    "max_buffer_bytes",
    "max_event_bytes",
    "max_line_bytes",
    "strict_eof",
)
"""The keyword arguments :class:`SSEDecoder` accepts."""


def make_decoder(**options: Any) -> SSEDecoder:
    """Make a fresh :class:`SSEDecoder`: the factory behind ``get_decoder("sse", ...)``.

    Options come from users through :func:`imagestream.get_decoder`, so a
    misspelt one is a configuration mistake to name, not a ``TypeError``.

    Raises:
        ConfigurationError: An option the decoder does not know, or a bad value.
    """
    unknown = sorted(set(options).difference(OPTIONS))
    if unknown:
        raise ConfigurationError(
            f"the sse decoder has no option {', '.join(map(repr, unknown))}",
            hint=f"its options are {', '.join(OPTIONS)}",
        )
    from ._decoder import SSEDecoder  # on the first stream, not when plugins load

    return SSEDecoder(**options)


@hookimpl
def register_decoders(register: Callable[[str, Callable[..., SSEDecoder]], None]) -> None:
    """Register the ``sse`` decoder; ``get_decoder("sse", **options)`` calls :func:`make_decoder`."""
    register("sse", make_decoder)
