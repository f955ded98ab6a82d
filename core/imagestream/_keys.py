"""API keys: the request's own, else the provider's environment variables.

A provider names its variable in :attr:`Provider.key_env
<imagestream.Provider.key_env>` and, optionally, other names other tools use
for the same key in :attr:`~imagestream.Provider.key_aliases`, so that an
existing setup just works. When two of them are set to different values the
first wins and a :class:`KeyConflictWarning` names the variables (never the
values).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence

from ._request import Secret
from .errors import MissingAPIKeyError

__all__ = ["KeyConflictWarning", "find_key", "require_key"]


class KeyConflictWarning(UserWarning):
    """Two environment variables for the same key hold different values."""


def _clean(value: str) -> str:
    value = value.strip()
    # A value pasted from a header ("Bearer sk-...") still works.
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer":
        value = rest.strip()
    return value


def find_key(
    given: Secret | str | None,
    env: Sequence[str],
    *,
    provider: str,
    environ: Mapping[str, str] | None = None,
) -> Secret | None:
    """The key to use, or ``None``: ``given`` (``api_key=``, ``--key``), else the first variable set.

    Args:
        given: The request's key, if any.
        env: Environment variables to read, in order of preference.
        provider: The provider's name, for the conflict warning.
        environ: The environment (default ``os.environ``).
    """
    if given:
        value = _clean(given.get() if isinstance(given, Secret) else given)
        if value:
            return Secret(value)
    environ = os.environ if environ is None else environ
    found = [(name, _clean(environ.get(name, ""))) for name in env]
    found = [(name, value) for name, value in found if value]
    if not found:
        return None
    name, value = found[0]
    differing = [other for other, other_value in found[1:] if other_value != value]
    if differing:
        warnings.warn(
            f"{provider}: {name} and {', '.join(differing)} hold different keys; using {name}",
            KeyConflictWarning,
            stacklevel=3,
        )
    return Secret(value)


def require_key(
    given: Secret | str | None,
    env: Sequence[str],
    *,
    provider: str,
    environ: Mapping[str, str] | None = None,
) -> Secret:
    """Like :func:`find_key`, but a missing key is an error.

    Raises:
        MissingAPIKeyError: No key given and none of ``env`` set; the hint
            names the first variable (raised before any network call).
    """
    key = find_key(given, env, provider=provider, environ=environ)
    if key is None:
        raise MissingAPIKeyError(provider, env[0] if env else "the provider's key variable")
    return key
