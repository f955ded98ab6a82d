"""Where the NovelAI token comes from: the request, then the environment.

NovelAI authenticates image requests with ``Authorization: Bearer <token>``,
where the token is a persistent API token (``pst-...``, from the account
settings) or a login access token. ``NOVELAI_API_KEY`` is this project's
name for it; ``NOVELAI_TOKEN`` and ``NAI_TOKEN`` are the names other NovelAI
tools use, accepted so that an existing setup just works.

The token is held in a :class:`~imagestream.Secret` and never logged: the
warning about conflicting variables names the variables, not their values.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Final

from imagestream import MissingAPIKeyError, Secret

__all__ = ["ENV_ALIASES", "KEY_ENV", "KeyWarning", "resolve_key"]

KEY_ENV: Final = "NOVELAI_API_KEY"
"""The variable imagestream documents for the NovelAI token."""

ENV_ALIASES: Final = ("NOVELAI_TOKEN", "NAI_TOKEN")
"""Other variables read, in this order, when ``NOVELAI_API_KEY`` is unset."""


class KeyWarning(UserWarning):
    """Two token variables are set to different values."""


def _clean(value: str) -> str:
    value = value.strip()
    # A value pasted from a header ("Bearer pst-...") still works.
    if value[:7].lower() == "bearer ":
        value = value[7:].strip()
    return value


def resolve_key(given: Secret | None, environ: Mapping[str, str] | None = None) -> Secret:
    """The token to use: the request's own, else the first variable that is set.

    Raises:
        MissingAPIKeyError: No token anywhere (names ``NOVELAI_API_KEY``).
    """
    if given is not None and _clean(given.get()):
        return Secret(_clean(given.get()))
    env = os.environ if environ is None else environ
    found = [(name, _clean(env[name])) for name in (KEY_ENV, *ENV_ALIASES) if _clean(env.get(name, ""))]
    if not found:
        raise MissingAPIKeyError("novelai", KEY_ENV)
    name, value = found[0]
    others = [other for other, other_value in found[1:] if other_value != value]
    if others:
        warnings.warn(
            f"novelai: {name} and {', '.join(others)} hold different tokens; using {name}",
            KeyWarning,
            stacklevel=4,
        )
    return Secret(value)
