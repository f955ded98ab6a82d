"""Hook specifications: everything a plugin can implement.

A plugin is a module (or an object) whose functions are marked with
``@imagestream.hookimpl`` and named after the hooks below. imagestream finds
plugins through the ``imagestream`` entry point group; see
:doc:`/writing-a-plugin`.

The life of one generation, and the hook that runs at each stage::

    start-up        register_providers   register_decoders     (once, lazily)
                    register_commands    (only in the command line)
                          |
    request         on_request           (middleware, may refuse or rewrite)
                          |
    stream          stream  ──(None)──>  generate  ──> fake streaming
                          |
    every chunk     on_chunk             (middleware, may observe or replace)
                          |
    every final     postprocess          (each plugin in turn)
                          |
    saving          save                 (first plugin that saves wins)
                          |
    the end         on_result            or, on failure,  on_error

**Sync and async.** pluggy calls hook implementations synchronously and has no
notion of coroutines. imagestream drives pluggy only to find and order the
implementations, then runs the pipeline in its own ``asyncio`` code: any hook
implementation may be written ``async def`` (or return an awaitable) and the
core awaits it. The exceptions are the ``firstresult`` hooks ``stream``,
``generate`` and ``save``, where *declining* must be decided synchronously:
return ``None`` to decline, or return the work (an async iterator, a
coroutine) to accept. An ``async def`` implementation always accepts, because
calling it returns a coroutine that is not ``None``.

**Order.** Implementations run in pluggy's order: the most recently
registered first, ``tryfirst=True`` before and ``trylast=True`` after the rest.
Built-in plugins are registered before third-party ones, so an installed
plugin overrides a built-in by default.

**Errors.** An exception raised by a hook implementation propagates to the
caller of :func:`imagestream.stream` (after ``on_error`` has seen it). Raise a
subclass of :class:`imagestream.ImagestreamError` for failures a user can act on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from ._chunks import Chunk, ImageFinal
    from ._context import RunContext
    from ._decoding import DecoderFactory
    from ._provider import Provider, ProviderResponse
    from ._request import ImageRequest
    from ._result import GenerationResult, SavedImage
    from ._saving import SaveOptions

__all__ = ["hookimpl", "hookspec"]

PROJECT = "imagestream"

hookspec = pluggy.HookspecMarker(PROJECT)
"""Marker for the specifications below (only the core uses it)."""

hookimpl = pluggy.HookimplMarker(PROJECT)
"""Marker for hook implementations: ``@imagestream.hookimpl``.

Accepts pluggy's keywords: ``tryfirst``, ``trylast``, ``wrapper``,
``specname``.
"""


# --------------------------------------------------------------------------
# Registration (called once, lazily, the first time a provider or decoder is
# looked up)
# --------------------------------------------------------------------------


@hookspec
def register_providers(register: Callable[[Provider], None]) -> None:
    """Register image providers.

    Call ``register(provider)`` once for each :class:`imagestream.Provider`
    instance the plugin offers. Keep this cheap: construct the provider, but
    import heavy libraries (HTTP clients, image codecs) inside its methods, so
    that ``imagestream --help`` and ``imagestream plugins`` stay fast.

    **Combining:** every plugin's implementation is called, each on its own,
    built-ins first; the return value is ignored. ``register`` checks the
    provider's ``name`` (lower case letters, digits, ``-``, ``_`` and ``.``)
    and raises :class:`imagestream.PluginError` when another plugin already
    registered the same name, naming both plugins. An implementation that
    raises is reported as that plugin's failure (``imagestream plugins``; an
    error with ``IMAGESTREAM_STRICT_PLUGINS=1``), and the other plugins'
    providers stay available.

    Args:
        register: The callback that records a provider.
    """


@hookspec
def register_decoders(register: Callable[[str, DecoderFactory], None]) -> None:
    """Register stream decoders by name (``"sse"``, ``"msgpack"``, ...).

    Call ``register(name, factory)``. ``factory(**options)`` must return a
    fresh decoder object with two methods:

    ``feed(data: bytes) -> list[Event]``
        Take the next bytes from the network, in whatever pieces they came,
        and return the events that became complete (possibly none).
        The same events must come out whatever the chunk boundaries are.
    ``close() -> list[Event]``
        Signal the end of the stream. Return what the end completes, or
        raise :class:`imagestream.StreamTruncatedError` when the stream ended
        inside an event or frame.

    Malformed input raises :class:`imagestream.StreamDecodeError` (with the
    byte offset); input over a configured size limit raises
    :class:`imagestream.DecoderLimitError`, which names the keyword argument
    that raises the limit. A decoder must never buffer without bound.

    Users get decoders with :func:`imagestream.get_decoder`, which passes
    its keyword arguments to the factory.

    **Combining:** every plugin's implementation is called, each on its own,
    built-ins first; the return value is ignored. ``register`` raises
    :class:`imagestream.PluginError` for an invalid name, a factory that is
    not callable, or a name another plugin already registered (naming both
    plugins). A failing implementation is reported as that plugin's failure
    and the other plugins' decoders stay available.

    Args:
        register: The callback that records a decoder factory under a name.
    """


@hookspec
def register_commands(register: Callable[[click.Command], None]) -> None:
    """Add subcommands to the ``imagestream`` command line.

    Call ``register(command)`` with a :class:`click.Command` (or a
    ``click.Group``); its ``name`` is the subcommand's name
    (``imagestream NAME``). Build the command cheaply and import what it
    runs inside its callback: this hook runs whenever the command line lists
    or looks up a command that is not one of the core's, ``--help`` included.

    ::

        @imagestream.hookimpl
        def register_commands(register):
            @click.command(help="Replay a recorded stream.")
            @click.argument("path")
            def replay(path):
                from ._replay import main
                main(path)

            register(replay)

    **Combining:** every plugin's implementation is called, each on its own,
    built-ins first; the return value is ignored. ``register`` raises
    :class:`imagestream.PluginError` when the object is not a click command,
    when its name is not lower-case letters, digits, ``-`` and ``_``, when it
    is the name of a core command (``generate``, ``providers``,
    ``plugins``), or when another plugin already registered it (naming both
    plugins). A failing implementation is reported as that plugin's failure
    and its commands are left out; the other plugins' commands stay.

    Args:
        register: The callback that records a command.
    """


# --------------------------------------------------------------------------
# Pipeline steps
# --------------------------------------------------------------------------


@hookspec(firstresult=True)
def stream(
    request: ImageRequest, provider: Provider, context: RunContext
) -> AsyncIterator[Chunk] | None:
    """Produce the chunk stream for one request.

    Return an async iterator of chunks to handle the request, or ``None`` to
    let the next implementation try (the first non-``None`` result wins).

    The built-in ``native`` plugin returns ``provider.stream(...)`` when the
    provider streams. If every implementation declines, the core calls the
    :func:`generate` hook and streams its response itself ("fake streaming":
    text first, then each final image, every chunk marked ``synthetic=True``,
    with no artificial delay).

    Implement this to wrap or replace how a provider streams, e.g. a cache
    that replays a stored stream. The iterator is closed (``aclose()``) when
    the consumer stops early, fails or is cancelled: release connections in
    ``finally`` blocks.

    Args:
        request: The request, after every ``on_request`` hook.
        provider: The provider chosen for the request.
        context: The run's context: decoders, HTTP session, per-run state.
    """


@hookspec(firstresult=True)
def generate(
    request: ImageRequest, provider: Provider, context: RunContext
) -> Awaitable[ProviderResponse] | ProviderResponse | None:
    """Generate without streaming: return the whole response at once.

    Called when no ``stream`` implementation accepted the request. Return a
    :class:`imagestream.ProviderResponse` (or an awaitable of one), or ``None``
    to decline. The built-in ``native`` plugin calls ``provider.generate``.

    Args:
        request: The request, after every ``on_request`` hook.
        provider: The provider chosen for the request.
        context: The run's context.
    """


@hookspec
def postprocess(
    image: ImageFinal, request: ImageRequest, context: RunContext
) -> Awaitable[ImageFinal | None] | ImageFinal | None:
    """Transform a final image before it reaches the caller and the saver.

    Implementations run one after another, in hook order; each receives the
    image the previous one returned. Return a new :class:`imagestream.ImageFinal`
    (chunks are frozen: use ``attrs.evolve``) or ``None`` to leave it as it is.
    May be ``async def``.

    Args:
        image: The final image so far.
        request: The request.
        context: The run's context.
    """


@hookspec(firstresult=True)
def save(
    image: ImageFinal, options: SaveOptions, context: RunContext
) -> Awaitable[SavedImage] | SavedImage | None:
    """Save one final image, when the caller asked for saving.

    The first implementation that returns a result wins; return ``None`` to
    decline. The built-in ``filesystem`` saver (``trylast``) writes
    atomically under ``options.out_dir`` and never overwrites silently.
    A failure must raise :class:`imagestream.SaveError`; the image stays in
    the result.

    Args:
        image: The final image, after ``postprocess``.
        options: Where and how to save (directory, explicit path, overwrite).
        context: The run's context.
    """


# --------------------------------------------------------------------------
# Middleware
# --------------------------------------------------------------------------


@hookspec
def on_request(request: ImageRequest, context: RunContext) -> ImageRequest | None:
    """See (and possibly rewrite or refuse) a request before anything is sent.

    Runs before any network call. Raise :class:`imagestream.ValidationError`
    to refuse the request; return a new :class:`imagestream.ImageRequest` to
    replace it (later implementations see the replacement), or ``None`` to
    leave it unchanged. The built-in ``validation`` plugin checks prompt rules
    here; the built-in ``analytics`` plugin starts its clock. May be
    ``async def``.

    Args:
        request: The request so far.
        context: The run's context (``context.state`` is per-run storage).
    """


@hookspec
def on_chunk(chunk: Chunk, context: RunContext) -> Chunk | None:
    """See every chunk, in order, before the caller does.

    Return a replacement chunk, or ``None`` to pass it on unchanged; raise to
    abort the stream. This runs on the hot path: keep it cheap, and never
    decode an image payload you do not need. Not awaited: must be a plain
    function.

    Args:
        chunk: The chunk.
        context: The run's context.
    """


@hookspec
def on_result(result: GenerationResult, context: RunContext) -> Awaitable[None] | None:
    """See the finished result of a successful run (after saving, if any).

    Middleware attaches what it measured here, e.g. ``result.analytics``.
    May be ``async def``. Return value ignored.

    Args:
        result: The result, which may be modified in place.
        context: The run's context.
    """


@hookspec
def on_error(error: BaseException, context: RunContext) -> Awaitable[None] | None:
    """See the exception that ended a run: a failure, or a cancellation.

    Called once per failed run, before the exception reaches the caller.
    Cannot suppress the error. May be ``async def``. Return value ignored.

    Args:
        error: The exception, :class:`asyncio.CancelledError` included.
        context: The run's context.
    """
