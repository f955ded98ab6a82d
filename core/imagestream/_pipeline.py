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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

import attrs

from ._chunks import Chunk, ImageFinal
from ._concurrency import concurrency_slot
from ._context import RunContext
from ._hookcall import ordered_calls
from ._http import HttpClient
from ._plugins import CORE_PLUGINS, PluginManager, get_plugin_manager, load_builtin
from ._pool import shared_http
from ._provider import Prepared, Provider, ProviderResponse
from ._registry import Registry
from ._request import ImageRequest
from ._result import GenerationResult
from ._saving import SaveOptions
from .errors import ImagestreamError, PluginError, SaveError
from .hookspecs import hookimpl

if TYPE_CHECKING:
    from ._decoding import Decoder, DecoderFactory
    from ._result import SavedImage

__all__ = ["ChunkStream", "Pipeline"]

T = TypeVar("T")

Postprocessor = Callable[[ImageFinal, ImageRequest], "ImageFinal | Awaitable[ImageFinal] | None"]
Saver = Callable[[ImageFinal, SaveOptions], "SavedImage | Awaitable[SavedImage]"]


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
    ) -> ImageFinal | None:
        return await await_me_maybe(self.func(image, request))


class _SaverAdapter:
    def __init__(self, func: Saver) -> None:
        self.func = func

    @hookimpl
    async def save(
        self, image: ImageFinal, options: SaveOptions, context: RunContext
    ) -> SavedImage:
        return await await_me_maybe(self.func(image, options))


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

    Iterate it with ``async for``. Leaving the loop early (``break``, an
    exception, cancellation) closes the provider's connection; use
    ``async with`` (or :meth:`aclose`) to close it at a point you choose.
    :attr:`result` accumulates everything seen so far.
    """

    def __init__(self, agen: AsyncIterator[Chunk], result: GenerationResult) -> None:
        self._agen = agen
        self.result = result

    def __aiter__(self) -> ChunkStream:
        return self

    async def __anext__(self) -> Chunk:
        return await self._agen.__anext__()

    async def aclose(self) -> None:
        """Stop the run and close its connections."""
        aclose = getattr(self._agen, "aclose", None)
        if aclose is not None:
            await aclose()

    async def __aenter__(self) -> ChunkStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class Pipeline:
    """A provider composed with middleware, postprocessors and a saver.

    Args:
        provider: A :class:`Provider` object, or a provider name looked up among
            installed plugins (``None``: the default provider).
        middleware: Plugin objects implementing middleware hooks
            (``on_request``, ``on_chunk``, ``on_result``, ``on_error``), e.g.
            ``imagestream.Validation()`` and ``imagestream.AnalyticsMiddleware()``.
        postprocessors: Functions ``(image, request) -> image | None`` (may be
            async), applied to each final image in order.
        saver: ``True`` for the built-in file-system saver, a function
            ``(image, options) -> SavedImage`` (may be async), or ``None``.
        plugins: Any other plugin objects to register in this pipeline.
        decoders: Decoder factories by name; names not given here are looked
            up among installed plugins.
        manager: Use this plugin manager instead of a private one (how the
            global API shares the installed plugins).
        http: An HTTP client for every run. By default each run uses the
            running event loop's pooled client (the one
            :func:`imagestream.stream` uses), closed when the loop shuts
            down; ``async with pipeline:`` gives the pipeline a client of its
            own instead, closed on exit.
        defaults: Default request fields and options (``model=``, ``size=``, ...).
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
        self._provider = provider
        self._decoders = dict(decoders or {})
        self._http = http
        self._owns_http = False
        # "save", "cache" and "log" are per-run switches, not request fields.
        self._save_default = defaults.pop("save", None)
        self._switch_defaults = {
            name: defaults.pop(name) for name in SWITCHES if name in defaults
        }
        self.defaults = defaults
        if manager is None:
            manager = PluginManager(strict=True)
            manager.add_builtins(CORE_PLUGINS)
            # pluggy calls the most recently registered plugin first: register
            # in reverse so hooks run in the order the lists give.
            ordered = [*middleware, *plugins]
            for number, plugin in reversed(list(enumerate(ordered))):
                manager.add_plugin(plugin, f"{type(plugin).__name__}-{number}")
            for number, func in reversed(list(enumerate(postprocessors))):
                manager.add_plugin(_PostprocessAdapter(func), f"postprocess-{number}")
            if saver is True:
                manager.add_plugin(load_builtin("filesystem"), "filesystem", builtin=True)
            elif callable(saver):
                manager.add_plugin(_SaverAdapter(saver), "saver")
        self.manager = manager

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

    def provider(self, name: str | None = None) -> Provider:
        """The provider for a request naming ``name``."""
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
        ``steps``, ``seed``, ``partial_images``, ``api_key``, ``base_url``, ...)
        or provider options. Pass ``save=True`` or a :class:`SaveOptions` to save
        each final image as it arrives.
        """
        save = params.pop("save", self._save_default)
        save_options = SaveOptions() if save is True else save or None
        switches = {**self._switch_defaults}
        switches.update({name: params.pop(name) for name in SWITCHES if name in params})
        request = build_request(prompt, self.defaults, params)
        provider = self.provider(request.provider)
        if request.provider is None:
            request = attrs.evolve(request, provider=provider.name)
        result = GenerationResult(
            provider=provider.name, model=request.model or provider.default_model
        )
        return ChunkStream(
            self._run(request, provider, result, save_options, switches), result
        )

    async def agenerate(self, prompt: str | ImageRequest, **params: Any) -> GenerationResult:
        """Run to the end and return the :class:`GenerationResult`."""
        chunks = self.stream(prompt, **params)
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
        chunk_hooks = [call for _, call in ordered_calls(hook.on_chunk)]
        post_hooks = [call for _, call in ordered_calls(hook.postprocess)]
        source: AsyncIterator[Chunk] | None = None
        held = contextlib.AsyncExitStack()
        try:
            for _, on_request in ordered_calls(hook.on_request):
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
                await held.enter_async_context(slot)
            source = hook.stream(request=context.request, provider=provider, context=context)
            if source is None:
                raise PluginError(
                    f"nothing can stream provider {provider.name!r}",
                    hint="it cannot stream and the fake_streaming plugin is disabled",
                )
            async for received in source:
                chunk: Chunk = received
                for func in chunk_hooks:
                    replaced_chunk = func(chunk=chunk, context=context)
                    if replaced_chunk is not None:
                        chunk = cast(Chunk, replaced_chunk)
                if isinstance(chunk, ImageFinal):
                    for post in post_hooks:
                        processed = await await_me_maybe(
                            post(image=chunk, request=context.request, context=context)
                        )
                        if isinstance(processed, ImageFinal):
                            chunk = processed
                    if save_options is not None:
                        await self._save(chunk, save_options, context, result)
                result.add(chunk)
                yield chunk
            if result.save_errors:
                first = result.save_errors[0]
                raise first if isinstance(first, SaveError) else SaveError(str(first))
            for _, on_result in ordered_calls(hook.on_result):
                await await_me_maybe(on_result(result=result, context=context))
        except GeneratorExit:
            # The consumer stopped early: not an error, just clean up below.
            raise
        except BaseException as exc:
            if isinstance(exc, ImagestreamError) and exc.partial is None:
                exc.partial = result
            for plugin_name, on_error in ordered_calls(hook.on_error):
                try:
                    await await_me_maybe(on_error(error=exc, context=context))
                except Exception:  # a broken observer must not hide the real error
                    context.logger.exception("on_error hook %s failed", plugin_name)
            raise
        finally:
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                await _shielded(aclose())
            await _shielded(held.aclose())

    async def _save(
        self, chunk: ImageFinal, options: SaveOptions, context: RunContext, result: GenerationResult
    ) -> None:
        try:
            saved = self.manager.hook.save(image=chunk, options=options, context=context)
            if saved is None:
                raise SaveError(
                    "no saver accepted the image", hint="the filesystem plugin is disabled"
                )
            result.saved.append(await await_me_maybe(saved))
        except SaveError as exc:
            # Keep going: the image stays in the result and later images may still save.
            result.save_errors.append(exc)


async def _shielded(awaitable: Awaitable[Any]) -> None:
    # Cleanup must finish even when the run is being cancelled.
    try:
        await asyncio.shield(awaitable)
    except asyncio.CancelledError:
        pass
    except Exception:  # cleanup failures never replace the real outcome
        pass


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
