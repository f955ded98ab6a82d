"""The pipeline: one request through middleware, provider, postprocessing and saving.

:class:`Pipeline` is the engine behind :func:`imagestream.stream` (which uses
the global, entry-point-loaded plugins) and the object for people who compose
explicitly, with no global plugin state::

    pipe = Pipeline(MyProvider(), middleware=[Validation()], saver=True)
    result = await pipe.agenerate("a red circle")
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
import sys
import types
import warnings
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, TypeVar, cast

import attrs

from . import hookspecs
from ._chunks import Chunk, ImageFinal
from ._concurrency import concurrency_slot
from ._context import RunContext
from ._hookcall import BoundHooks
from ._http import HttpClient
from ._image import ImageData
from ._plugins import CORE_PLUGINS, PluginManager, get_plugin_manager, load_builtin
from ._pool import shared_http
from ._provider import Prepared, Provider, ProviderResponse
from ._registry import Registry
from ._request import ImageRequest
from ._result import GenerationResult
from ._saving import SaveOptions
from ._secret import Secret
from ._sniff import sniff_mime
from .errors import (
    APITimeoutError,
    ConfigurationError,
    ImagestreamError,
    ImageValidationError,
    InvalidRequestError,
    NoImageError,
    PluginError,
    SaveError,
    ValidationError,
)
from .hookspecs import hookimpl

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

    from ._decoding import Decoder, DecoderFactory
    from ._result import SavedImage

__all__ = ["ChunkStream", "Middleware", "Pipeline", "Postprocessor"]

T = TypeVar("T")

PostprocessResult: TypeAlias = "ImageFinal | ImageData | bytes | PILImage | None"
Postprocessor: TypeAlias = Callable[
    [ImageFinal, ImageRequest], "PostprocessResult | Awaitable[PostprocessResult]"
]
"""A postprocessor function: ``(image, request) -> result``, plain or ``async``.

What it returns replaces the final image:

* an :class:`ImageFinal`: used as it is;
* an :class:`ImageData`: the same final with this image (type and size
  read from it);
* ``bytes``: an encoded image (PNG, JPEG, WebP, GIF), wrapped the same way;
  bytes that are not an image raise :class:`ImageValidationError`;
* a Pillow image: encoded in the final's format when Pillow can write it
  there, else PNG (see :meth:`ImageData.from_pil`);
* ``None``: the image stays as it is.

Anything else raises ``TypeError`` naming the postprocessor. A plugin's
``postprocess`` hook may return the same.
"""

Saver = Callable[[ImageFinal, SaveOptions], "SavedImage | Awaitable[SavedImage]"]


class Middleware(Protocol):
    """The middleware hooks, with their signatures, for type checking.

    Middleware is a plugin object whose methods are named after the
    middleware hooks and marked with ``@imagestream.hookimpl``. Subclass this
    protocol to have a type checker check your signatures; override only the
    hooks you need, and mark each one::

        class Timing(imagestream.Middleware):
            @imagestream.hookimpl
            def on_request(self, request, context):
                context.state["timing"] = time.perf_counter()

            @imagestream.hookimpl
            def on_result(self, result, context):
                print(time.perf_counter() - context.state["timing"])

        pipe = imagestream.Pipeline(provider, middleware=[Timing()])

    The hooks you do not override are not registered (they do nothing), and
    a :class:`Pipeline` refuses a method named after a hook that lacks
    ``@imagestream.hookimpl``, which pluggy would silently skip. Any of them
    may be ``async def`` except :meth:`on_chunk`. See :mod:`imagestream.hookspecs`
    for when each runs.
    """

    def on_request(
        self, request: ImageRequest, context: RunContext
    ) -> ImageRequest | Awaitable[ImageRequest | None] | None:
        """Before anything is sent: return a replacement request, ``None``, or raise to refuse."""
        return None

    def on_chunk(self, chunk: Chunk, context: RunContext) -> Chunk | None:
        """Every chunk, before the caller sees it: return a replacement or ``None``."""
        return None

    def on_result(self, result: GenerationResult, context: RunContext) -> Awaitable[None] | None:
        """The finished result of a successful run (after saving)."""
        return None

    def on_error(self, error: BaseException, context: RunContext) -> Awaitable[None] | None:
        """The exception that ended a run (cancellation included)."""
        return None


HOOK_NAMES = frozenset(
    name
    for name, value in vars(hookspecs).items()
    if inspect.isfunction(value) and hasattr(value, f"{hookspecs.PROJECT}_spec")
)
_IMPL_MARK = f"{hookspecs.PROJECT}_impl"


async def await_me_maybe(value: T | Awaitable[T]) -> T:
    """``value``, awaited if it is awaitable: how async hook implementations are run."""
    if inspect.isawaitable(value):
        return await value
    return value


class _PostprocessAdapter:
    def __init__(self, func: Postprocessor) -> None:
        self.func = func

    @hookimpl
    async def postprocess(
        self, image: ImageFinal, request: ImageRequest, context: RunContext
    ) -> Any:
        return await await_me_maybe(self.func(image, request))

    def __repr__(self) -> str:
        return f"postprocessor {_callable_name(self.func)}"


class _SaverAdapter:
    def __init__(self, func: Saver) -> None:
        self.func = func

    @hookimpl
    async def save(
        self, image: ImageFinal, options: SaveOptions, context: RunContext
    ) -> SavedImage:
        return await await_me_maybe(self.func(image, options))


def _callable_name(func: object) -> str:
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    return str(name) if name else repr(func)


def _check_plugin(plugin: object, role: str) -> None:
    """Refuse a middleware or plugin object that pluggy would silently ignore (in part or whole)."""
    if isinstance(plugin, Provider):
        raise PluginError(
            f"{plugin!r} is a provider, not {role}",
            hint="pass it as Pipeline(provider) or stream(..., provider=...)",
        )
    unmarked = []
    for name in sorted(HOOK_NAMES):
        value = getattr(plugin, name, None)
        if value is None or not callable(value) or hasattr(value, _IMPL_MARK):
            continue
        if inspect.ismodule(plugin) and getattr(value, "__module__", None) != plugin.__name__:
            continue  # imported into the module (``from imagestream import stream``), not defined
        if getattr(type(plugin), name, None) is getattr(Middleware, name, object()):
            continue  # the protocol's do-nothing default, deliberately not a hook
        unmarked.append(name)
    if unmarked:
        what = ", ".join(f"{name}()" for name in unmarked)
        raise PluginError(
            f"{role} {_describe(plugin)} has {what} without @imagestream.hookimpl, "
            "so pluggy would never call " + ("it" if len(unmarked) == 1 else "them"),
            hint="add @imagestream.hookimpl above each hook method",
        )


def check_provider_argument(provider: object) -> None:
    """Refuse a ``provider=`` that is neither a name, a :class:`Provider` nor ``None``."""
    if provider is None or isinstance(provider, str | Provider):
        return
    if isinstance(provider, type) and issubclass(provider, Provider):
        raise TypeError(
            f"provider {provider.__name__} is a class: pass an instance, {provider.__name__}()"
        )
    raise TypeError(
        "provider must be a provider name, a Provider object or None, "
        f"not {type(provider).__name__}"
    )


def _describe(plugin: object) -> str:
    if inspect.ismodule(plugin):
        return f"module {plugin.__name__!r}"
    return f"{type(plugin).__name__!r}"


def _pil_image_type() -> type[Any] | None:
    # A Pillow image can only exist if Pillow was imported: never import it here.
    module = sys.modules.get("PIL.Image")
    image_type = getattr(module, "Image", None) if module is not None else None
    return image_type if isinstance(image_type, type) else None


def _encode_pil(value: PILImage, original: str | None) -> ImageData:
    # The original final's format when Pillow can write the image in it, else PNG.
    if original:
        try:
            return ImageData.from_pil(value, format=original)
        except ConfigurationError:
            pass  # e.g. an RGBA image where the original was a JPEG
    return ImageData.from_pil(value, format="png")


def _as_final(value: object, image: ImageFinal, source: str) -> ImageFinal:
    """What a postprocessor returned, as the final image it replaces ``image`` with."""
    if value is None:
        return image
    if isinstance(value, ImageFinal):
        return value
    if isinstance(value, ImageData):
        data = value
    elif isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        mime = sniff_mime(raw)
        if mime is None:
            raise ImageValidationError(
                f"{source} returned {len(raw)} bytes that are not an image (starting {raw[:8]!r})",
                hint="return encoded PNG, JPEG, WebP or GIF bytes, an ImageData or an ImageFinal",
            )
        data = ImageData.from_bytes(raw, mime)
    elif (pil_type := _pil_image_type()) is not None and isinstance(value, pil_type):
        data = _encode_pil(value, image.image.mime_type or image.mime_type)
    else:
        raise TypeError(
            f"{source} returned {type(value).__module__}.{type(value).__qualname__}; "
            "a postprocessor returns an ImageFinal, ImageData, image bytes, a PIL image, "
            "or None to keep the image"
        )
    size = data.size
    return attrs.evolve(
        image,
        image=data,
        mime_type=data.mime_type,
        width=size[0] if size else None,
        height=size[1] if size else None,
    )


_REQUEST_FIELDS = frozenset(a.name for a in attrs.fields(ImageRequest))
SWITCHES = ("cache", "log")
"""Per-run keywords that are neither request fields nor provider options (see ``RunContext.switches``)."""


def build_request(
    prompt: str | ImageRequest, defaults: Mapping[str, Any], params: Mapping[str, Any]
) -> ImageRequest:
    """An :class:`ImageRequest` from a prompt and keyword arguments.

    Keywords that are request fields set them; any other keyword becomes a
    provider option (``quality="high"`` is a field, ``stream="sse"`` an option).
    """
    merged = {**defaults, **params}
    if isinstance(prompt, ImageRequest):
        base = prompt
        fields = {k: v for k, v in merged.items() if k in _REQUEST_FIELDS}
        extra = {k: v for k, v in merged.items() if k not in _REQUEST_FIELDS}
        if extra:
            fields["options"] = {**base.options, **extra}
        return attrs.evolve(base, **fields) if fields else base
    fields = {k: v for k, v in merged.items() if k in _REQUEST_FIELDS}
    options = dict(fields.pop("options", None) or {})
    options.update({k: v for k, v in merged.items() if k not in _REQUEST_FIELDS})
    return ImageRequest(prompt=prompt, options=options, **fields)


class ChunkStream:
    """The async iterator :func:`imagestream.stream` returns.

    Use it as an async context manager around the loop, so that the run and
    its provider connection are closed when the block is left, however it is
    left (``break``, an exception, cancellation)::

        async with imagestream.stream("a red circle") as chunks:
            async for chunk in chunks:
                if isinstance(chunk, imagestream.ImagePreview):
                    break  # the connection is closed as the block exits

    A loop that runs to the end (or fails) closes the run by itself. Leaving
    a bare ``async for`` early does not: the run stays open, holding its
    connection, until :meth:`aclose` is awaited or the stream is
    garbage-collected. A stream collected in that state emits a
    ``ResourceWarning`` naming the fix, and asyncio closes the run on its
    event loop soon after (if that loop is still running).
    :attr:`result` accumulates what was seen so far: every text delta, final
    image and usage, and the latest preview (each preview was yielded to the
    loop, which keeps the ones it wants; :attr:`GenerationResult.preview_count`
    counts them).
    """

    def __init__(self, agen: AsyncIterator[Chunk], result: GenerationResult) -> None:
        self._agen = agen
        self.result = result
        # The loop of the first __anext__ (None: never started), and whether
        # the run is over (exhausted, failed or closed): what __del__ checks.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._over = False

    def __aiter__(self) -> ChunkStream:
        return self

    async def __anext__(self) -> Chunk:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        try:
            return await self._agen.__anext__()
        except BaseException:
            # StopAsyncIteration, an error or a cancellation: an async
            # generator that raised is finished.
            self._over = True
            raise

    async def aclose(self) -> None:
        """Stop the run and close its connections."""
        self._over = True
        aclose = getattr(self._agen, "aclose", None)
        if aclose is not None:
            await aclose()

    async def __aenter__(self) -> ChunkStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __del__(self) -> None:
        # Only a run that was started and then abandoned still holds a connection.
        loop = getattr(self, "_loop", None)
        if loop is None or getattr(self, "_over", True):
            return
        warnings.warn(
            "an imagestream ChunkStream was dropped while its run was still open "
            "(a loop left early without closing it), which keeps the provider "
            "connection open until the event loop gets to close it: use "
            "'async with imagestream.stream(...) as chunks: async for chunk in chunks: ...' "
            "or 'await chunks.aclose()'",
            ResourceWarning,
            source=self,
            stacklevel=2,
        )
        agen = self._agen
        if inspect.isasyncgen(agen):
            # asyncio's async-generator hooks close it: the generator is
            # collected with this object and its finaliser schedules aclose()
            # on its loop.
            return
        aclose = getattr(agen, "aclose", None)
        if aclose is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(_close_later, loop, aclose)


_CLOSING: set[asyncio.Task[None]] = set()
"""Tasks closing abandoned chunk iterators (the loop keeps only weak references to tasks)."""


def _close_later(loop: asyncio.AbstractEventLoop, aclose: Callable[[], Awaitable[Any]]) -> None:
    # A task that closes an abandoned (non-generator) chunk iterator.
    task = loop.create_task(_shielded(aclose()))
    _CLOSING.add(task)
    task.add_done_callback(_CLOSING.discard)


class Pipeline:
    """A provider composed with middleware, postprocessors and a saver.

    Args:
        provider: A :class:`Provider` object, or a provider name looked up among
            installed plugins (``None``: the default provider).
        middleware: Plugin objects implementing middleware hooks
            (``on_request``, ``on_chunk``, ``on_result``, ``on_error``), e.g.
            ``imagestream.Validation()`` and ``imagestream.AnalyticsMiddleware()``;
            see :class:`Middleware`. Each hook method must be marked with
            ``@imagestream.hookimpl``: an object with an unmarked method named
            after a hook, or with no hook at all, raises :class:`PluginError`
            here instead of being silently ignored.
        postprocessors: Functions ``(image, request)`` (may be async), applied
            to each final image in order; see :data:`Postprocessor` for what
            they may return.
        saver: ``True`` for the built-in file-system saver, a function
            ``(image, options) -> SavedImage`` (may be async), or ``None``.
            With a saver, runs save every final image (``SaveOptions()``:
            the current directory) unless a run passes ``save=False``, or
            ``save=SaveOptions(...)`` to save elsewhere.
        plugins: Any other plugin objects to register in this pipeline
            (checked like ``middleware``).
        decoders: Decoder factories by name; names not given here are looked
            up among installed plugins.
        manager: Use this plugin manager, and only its plugins, instead of a
            private one (how the global API shares the installed plugins);
            cannot be combined with ``middleware``, ``postprocessors``,
            ``saver`` or ``plugins``.
        http: An HTTP client for every run. By default each run uses the
            running event loop's pooled client (the one
            :func:`imagestream.stream` uses), closed when the loop shuts
            down; ``async with pipeline:`` gives the pipeline a client of its
            own instead, closed on exit.
        defaults: Default request fields and options (``model=``, ``size=``, ...),
            kept in :attr:`defaults`; an ``api_key=`` is kept as a :class:`Secret`,
            which never prints.

    Raises:
        PluginError: A middleware or plugin object that would be ignored.
        TypeError: ``provider`` is neither a name nor a :class:`Provider`, or
            ``manager`` comes with plugins of this pipeline's own.
    """

    def __init__(
        self,
        provider: Provider | str | None = None,
        *,
        middleware: Iterable[object] = (),
        postprocessors: Iterable[Postprocessor] = (),
        saver: Saver | bool | None = None,
        plugins: Iterable[object] = (),
        decoders: Mapping[str, DecoderFactory] | None = None,
        manager: PluginManager | None = None,
        http: HttpClient | None = None,
        **defaults: Any,
    ) -> None:
        check_provider_argument(provider)
        middleware, plugins, postprocessors = list(middleware), list(plugins), list(postprocessors)
        self._provider = provider
        self._decoders = dict(decoders or {})
        self._http = http
        self._owns_http = False
        # "save", "cache" and "log" are per-run switches, not request fields.
        self._save_default = defaults.pop("save", None)
        if self._save_default is None and (saver is True or callable(saver)):
            self._save_default = True  # a pipeline given a saver saves
        self._switch_defaults = {name: defaults.pop(name) for name in SWITCHES if name in defaults}
        if isinstance(defaults.get("api_key"), str) and defaults["api_key"]:
            # Kept as a Secret, so no repr of the pipeline, its defaults or a
            # request ever shows the key.
            defaults["api_key"] = Secret(defaults["api_key"])
        self.defaults = defaults
        if manager is not None:
            if middleware or plugins or postprocessors or saver not in (None, False):
                raise TypeError(
                    "Pipeline(manager=...) runs that manager's plugins as they are: register "
                    "middleware, postprocessors, a saver and plugins in it, or drop manager="
                )
        else:
            manager = PluginManager(strict=True)
            manager.add_builtins(CORE_PLUGINS)
            # pluggy calls the most recently registered plugin first: register
            # in reverse so hooks run in the order the lists give.
            ordered = [(m, "middleware") for m in middleware] + [(p, "plugin") for p in plugins]
            for plugin, role in ordered:
                _check_plugin(plugin, role)
            for number, (plugin, role) in reversed(list(enumerate(ordered))):
                manager.add_plugin(plugin, f"{type(plugin).__name__}-{number}")
                if not manager.get_hookcallers(plugin):
                    manager.unregister(plugin)
                    raise PluginError(
                        f"{role} {_describe(plugin)} implements no imagestream hook",
                        hint="name its methods after hooks (on_request, on_chunk, on_result, "
                        "on_error, postprocess, save, ...) and mark them with @imagestream.hookimpl",
                    )
            for number, func in reversed(list(enumerate(postprocessors))):
                if not callable(func):
                    raise TypeError(f"postprocessor {func!r} is not callable")
                manager.add_plugin(_PostprocessAdapter(func), f"postprocess-{number}")
            if saver is True:
                manager.add_plugin(load_builtin("filesystem"), "filesystem", builtin=True)
            elif callable(saver):
                manager.add_plugin(_SaverAdapter(saver), "saver")
            elif saver not in (None, False):
                raise TypeError(f"saver must be True, a function or None, not {saver!r}")
        self.manager = manager
        self._calls = BoundHooks(manager.hook)

    # -- resources ---------------------------------------------------------

    async def __aenter__(self) -> Pipeline:
        """Give this pipeline an HTTP client of its own until exit (by default runs share the loop's pooled one)."""
        if self._http is None:
            self._http = HttpClient()
            self._owns_http = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._owns_http and self._http is not None:
            await self._http.close()
            self._http = None
            self._owns_http = False

    def provider(self, name: str | Provider | None = None) -> Provider:
        """The provider for a request naming ``name`` (a :class:`Provider` is returned as it is)."""
        check_provider_argument(name)
        if isinstance(name, Provider):
            return name
        if isinstance(self._provider, Provider) and name in (None, self._provider.name):
            return self._provider
        wanted = name or (self._provider if isinstance(self._provider, str) else None)
        return self._lookup_registry().provider(wanted)

    def _lookup_registry(self) -> Registry:
        own = self.manager.registry
        if own.providers:
            return own
        return get_plugin_manager().registry

    def _decoder(self, name: str, **options: Any) -> Decoder[Any]:
        if name in self._decoders:
            return self._decoders[name](**options)
        if self.manager.registry.has_decoder(name):
            return self.manager.registry.decoder(name, **options)
        return get_plugin_manager().registry.decoder(name, **options)

    # -- running -----------------------------------------------------------

    def stream(self, prompt: str | ImageRequest, **params: Any) -> ChunkStream:
        """Start a run and return its chunks as an async iterator.

        Keyword arguments are request fields (``model``, ``size``, ``n``,
        ``steps``, ``seed``, ``partial_images``, ``api_key``, ``base_url``,
        ``deadline``, ...) or provider options; ``provider=`` is a name or a
        :class:`Provider` object. Pass ``save=True`` or a :class:`SaveOptions`
        to save each final image as it arrives (``save=False`` not to, when
        the pipeline has a saver). The stream's :attr:`~ChunkStream.result`
        keeps the latest preview only (see :attr:`GenerationResult.previews`).
        """
        return self._start(prompt, params, keep_previews=False)

    def _start(
        self, prompt: str | ImageRequest, params: dict[str, Any], *, keep_previews: bool
    ) -> ChunkStream:
        save = params.pop("save", self._save_default)
        if save is not None and not isinstance(save, bool | SaveOptions):
            raise TypeError(f"save must be True, False or a SaveOptions, not {save!r}")
        save_options = SaveOptions() if save is True else save or None
        switches = {**self._switch_defaults}
        switches.update({name: params.pop(name) for name in SWITCHES if name in params})
        chosen = params.pop("provider", None)
        check_provider_argument(chosen)
        if isinstance(prompt, ImageRequest):
            request = build_request(prompt, self.defaults, params)
            provider = self.provider(request.provider if chosen is None else chosen)
            if request.provider != provider.name:
                request = attrs.evolve(request, provider=provider.name)
        else:  # the provider first: the request is made naming it, not made twice
            provider = self.provider(chosen)
            request = build_request(prompt, self.defaults, {**params, "provider": provider.name})
        result = GenerationResult(
            provider=provider.name, model=request.model or provider.default_model
        )
        run = self._run(request, provider, result, save_options, switches, keep_previews)
        return ChunkStream(run, result)

    async def agenerate(self, prompt: str | ImageRequest, **params: Any) -> GenerationResult:
        """Run to the end and return the :class:`GenerationResult` (every preview in it)."""
        chunks = self._start(prompt, params, keep_previews=True)
        async with chunks:
            async for _ in chunks:
                pass
        return chunks.result

    def generate(self, prompt: str | ImageRequest, **params: Any) -> GenerationResult:
        """:meth:`agenerate`, for code that is not async (runs its own event loop)."""
        return run_sync(lambda: self.agenerate(prompt, **params))

    async def _run(
        self,
        request: ImageRequest,
        provider: Provider,
        result: GenerationResult,
        save_options: SaveOptions | None,
        switches: Mapping[str, Any],
        keep_previews: bool,
    ) -> AsyncIterator[Chunk]:
        hook = self.manager.hook

        def http() -> HttpClient:
            return self._http if self._http is not None else shared_http()

        async def generate_hook() -> ProviderResponse:
            response = hook.generate(request=context.request, provider=provider, context=context)
            if response is None:
                raise PluginError(
                    f"provider {provider.name!r} implements neither stream nor generate"
                )
            return await await_me_maybe(response)

        context = RunContext(
            request,
            provider,
            decoders=self._decoder,
            http=http,
            generate=generate_hook,
            switches=switches,
        )
        chunk_hooks = [call for _, call in self._calls("on_chunk")]
        post_hooks = self._calls("postprocess")
        deadline = _Deadline(request.deadline, provider.name) if request.deadline else None
        source: AsyncIterator[Chunk] | None = None
        bounded: AsyncGenerator[Chunk, None] | None = None
        held: contextlib.AsyncExitStack | None = None  # the concurrency slot, if one is taken
        try:
            # With a deadline, each stretch of waiting runs in its scope; the
            # yields (where the consumer's code runs) stay outside it.
            async with deadline.scope() if deadline else _NO_DEADLINE:
                for _, on_request in self._calls("on_request"):
                    replaced = await await_me_maybe(
                        on_request(request=context.request, context=context)
                    )
                    if isinstance(replaced, ImageRequest):
                        context.request = replaced
                checked = provider.validate(context.request)
                if isinstance(checked, Prepared):
                    context.request, context.prepared = checked.request, checked.settings
                else:
                    context.request = checked
                slot = concurrency_slot(provider, context.request)
                if slot is not None:
                    # Queued here, before anything is sent: see Provider.max_concurrency.
                    held = contextlib.AsyncExitStack()
                    await held.enter_async_context(slot)
            source = hook.stream(request=context.request, provider=provider, context=context)
            if source is None:
                raise PluginError(
                    f"nothing can stream provider {provider.name!r}",
                    hint="it cannot stream and the fake_streaming plugin is disabled",
                )
            if deadline is not None:
                bounded = deadline.bound(source)
            finals = 0
            async for received in source if bounded is None else bounded:
                chunk: Chunk = received
                for func in chunk_hooks:
                    replaced_chunk = func(chunk=chunk, context=context)
                    if replaced_chunk is not None:
                        chunk = cast(Chunk, replaced_chunk)
                if isinstance(chunk, ImageFinal):
                    async with deadline.scope() if deadline else _NO_DEADLINE:
                        for plugin_name, post in post_hooks:
                            processed = await await_me_maybe(
                                post(image=chunk, request=context.request, context=context)
                            )
                            if isinstance(processed, ImageFinal):
                                chunk = processed
                            elif processed is not None:
                                chunk = _as_final(
                                    processed, chunk, self._describe_hook(plugin_name)
                                )
                        if save_options is not None:
                            await self._save(chunk, save_options, context, result)
                    finals += 1
                # The loop gets each preview; a stream's result holds the latest
                # only, so a run's memory does not grow with its previews.
                result.add(chunk, latest_preview_only=not keep_previews)
                yield chunk
            if not finals:
                raise _no_image(provider.name, result)
            if result.save_errors:
                first = result.save_errors[0]
                raise first if isinstance(first, SaveError) else SaveError(str(first))
            async with deadline.scope() if deadline else _NO_DEADLINE:
                for _, on_result in self._calls("on_result"):
                    await await_me_maybe(on_result(result=result, context=context))
        except GeneratorExit:
            # The consumer stopped early: not an error, just clean up below.
            raise
        except BaseException as exc:
            if isinstance(exc, ImagestreamError):
                if exc.partial is None:
                    exc.partial = result
                if request.options and isinstance(exc, _REFUSALS):
                    _suggest_request_fields(exc, request.options)
            for plugin_name, on_error in self._calls("on_error"):
                try:
                    await await_me_maybe(on_error(error=exc, context=context))
                except Exception:  # a broken observer must not hide the real error
                    context.logger.exception("on_error hook %s failed", plugin_name)
            raise
        finally:
            if bounded is not None and not _ended(bounded):
                await _shielded(bounded.aclose())
            aclose = getattr(source, "aclose", None)
            if aclose is not None and not _ended(source):
                await _shielded(aclose())
            if held is not None:
                await _shielded(held.aclose())

    def _describe_hook(self, plugin_name: str) -> str:
        plugin = self.manager.get_plugin(plugin_name)
        if isinstance(plugin, _PostprocessAdapter):
            return repr(plugin)
        return f"the postprocess hook of plugin {plugin_name!r}"

    async def _save(
        self, chunk: ImageFinal, options: SaveOptions, context: RunContext, result: GenerationResult
    ) -> None:
        try:
            saved = self.manager.hook.save(image=chunk, options=options, context=context)
            if saved is None:
                raise SaveError(
                    "no saver accepted the image", hint="the filesystem plugin is disabled"
                )
            writing = asyncio.ensure_future(await_me_maybe(saved))
            try:
                record = await asyncio.shield(writing)
            except asyncio.CancelledError:
                # Cancelled (Ctrl-C) while a saver writes: a thread is not
                # stopped, so the file lands anyway. Wait for it and record
                # it, or it would be on disk with nothing naming it.
                with contextlib.suppress(Exception):
                    result.saved.append(await writing)
                raise
            result.saved.append(record)
        except SaveError as exc:
            # Keep going: the image stays in the result and later images may still save.
            result.save_errors.append(exc)
        except Exception as exc:
            # A saver's own failure (OSError, ValueError, ...) is a save error
            # all the same: it must never cost the image.
            error = SaveError(f"saving the image failed: {type(exc).__name__}: {exc}")
            error.__cause__ = exc
            result.save_errors.append(error)


def _no_image(provider: str, result: GenerationResult) -> NoImageError:
    """The error of a run whose provider finished, without an error, but with no image.

    Every run asks for at least one image, so zero images is never a
    success: the provider's text usually says why (a refusal, a question).
    """
    said = result.text.strip()
    quoted = f'; it said: "{said[:300]}"' if said else ""
    count = result.preview_count
    previews = f" ({count} preview(s) arrived)" if count else ""
    return NoImageError(
        f"the run ended without an image{previews}{quoted}",
        provider=provider,
        text=said,
        hint="the error's .text holds what the model said and .partial what arrived; "
        "ask for an image explicitly in the prompt, or try again",
    )


def _ended(source: object) -> bool:
    """Whether ``source`` is an async generator that has finished: closing it does nothing.

    Checked so that a run that ended normally is not closed through a shield,
    which costs a task and a turn of the loop per run.
    """
    return isinstance(source, types.AsyncGeneratorType) and source.ag_frame is None


async def _shielded(awaitable: Awaitable[Any]) -> None:
    # Cleanup must finish even when the run is being cancelled.
    try:
        await asyncio.shield(awaitable)
    except asyncio.CancelledError:
        pass
    except Exception:  # cleanup failures never replace the real outcome
        pass


_NO_DEADLINE: contextlib.nullcontext[None] = contextlib.nullcontext()


class _Deadline:
    """A run's total time limit (``ImageRequest.deadline``), as an absolute loop time."""

    __slots__ = ("at", "provider", "seconds")

    def __init__(self, seconds: float, provider: str) -> None:
        self.seconds = seconds
        self.provider = provider
        self.at = asyncio.get_running_loop().time() + seconds

    def scope(self) -> _DeadlineScope:
        return _DeadlineScope(self)

    async def bound(self, source: AsyncIterator[T]) -> AsyncGenerator[T, None]:
        """``source``'s items, each wait for one in the deadline's scope (never a yield)."""
        iterator = aiter(source)
        while True:
            async with _DeadlineScope(self):
                try:
                    item = await anext(iterator)
                except StopAsyncIteration:
                    return
            yield item


class _DeadlineScope:
    # asyncio.timeout_at for one stretch of the run. It never spans a yield of
    # the run's generator: a cancellation there would land in the consumer's
    # code, outside any handler of ours.

    __slots__ = ("_deadline", "_timeout")

    def __init__(self, deadline: _Deadline) -> None:
        self._deadline = deadline
        self._timeout = asyncio.timeout_at(deadline.at)

    async def __aenter__(self) -> None:
        await self._timeout.__aenter__()

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            await self._timeout.__aexit__(exc_type, exc, tb)
        except TimeoutError as timeout:
            if not self._timeout.expired():
                raise
            seconds = self._deadline.seconds
            raise APITimeoutError(
                f"the run did not finish within its deadline of {seconds:g}s (deadline={seconds:g})",
                provider=self._deadline.provider,
                hint="pass a larger deadline=, or deadline=None for no limit; "
                "the error's partial holds what arrived",
            ) from timeout


_REFUSALS = (ConfigurationError, ValidationError, InvalidRequestError)
_REFUSAL_WORDS = (
    "unknown",
    "unrecogni",
    "unexpected",
    "unsupported",
    "not supported",
    "not allowed",
    "extra",
    "invalid",
)
_SUGGESTED_FIELDS = sorted(_REQUEST_FIELDS - {"options"})


def _suggest_request_fields(error: ImagestreamError, options: Mapping[str, Any]) -> None:
    """Add "did you mean 'steps'?" to an error that refuses an option named like a request field.

    Keywords that are not request fields become provider options, so
    ``step=5`` reaches the provider, which refuses an option it does not
    know; the provider cannot know that a request field was meant.
    """
    text = error.message.lower()
    if not any(word in text for word in _REFUSAL_WORDS):
        return
    import difflib  # only on this error path

    guesses = []
    for name in options:
        if not isinstance(name, str) or not name or name in _REQUEST_FIELDS:
            continue
        if not re.search(rf"(?<![\w]){re.escape(name.lower())}(?![\w])", text):
            continue
        close = difflib.get_close_matches(name.lower(), _SUGGESTED_FIELDS, n=1, cutoff=0.7)
        prefixed = [f for f in _SUGGESTED_FIELDS if len(name) >= 4 and f.startswith(name.lower())]
        field = close[0] if close else prefixed[0] if prefixed else None
        if field is not None:
            guesses.append(
                f"did you mean {field!r}? {name!r} is not a request field, "
                "so it went to the provider as an option"
            )
    if guesses:
        error.hint = "; ".join([*guesses, *([error.hint] if error.hint else [])])


def run_sync(make: Callable[[], Awaitable[T]]) -> T:
    """Run the awaitable that ``make()`` returns to completion, from synchronous code.

    Raises:
        RuntimeError: Called from inside a running event loop (use the async
            twin there instead). ``make`` is not called then, so no coroutine
            is left un-awaited.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError(
            "imagestream.generate() cannot run inside an event loop; use 'await imagestream.agenerate(...)'"
        )

    async def main() -> T:
        return await make()

    return asyncio.run(main())
