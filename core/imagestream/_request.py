"""``ImageRequest``: one generation request (its key a :class:`~imagestream.Secret`)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import attrs

from ._secret import Secret
from .errors import ConfigurationError, ValidationError

__all__ = ["ImageRequest", "Secret", "parse_size"]


def _to_secret(value: str | Secret | None) -> Secret | None:
    if value is None or isinstance(value, Secret):
        return value
    return Secret(value) if value else None


_SIZE = re.compile(r"^\s*(\d+)\s*[xX×*]\s*(\d+)\s*$")


def parse_size(size: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """``"1024x768"`` → ``(1024, 768)``; ``None`` and ``"auto"`` → ``None``.

    Raises:
        ConfigurationError: Anything else that is not ``WIDTHxHEIGHT``.
    """
    if size is None:
        return None
    if isinstance(size, tuple):
        width, height = size
    else:
        if size.strip().lower() == "auto":
            return None
        match = _SIZE.match(size)
        if not match:
            raise ConfigurationError(
                f"size {size!r} is not WIDTHxHEIGHT", hint="use e.g. --size 1024x1024"
            )
        width, height = int(match[1]), int(match[2])
    if width <= 0 or height <= 0:
        raise ConfigurationError(
            f"size {width}x{height} must be positive", hint="use e.g. --size 1024x1024"
        )
    return width, height


def _size_str(value: str | tuple[int, int] | None) -> str | None:
    if isinstance(value, tuple):
        return f"{value[0]}x{value[1]}"
    return value


def _options(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return dict(value) if value else {}


_PARSED_URLS: dict[str, None] = {}  # base URLs already known to parse: requests are many, URLs few


def _base_url(value: str | None) -> str | None:
    """``value`` unchanged, once it is known to parse as a URL (whether it suits is the provider's call)."""
    if not value or (isinstance(value, str) and value in _PARSED_URLS):
        return value
    from urllib.parse import urlsplit

    hint = "e.g. --base-url https://api.example.com/v1"
    if not isinstance(value, str):
        raise ConfigurationError(f"base_url must be text, not {type(value).__name__}", hint=hint)
    try:
        parts = urlsplit(value.strip())
        # Read now: a bad port or bracketed host fails here, not deep in a provider.
        _ = parts.hostname, parts.port
    except ValueError as exc:
        from ._redact import redact

        shown = redact(value)  # never the password or a token the URL carries
        raise ConfigurationError(f"base_url {shown!r} is not a URL: {exc}", hint=hint) from None
    if len(_PARSED_URLS) < 256:
        _PARSED_URLS[value] = None
    return value


def _url_repr(value: str | None) -> str:
    from ._redact import redact

    return repr(redact(value) if value else value)


def _seconds(value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(
            f"deadline must be a number of seconds, not {value!r}",
            hint="e.g. deadline=120, or None for no deadline",
        )
    seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValidationError(
            f"deadline must be a positive, finite number of seconds, not {value!r}",
            hint="pass deadline=None for no deadline",
        )
    return seconds


@attrs.frozen
class ImageRequest:
    """Everything a provider needs to make images.

    Common settings are fields; everything provider-specific goes in
    ``options``, which the provider validates (and refuses what it does not
    know, before any network call).

    Attributes:
        prompt: What to draw.
        provider: Provider name (``None`` means the default provider).
        model: Model id (``None`` means the provider's default).
        size: ``"WIDTHxHEIGHT"``, ``"auto"``, or a provider's named size.
        n: How many images.
        steps: Sampler steps, for providers that have them.
        seed: Seed, for providers that take one.
        quality: Provider quality level (``"low"``, ``"high"``, ...).
        output_format: ``"png"``, ``"jpeg"`` or ``"webp"``.
        partial_images: How many partial images to stream, where supported.
        negative_prompt: What not to draw, where supported.
        api_key: The key (a :class:`Secret`; plain strings are wrapped).
        base_url: Where the provider's API lives (proxies, gateways, tests). A
            value that does not parse as a URL (a port out of range, an
            unclosed ``[``) raises :class:`~imagestream.ConfigurationError`.
        timeout: Stall timeout in seconds between two chunks (``None``: default).
            A run that keeps sending chunks never hits it.
        deadline: Seconds for the whole run, from the start of iteration to
            the last chunk, queueing for a concurrency slot included; a run
            still going then fails with :class:`~imagestream.APITimeoutError`
            whose ``partial`` holds what arrived. Off (``None``) by default,
            because a generation can legitimately take minutes; set it when
            a caller has a budget (a web request, a batch job). Must be
            positive and finite: a value that is not a number raises
            :class:`~imagestream.ConfigurationError`, one that is not
            positive and finite :class:`~imagestream.ValidationError`.
        options: Provider-specific settings.
    """

    prompt: str
    provider: str | None = None
    model: str | None = None
    size: str | None = attrs.field(default=None, converter=_size_str)
    n: int = 1
    steps: int | None = None
    seed: int | None = None
    quality: str | None = None
    output_format: str | None = None
    partial_images: int | None = None
    negative_prompt: str | None = None
    api_key: Secret | None = attrs.field(default=None, converter=_to_secret)
    base_url: str | None = attrs.field(default=None, converter=_base_url, repr=_url_repr)
    timeout: float | None = None
    deadline: float | None = attrs.field(default=None, converter=_seconds)
    options: Mapping[str, Any] = attrs.field(factory=dict, converter=_options)

    @property
    def dimensions(self) -> tuple[int, int] | None:
        """The size as ``(width, height)``, or ``None`` for "auto"/unset.

        Raises:
            ConfigurationError: The size is not ``WIDTHxHEIGHT``.
        """
        return parse_size(self.size)

    def option(self, name: str, default: Any = None) -> Any:
        """One provider option, or ``default``."""
        return self.options.get(name, default)
