"""The ``Provider`` base class that provider plugins subclass."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar

import attrs

from ._chunks import Chunk, ImageFinal, Usage

if TYPE_CHECKING:
    from ._context import RunContext
    from ._request import ImageRequest

__all__ = ["ModelInfo", "Pricing", "Provider", "ProviderResponse"]


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
        )
        itemised = any(tokens is not None for tokens, _ in parts)
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


class Provider:
    """Base class of image providers.

    Subclass it, set the class attributes, and implement :meth:`stream` (if the
    provider streams) and/or :meth:`generate` (if it can only return the whole
    result). A provider that implements only :meth:`generate` is streamed by the
    core: text first, then each final image, marked ``synthetic=True``.

    Keep construction cheap and import heavy libraries inside the methods:
    providers are constructed when plugins register, even for ``--help``-like
    commands that never generate.

    Class attributes:
        name: The provider's name (``-p NAME``), lower case.
        description: One line for ``imagestream providers``.
        models: The models it knows; any other id is passed through unless
            :meth:`validate` refuses it.
        default_model: Used when the request names none.
        key_env: Environment variable that holds the API key, if one is needed.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    models: ClassVar[Sequence[ModelInfo]] = ()
    default_model: ClassVar[str | None] = None
    key_env: ClassVar[str | None] = None

    def validate(self, request: ImageRequest) -> ImageRequest:
        """Check (and normalise) a request before anything is sent.

        Raise :class:`~imagestream.ConfigurationError` or
        :class:`~imagestream.ValidationError` for anything the provider would
        refuse; return the request, possibly with defaults filled in.
        """
        return request

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
