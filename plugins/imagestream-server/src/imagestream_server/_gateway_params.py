"""OpenAI's image parameters mapped to an imagestream run, for the Images API and the Responses tool.

imagestream fields: ``n``, ``size``, ``quality``, ``output_format``,
``partial_images`` (and, for clients that send them as extra body fields,
``steps``, ``seed``, ``negative_prompt``). Fields only OpenAI has
(``background``, ``output_compression``, ``style``, ``input_fidelity``,
``moderation``, ``user``) become provider options when the provider is
``openai``; for any other provider ``user``, ``moderation`` and
``safety_identifier`` are ignored (they change nothing about the picture),
``background: "auto"`` and ``output_compression: 100`` (OpenAI's defaults)
too, and the rest are refused, as is any field nobody knows. Provider options a client could use to reach the server's
files or headers are never passed through.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from imagestream import ConfigurationError, parse_size

from ._gateway_models import Target
from ._openai_errors import GatewayError
from ._openai_events import ImageFacts

__all__ = ["ImageSettings", "read_flag", "read_integer", "read_text", "image_settings"]

_OPENAI_OPTIONS = frozenset(
    {"background", "moderation", "output_compression", "style", "user", "input_fidelity"}
)
_HARMLESS = frozenset({"user", "moderation", "safety_identifier"})
_OPENAI = "openai"
_DEFAULTS: Mapping[str, object] = {"background": "auto", "output_compression": 100}
"""OpenAI-only fields at OpenAI's own defaults: ignored for other providers (clients send them)."""


def read_integer(value: Any, name: str, *, low: int | None = None) -> int:
    """An integer (JSON number or a form field's digits)."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value.strip())
    if number is None:
        raise GatewayError(
            f"Invalid type for '{name}': expected an integer, got {value!r}",
            param=name,
            code="invalid_type",
        )
    if low is not None and number < low:
        raise GatewayError(
            f"Invalid '{name}': {number} is below the minimum of {low}",
            param=name,
            code="integer_below_min_value",
        )
    return number


def read_text(value: Any, name: str) -> str:
    """A string."""
    if not isinstance(value, str):
        raise GatewayError(
            f"Invalid type for '{name}': expected a string", param=name, code="invalid_type"
        )
    return value


def read_flag(value: Any, name: str) -> bool:
    """A boolean (JSON ``true``/``false`` or a form field's ``"true"``/``"false"``)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise GatewayError(
        f"Invalid type for '{name}': expected a boolean", param=name, code="invalid_type"
    )


@attrs.frozen
class ImageSettings:
    """A request's image parameters, checked.

    Attributes:
        params: Fields for :meth:`Generations.run` (``n``, ``size``, ...), only those set.
        options: Provider options (OpenAI-only fields, for ``openai``).
        facts: What was asked for, reported where an image does not say.
        partials: Partial images per image to stream (0 when not streaming).
    """

    params: dict[str, Any]
    options: dict[str, Any]
    facts: ImageFacts
    partials: int


def _unsupported(name: str, target: Target) -> GatewayError:
    return GatewayError(
        f"'{name}' is only supported by openai models, not {target.name}",
        param=name,
        code="unsupported_parameter",
    )


def image_settings(fields: Mapping[str, Any], target: Target, *, stream: bool) -> ImageSettings:
    """Check OpenAI's image fields (``None`` values count as absent) for ``target``.

    Raises:
        GatewayError: A bad value, an unknown field, or one ``target`` cannot take.
    """
    openai = target.provider.name == _OPENAI
    params: dict[str, Any] = {}
    options: dict[str, Any] = {}
    facts: dict[str, str | None] = {}
    partials = 0
    for name, value in fields.items():
        if value is None:
            continue
        if name == "n":
            params["n"] = read_integer(value, name, low=1)
        elif name == "size":
            size = read_text(value, name).strip().lower()
            if size == "auto":
                if openai:
                    params["size"] = size
                continue
            try:
                width, height = parse_size(size) or (0, 0)
            except ConfigurationError:
                raise GatewayError(
                    f"Invalid value for 'size': {value!r} is not WIDTHxHEIGHT or 'auto'",
                    param=name,
                    code="invalid_value",
                ) from None
            params["size"] = facts["size"] = f"{width}x{height}"
        elif name == "quality":
            quality = read_text(value, name).strip().lower()
            facts["quality"] = quality
            if quality != "auto" or openai:
                params["quality"] = quality
        elif name == "output_format":
            output_format = read_text(value, name).strip().lower()
            params["output_format"] = facts["output_format"] = output_format
        elif name == "partial_images":
            partials = read_integer(value, name, low=0)
        elif name in ("steps", "seed"):
            params[name] = read_integer(value, name, low=0)
        elif name == "negative_prompt":
            params[name] = read_text(value, name)
        elif openai and name == "safety_identifier":
            options.setdefault("user", read_text(value, name))
        elif openai and name in _OPENAI_OPTIONS:
            if name == "output_compression":
                value = read_integer(value, name, low=0)
            options[name] = value
            if name == "background":
                facts["background"] = read_text(value, name)
        elif name in _HARMLESS or (name in _DEFAULTS and str(value) == str(_DEFAULTS[name])):
            continue  # changes nothing about the picture
        elif name in _OPENAI_OPTIONS:
            raise _unsupported(name, target)
        else:
            raise GatewayError(
                f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter"
            )
    if not stream:
        partials = 0
    if target.streams_previews:
        # Tell the provider, so it makes (and encodes) only what is sent.
        params["partial_images"] = partials
    return ImageSettings(params, options, ImageFacts(**facts), partials)
