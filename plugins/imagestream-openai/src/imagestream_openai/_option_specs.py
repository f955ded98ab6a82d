"""The options' types, defaults and ranges, for ``imagestream models --options``.

Descriptions come from :data:`~imagestream_openai.OPTIONS`; what is accepted
is still decided by ``_options.resolve``, which these entries mirror.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._options import DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_RESPONSES_MODEL, OPTIONS

__all__ = ["OPTION_SPECS"]

_SHAPES: dict[str, dict[str, Any]] = {
    "api": {"type": "choice", "choices": ("images", "responses"), "default": "images"},
    "stream": {"type": "flag"},
    "background": {"type": "choice", "choices": ("transparent", "opaque", "auto")},
    "moderation": {"type": "choice", "choices": ("low", "auto")},
    "output_compression": {"type": "integer", "min": 0, "max": 100},
    "input_fidelity": {"type": "choice", "choices": ("high", "low")},
    "complexity": {"type": "choice", "choices": ("low", "medium", "high")},
    "frame_count": {"type": "integer", "min": 2, "max": 16},
    "frame_duration_ms": {"type": "integer", "min": 0},
    "style": {"type": "choice", "choices": ("vivid", "natural")},
    "response_format": {"type": "choice", "choices": ("url", "b64_json")},
    "image": {"type": "input"},
    "mask": {"type": "input"},
    "user": {"type": "text"},
    "organization": {"type": "text"},
    "project": {"type": "text"},
    "responses_model": {"type": "text", "default": DEFAULT_RESPONSES_MODEL},
    "instructions": {"type": "text"},
    "tool_choice": {
        "type": "choice",
        "choices": ("image_generation", "auto", "required"),
        "default": "image_generation",
    },
    "action": {"type": "choice", "choices": ("generate", "edit", "auto")},
    "auth_header": {"type": "choice", "choices": ("bearer", "api-key"), "default": "bearer"},
    "api_version": {"type": "text"},
    "headers": {"type": "mapping"},
    "max_response_bytes": {"type": "integer", "min": 1, "default": DEFAULT_MAX_RESPONSE_BYTES},
}

OPTION_SPECS: Mapping[str, Any] = {
    name: {**_SHAPES[name], "description": description} for name, description in OPTIONS.items()
}
"""Every option of :data:`OPTIONS`, as ``Provider.options`` describes them."""
