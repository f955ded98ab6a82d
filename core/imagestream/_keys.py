"""API keys: the request's own, else the provider's environment variables, else the key store.

A provider names its variable in :attr:`Provider.key_env
<imagestream.Provider.key_env>` and, optionally, other names other tools use
for the same key in :attr:`~imagestream.Provider.key_aliases`, so that an
existing setup just works. When two of them are set to different values the
first wins and a :class:`KeyConflictWarning` names the variables (never the
values). When none is set, the key stored under the provider's name with
``imagestream keys set NAME`` is used; the file is read only then.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence

from ._secret import Secret
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
    """The key to use, or ``None``: ``given`` (``api_key=``, ``--key``), else the
    first variable set, else the key stored for ``provider`` (``imagestream keys set``).

    The key store is read only when ``env`` names variables and none is set.

    Args:
        given: The request's key, if any.
        env: Environment variables to read, in order of preference.
        provider: The provider's name: the key store entry read, and named by
            the conflict warning.
        environ: The environment (default ``os.environ``); the key store's
            ``IMAGESTREAM_CONFIG_DIR`` is read from it too.

    Raises:
        ConfigurationError: The key store had to be read and cannot be; the
            message names the file, never its contents.
    """
    if given:
        value = _clean(given.get() if isinstance(given, Secret) else given)
        if value:
            return Secret(value)
    environ = os.environ if environ is None else environ
    found = [(name, _clean(environ.get(name, ""))) for name in env]
    found = [(name, value) for name, value in found if value]
    if not found:
        if not env:
            return None  # a provider that reads no variable takes no key: the file stays unread
        from ._keystore import stored_key  # only now: most runs never read the file

        stored = _clean(stored_key(provider, environ) or "")
        return Secret(stored) if stored else None
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
        MissingAPIKeyError: No key given, none of ``env`` set and none
            stored; the hint names the first variable (raised before any
            network call).
    """
    key = find_key(given, env, provider=provider, environ=environ)
    if key is None:
        raise MissingAPIKeyError(provider, env[0] if env else "the provider's key variable")
    return key
