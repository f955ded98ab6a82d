"""The ``Provider`` base class that provider plugins subclass."""

from __future__ import annotations

import importlib
import threading
import warnings
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Required, TypedDict

import attrs

from .errors import PluginError

if TYPE_CHECKING:
    # Imported where used: listing providers (``imagestream providers``) needs
    # neither the chunk types nor the key readers.
    from ._chunks import Chunk, ImageFinal, Usage
    from ._context import RunContext
    from ._request import ImageRequest
    from ._secret import Secret

__all__ = [
    "LazyProvider",
    "ModelInfo",
    "OptionSpec",
    "Prepared",
    "Pricing",
    "Provider",
    "ProviderResponse",
]


@attrs.frozen
class Pricing:
    """Prices in US dollars per one million tokens; ``None`` where not billed that way.

    Image tokens have their own rates, so cost is computed per image token,
    not at the text rate.

    Attributes:
        input_text: Per 1M input text tokens.
        input_image: Per 1M input image tokens.
        output_text: Per 1M output text tokens.
        output_image: Per 1M output image tokens.
        per_image: A flat price per image, for models billed per image.
    """

    input_text: float | None = None
    input_image: float | None = None
    output_text: float | None = None
    output_image: float | None = None
    per_image: float | None = None

    def cost(self, usage: Usage, images: int = 0) -> float | None:
        """The cost of ``usage`` (and ``images`` images), or ``None`` if unknown."""
        total = 0.0
        known = False
        parts: tuple[tuple[int | None, float | None], ...] = (
            (usage.input_text_tokens, self.input_text),
            (usage.input_image_tokens, self.input_image),
            (usage.output_text_tokens, self.output_text),
            (usage.output_image_tokens, self.output_image),
            # Reasoning is billed at the output text rate where it is reported.
            (usage.thought_tokens, self.output_text),
        )
        itemised = any(tokens is not None for tokens, _ in parts[:4])
        if not itemised:
            # Only totals reported: count input as text and output as image,
            # which is what an image model's output is.
            parts = (
                (usage.input_tokens, self.input_text),
                (usage.output_tokens, self.output_image or self.output_text),
            )
        for tokens, price in parts:
            if tokens is not None and price is not None:
                total += tokens * price / 1_000_000
                known = True
        if self.per_image is not None and images:
            total += images * self.per_image
            known = True
        return total if known else None


@attrs.frozen
class ModelInfo:
    """One model a provider knows.

    Attributes:
        id: The id passed as ``model=``.
        description: One line for ``imagestream providers``.
        streams_previews: True if this model streams real intermediate images.
        pricing: Token prices, when known.
    """

    id: str
    description: str = ""
    streams_previews: bool = False
    pricing: Pricing | None = None


class OptionSpec(TypedDict, total=False):
    """How one provider option (``-o NAME VALUE``) reads, for ``imagestream models --options``.

    Only ``type`` is required; give what applies:

    - ``type``: ``"integer"``, ``"number"``, ``"flag"``, ``"text"``,
      ``"choice"``, ``"size"``, ``"list"``, ``"mapping"`` or ``"input"`` (a
      file, bytes, base64 or a ``data:`` URL);
    - ``description``: one line: what it does, and for which models;
    - ``default``: the value used when the option is not given;
    - ``choices``: the accepted words, for ``"choice"``;
    - ``min``, ``max``: the smallest and largest accepted numbers.
    """

    type: Required[str]
    description: str
    default: object
    choices: Sequence[str]
    min: float
    max: float


@attrs.frozen
class ProviderResponse:
    """What a non-streaming ``generate`` returns: the core streams it (fake streaming).

    Attributes:
        images: The final images.
        text: Any text the model returned.
        usage: Token usage, when reported.
    """

    images: Sequence[ImageFinal] = ()
    text: str = ""
    usage: Usage | None = None

    def chunks(self, *, synthetic: bool = True) -> Iterator[Chunk]:
        """The response as chunks: its text, each final image, then its usage.

        This is what the core's fake streaming yields for a provider that can
        only generate; a streaming provider that sometimes gets a whole body
        back (a gateway that ignores ``stream``) yields the same. Chunks are
        marked ``synthetic`` unless told otherwise.
        """
        from ._chunks import TextDelta

        if self.text:
            yield TextDelta(self.text, synthetic=synthetic)
        for image in self.images:
            yield attrs.evolve(image, synthetic=synthetic) if synthetic else image
        if self.usage is not None:
            yield attrs.evolve(self.usage, synthetic=synthetic) if synthetic else self.usage


@attrs.frozen(repr=False)
class Prepared:
    """What :meth:`Provider.validate` may return to hand its parsed settings on.

    The pipeline then runs with ``request`` and puts ``settings`` on the run's
    context (:attr:`RunContext.prepared <imagestream.RunContext.prepared>`),
    so :meth:`Provider.stream` / :meth:`Provider.generate` use them instead of
    parsing the request (and reading its input files) a second time.

    Attributes:
        request: The request, with defaults filled in.
        settings: The provider's own parsed form of it (any object).
    """

    request: ImageRequest
    settings: Any

    def __repr__(self) -> str:
        return f"Prepared({self.request!r}, settings={type(self.settings).__name__})"


class Provider:
    """Base class of image providers.

    Subclass it, set the class attributes, and implement :meth:`stream` (if the
    provider streams) and/or :meth:`generate` (if it can only return the whole
    result). A provider that implements only :meth:`generate` is streamed by the
    core: text first, then each final image, marked ``synthetic=True``.

    Keep construction cheap and import heavy libraries inside the methods.
    A plugin registers a :class:`~imagestream.provider.LazyProvider` naming
    the class, so that the class's module is imported only when the provider
    runs, never by ``imagestream providers`` or ``--help``.

    Class attributes:
        name: The provider's name (``-p NAME``), lower case.
        description: One line for ``imagestream providers``.
        models: The models it knows; any other id is passed through unless
            :meth:`validate` refuses it.
        default_model: Used when the request names none.
        options: The options it accepts (``-o NAME VALUE``): a dict from
            each name to a dict with ``type`` and, where they apply,
            ``description``, ``default``, ``choices``, ``min`` and ``max``
            (optional: it is what ``imagestream models --options`` shows;
            :meth:`validate` still decides).
        key_env: Environment variable that holds the API key, if one is needed.
        key_aliases: Other variables read, in order, when ``key_env`` is unset
            (names other tools use for the same key).
        max_concurrency: Generations at once per :meth:`concurrency_key`
            (per API key and base URL); more runs wait their turn in the
            pipeline. ``None``: no limit.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    models: ClassVar[Sequence[ModelInfo]] = ()
    default_model: ClassVar[str | None] = None
    options: ClassVar[Mapping[str, OptionSpec]] = {}
    key_env: ClassVar[str | None] = None
    key_aliases: ClassVar[Sequence[str]] = ()
    max_concurrency: ClassVar[int | None] = None

    def validate(self, request: ImageRequest) -> ImageRequest | Prepared:
        """Check (and normalise) a request before anything is sent.

        Raise :class:`~imagestream.ConfigurationError` or
        :class:`~imagestream.ValidationError` for anything the provider would
        refuse (see :mod:`imagestream.provider` for which). Return the
        request, possibly with defaults filled in, or a :class:`Prepared`
        holding it and the provider's parsed settings, which the run's
        context then carries to :meth:`stream` / :meth:`generate`: parse once.
        """
        return request

    # -- keys ----------------------------------------------------------------

    @property
    def key_variables(self) -> tuple[str, ...]:
        """``key_env`` followed by ``key_aliases``: every variable a key is read from."""
        return (self.key_env, *self.key_aliases) if self.key_env else tuple(self.key_aliases)

    def find_api_key(self, request: ImageRequest) -> Secret | None:
        """The request's key (``api_key=``, ``--key``), else the first key variable set, else ``None``.

        Warns with :class:`~imagestream.provider.KeyConflictWarning` when two
        variables hold different keys.
        """
        from ._keys import find_key

        return find_key(request.api_key, self.key_variables, provider=self.name)

    def api_key(self, request: ImageRequest) -> Secret:
        """Like :meth:`find_api_key`, but a missing key raises
        :class:`~imagestream.MissingAPIKeyError` naming ``key_env``."""
        from ._keys import require_key

        return require_key(request.api_key, self.key_variables, provider=self.name)

    def concurrency_key(self, request: ImageRequest) -> str | None:
        """What :attr:`max_concurrency` counts per: a hash of the key and the base URL.

        The key is the request's, else the one the environment gives
        (:meth:`find_api_key`). Return ``None`` to leave a request unlimited;
        never return the key itself.
        """
        import hashlib  # here: it costs start-up milliseconds, and only runs need it

        from ._keys import KeyConflictWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", KeyConflictWarning)  # validate warned already
            secret = self.find_api_key(request)
        key = secret.get() if secret else ""
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        return f"{digest}@{(request.base_url or '').rstrip('/')}"

    def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Chunk]:
        """Stream chunks for ``request``. Override in streaming providers.

        Write it as an ``async def`` generator. It is closed (``aclose()``)
        when the consumer stops early: release connections in ``finally``.
        """
        raise NotImplementedError

    async def generate(self, request: ImageRequest, context: RunContext) -> ProviderResponse:
        """Return the whole result at once. Override in non-streaming providers."""
        raise NotImplementedError

    @property
    def can_stream(self) -> bool:
        """True if this provider overrides :meth:`stream`."""
        return type(self).stream is not Provider.stream

    @property
    def can_generate(self) -> bool:
        """True if this provider overrides :meth:`generate`."""
        return type(self).generate is not Provider.generate

    def model_info(self, model: str | None) -> ModelInfo | None:
        """The :class:`ModelInfo` for ``model`` (or the default), if known."""
        wanted = model or self.default_model
        return next((m for m in self.models if m.id == wanted), None)

    def pricing(self, model: str | None) -> Pricing | None:
        """Token prices for ``model``, used by the analytics middleware."""
        info = self.model_info(model)
        return info.pricing if info else None

    @property
    def streams_previews(self) -> bool:
        """True if any of the provider's models streams real previews."""
        return any(m.streams_previews for m in self.models)

    def describe(self) -> Mapping[str, object]:
        """A plain description for ``imagestream providers``."""
        return {
            "name": self.name,
            "description": self.description,
            "default_model": self.default_model,
            "key_env": self.key_env,
            "streams_previews": self.streams_previews,
            "models": [
                {"id": m.id, "description": m.description, "streams_previews": m.streams_previews}
                for m in self.models
            ],
        }

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {getattr(self, 'name', '?')!r}>"


_LOAD_LOCK = threading.Lock()

_DECLARED = (
    "name",
    "description",
    "models",
    "default_model",
    "options",
    "key_env",
    "key_aliases",
    "max_concurrency",
    "can_stream",
    "streams_previews",
)
"""What a :class:`LazyProvider` says about its provider, checked by :meth:`LazyProvider.check`."""


def _import(target: str) -> Any:
    """The object ``"module:name"`` names (``name`` may be dotted)."""
    module, _, attribute = target.partition(":")
    found: Any = importlib.import_module(module)
    for part in attribute.split("."):
        found = getattr(found, part)
    return found


class LazyProvider(Provider):
    """A provider described now and imported when it first runs.

    Register one in ``register_providers`` instead of an instance of your
    class, declaring what the class says about itself::

        register(
            LazyProvider(
                "imagestream_solid._provider:SolidProvider",
                name="solid",
                description="offline example: one colour, named in the prompt",
                models=(ModelInfo("solid-1", "previews fade in", streams_previews=True),),
                default_model="solid-1",
            )
        )

    Every process that loads plugins imports every entry module; only a run
    imports the class. Listing providers, their models, options and keys,
    and ``--help`` then cost your entry module alone, not your provider's
    modules and what they import.

    It is a :class:`Provider`: :func:`~imagestream.list_providers` lists it
    as it is, and it runs by handing every call to the provider, which
    :meth:`load` makes on first use. :func:`~imagestream.get_provider` and
    runs by name get the provider itself.

    The declared values are what the provider shows until it is loaded: keep
    them the class's, and call :meth:`check` in your tests, which says what
    differs. Put them where the class reads them too (the class's module
    imports them from a light module of yours), and they cannot differ.

    Args:
        target: ``"module:Class"``: a :class:`Provider` subclass, or any
            callable that makes the provider without arguments.
        name: The provider's :attr:`~Provider.name`.
        description: Its :attr:`~Provider.description`.
        models: Its :attr:`~Provider.models`, or where they are:
            ``"module:name"`` of a sequence (imported when first asked
            for) or of a function called each time they are (the models
            a server lists, read by a light module of the plugin).
        default_model: Its :attr:`~Provider.default_model`.
        options: Its :attr:`~Provider.options`, or where they are:
            ``"module:NAME"``, imported when they are first asked for
            (``imagestream models --options``), for an option table that
            lives with the code that reads the options.
        key_env: Its :attr:`~Provider.key_env`.
        key_aliases: Its :attr:`~Provider.key_aliases`.
        max_concurrency: Its :attr:`~Provider.max_concurrency`.
        streams: Whether it streams (implements :meth:`~Provider.stream`);
            ``False`` for a provider that only implements
            :meth:`~Provider.generate`.
        streams_previews: Only for a provider that overrides
            :attr:`~Provider.streams_previews`; by default, whether a model
            streams previews.
    """

    def __init__(
        self,
        target: str,
        *,
        name: str,
        description: str = "",
        models: Sequence[ModelInfo] | str = (),
        default_model: str | None = None,
        options: Mapping[str, OptionSpec] | str | None = None,
        key_env: str | None = None,
        key_aliases: Sequence[str] = (),
        max_concurrency: int | None = None,
        streams: bool = True,
        streams_previews: bool | None = None,
    ) -> None:
        for where in (target, *(value for value in (models, options) if isinstance(value, str))):
            module, _, attribute = where.partition(":")
            if not module or not attribute:
                raise PluginError(
                    f"provider {name!r}: {where!r} is not 'module:name'",
                    hint="name it as an entry point would: 'package.module:ClassName'",
                )
        self.target = target
        # Instance values in place of the class attributes a Provider subclass sets.
        vars(self).update(
            name=name,
            description=description,
            default_model=default_model,
            key_env=key_env,
            key_aliases=tuple(key_aliases),
            max_concurrency=max_concurrency,
        )
        self._models = models if isinstance(models, str) else tuple(models)
        self._options = options if isinstance(options, str) else dict(options or {})
        self._streams = streams
        self._streams_previews = streams_previews
        self._provider: Provider | None = None

    @property
    def models(self) -> Sequence[ModelInfo]:  # type: ignore[override]
        """The models as declared (imported, or asked for, from where they are)."""
        if isinstance(self._models, str):
            found = _import(self._models)
            if callable(found):
                return tuple(found())
            self._models = tuple(found)
        return self._models

    @property
    def options(self) -> Mapping[str, OptionSpec]:  # type: ignore[override]
        """The options as declared (imported from where they are, the first time)."""
        if isinstance(self._options, str):
            self._options = dict(_import(self._options))
        return self._options

    @property
    def can_stream(self) -> bool:
        """True unless declared ``streams=False``."""
        return self._streams

    @property
    def can_generate(self) -> bool:
        """True if the provider implements :meth:`~Provider.generate` (this loads it)."""
        return self.load().can_generate

    @property
    def streams_previews(self) -> bool:
        """As declared, else True if any model streams previews."""
        if self._streams_previews is not None:
            return self._streams_previews
        return any(model.streams_previews for model in self.models)

    @property
    def loaded(self) -> bool:
        """True once :meth:`load` has made the provider."""
        return self._provider is not None

    def load(self) -> Provider:
        """The provider: the class imported and called, the first time only.

        Raises:
            PluginError: ``target`` does not make a :class:`Provider` named
                :attr:`~Provider.name`. Whatever importing the module raises,
                this raises.
        """
        if self._provider is None:
            with _LOAD_LOCK:
                if self._provider is None:
                    self._provider = self._make()
        return self._provider

    def _make(self) -> Provider:
        provider = _import(self.target)()
        if not isinstance(provider, Provider) or isinstance(provider, LazyProvider):
            raise PluginError(
                f"provider {self.name!r}: {self.target} made {provider!r}, not a provider",
                hint="name a Provider subclass",
            )
        if provider.name != self.name:
            raise PluginError(
                f"provider {self.name!r}: {self.target} is named {provider.name!r}",
                hint="register it under the name its class has",
            )
        return provider

    def check(self) -> None:
        """Load the provider and compare it with what is declared: for a plugin's tests.

        Raises:
            PluginError: Naming each declared value the provider does not
                have, with the provider's.
        """
        provider = self.load()
        wrong = []
        for key in _DECLARED:
            declared, actual = getattr(self, key), getattr(provider, key)
            if isinstance(declared, tuple):
                actual = tuple(actual)
            elif isinstance(declared, dict):
                actual = {name: dict(spec) for name, spec in actual.items()}
                declared = {name: dict(spec) for name, spec in declared.items()}
            if declared != actual:
                wrong.append(f"{key} {declared!r}, where {type(provider).__name__} has {actual!r}")
        if wrong:
            raise PluginError(
                f"provider {self.name!r} is declared with " + "; ".join(wrong),
                hint=f"declare what {self.target} says",
            )

    # -- a run: the provider's own ----------------------------------------------

    def validate(self, request: ImageRequest) -> ImageRequest | Prepared:
        """The provider's :meth:`~Provider.validate`."""
        return self.load().validate(request)

    def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Chunk]:
        """The provider's :meth:`~Provider.stream`."""
        return self.load().stream(request, context)

    async def generate(self, request: ImageRequest, context: RunContext) -> ProviderResponse:
        """The provider's :meth:`~Provider.generate`."""
        return await self.load().generate(request, context)

    def find_api_key(self, request: ImageRequest) -> Secret | None:
        """The provider's :meth:`~Provider.find_api_key`."""
        return self.load().find_api_key(request)

    def api_key(self, request: ImageRequest) -> Secret:
        """The provider's :meth:`~Provider.api_key`."""
        return self.load().api_key(request)

    def concurrency_key(self, request: ImageRequest) -> str | None:
        """The provider's :meth:`~Provider.concurrency_key`."""
        return self.load().concurrency_key(request)

    def model_info(self, model: str | None) -> ModelInfo | None:
        """The provider's :meth:`~Provider.model_info`."""
        return self.load().model_info(model)

    def pricing(self, model: str | None) -> Pricing | None:
        """The provider's :meth:`~Provider.pricing`."""
        return self.load().pricing(model)

    def __repr__(self) -> str:
        state = "loaded" if self.loaded else "not loaded"
        return f"<LazyProvider {self.name!r}: {self.target}, {state}>"
