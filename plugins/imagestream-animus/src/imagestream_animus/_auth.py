"""Tokens for Animus: an API key exchanged for a short-lived JWT, refreshed before it expires.

animus-client's flow, on a server (where the key may live):

1. ``GET {host}/auth/generate-token`` with the key in an ``apikey`` header
   answers with a JWT (``{"animus": {"token": ...}}`` in the SDK's example
   server; ``{"accessToken": ...}`` in the documentation's: both are read,
   and ``token`` / ``access_token`` too).
2. Every API call sends ``Authorization: Bearer <jwt>``.
3. The JWT's ``exp`` claim says when it expires; a new one is fetched 60 s
   before that. A token with no readable ``exp`` is used until the API
   refuses it (``expiresIn`` seconds, when the answer has it, count instead).
4. A 401 from the API drops the cached token: the caller exchanges the key
   again and retries once (see :class:`~imagestream_animus._api.AnimusAPI`).

A token given directly (``token=``, ``ANIMUS_TOKEN``) is sent as it is:
nothing to exchange, nothing to refresh, and a 401 is final.

:class:`AnimusAuth` caches tokens per key and exchange URL (by a hash of the
key, never the key itself), so the image provider and the chat share one
token; concurrent runs wait for one exchange instead of each making their own.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

import attrs

from imagestream import AuthenticationError, Secret
from imagestream.provider import find_key, require_key

from ._config import KEY_ENV, PROVIDER, REFRESH_MARGIN, TOKEN_ENV
from ._errors import exchange_error_parser
from ._wire import read_json_response

if TYPE_CHECKING:
    import asyncio

    from imagestream import HttpClient

__all__ = ["DEFAULT_AUTH", "AnimusAuth", "Credentials", "jwt_expiry", "token_of"]

_EXCHANGE_LIMIT: Final = 64 * 1024


@attrs.frozen(repr=False)
class Credentials:
    """How one request authenticates: a key to exchange, or a token to send as it is.

    Attributes:
        auth_url: Where the key is exchanged.
        key: The organisation's API key (``ANIMUS_API_KEY``), when exchanging.
        token: A bearer token used directly (``ANIMUS_TOKEN``), when given.
    """

    auth_url: str
    key: Secret | None = None
    token: Secret | None = None

    @property
    def refreshable(self) -> bool:
        """True when a refused token can be replaced (a key is there to exchange)."""
        return self.token is None and self.key is not None

    def secrets(self) -> tuple[str, ...]:
        """The key and token, to mask in anything quoted from a server."""
        return tuple(secret.get() for secret in (self.key, self.token) if secret)

    @classmethod
    def resolve(
        cls,
        *,
        auth_url: str,
        key: Secret | str | None = None,
        token: Secret | str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Credentials:
        """The credentials to use, in this order: ``token``, ``key``, ``ANIMUS_TOKEN``,
        ``ANIMUS_API_KEY`` (or the key stored with ``imagestream keys set animus``).

        Raises:
            MissingAPIKeyError: None of them is set.
        """
        given_token = find_key(token, (), provider=PROVIDER) if token else None
        if given_token:
            return cls(auth_url, token=given_token)
        if key:
            return cls(auth_url, key=require_key(key, (KEY_ENV,), provider=PROVIDER))
        env_token = _variable(TOKEN_ENV, environ)
        if env_token:
            return cls(auth_url, token=Secret(env_token))
        return cls(auth_url, key=require_key(None, (KEY_ENV,), provider=PROVIDER, environ=environ))

    def __repr__(self) -> str:
        kind = "token" if self.token else "key" if self.key else "nothing"
        return f"Credentials({kind}, auth_url={self.auth_url!r})"


def _variable(name: str, environ: Mapping[str, str] | None) -> str:
    # Read directly: the kit's lookup falls back to the key store, which holds
    # the key, not a token.
    import os

    return (environ if environ is not None else os.environ).get(name, "").strip()


def token_of(data: Any) -> str | None:
    """The token in a key exchange's answer, whichever of the known shapes it has."""
    if not isinstance(data, Mapping):
        return None
    animus = data.get("animus")
    if isinstance(animus, Mapping) and isinstance(animus.get("token"), str):
        return str(animus["token"]) or None
    for name in ("accessToken", "access_token", "token"):
        value = data.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT (seconds since the epoch), or ``None`` if it has none.

    Only read, never verified: the server checks its own signature.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, TypeError):
        return None
    exp = claims.get("exp") if isinstance(claims, Mapping) else None
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    return float(exp)


def _expires_in(data: Any) -> float | None:
    if not isinstance(data, Mapping):
        return None
    for name in ("expiresIn", "expires_in"):
        value = data.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return float(value)
    return None


@attrs.frozen(repr=False)
class _Token:
    value: str
    expires_at: float | None


class AnimusAuth:
    """Exchanges keys for tokens, caches them, and refreshes them before they expire.

    One instance is shared by the ``animus`` provider and the Animus chat
    model unless they are given their own (:data:`DEFAULT_AUTH`).

    Args:
        clock: Seconds since the epoch (tests pass a fake one).
        margin: Seconds before ``exp`` at which a token counts as expired.

    Attributes:
        exchanges: How many exchanges were made (for tests and diagnostics).
    """

    def __init__(
        self, *, clock: Callable[[], float] = time.time, margin: float = REFRESH_MARGIN
    ) -> None:
        self.clock = clock
        self.margin = margin
        self.exchanges = 0
        self._tokens: dict[tuple[str, str], _Token] = {}
        self._locks: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[tuple[str, str], asyncio.Lock]
        ] = weakref.WeakKeyDictionary()

    @staticmethod
    def _slot(credentials: Credentials) -> tuple[str, str]:
        key = credentials.key.get() if credentials.key else ""
        return hashlib.sha256(key.encode("utf-8")).hexdigest(), credentials.auth_url

    def _fresh(self, token: _Token | None) -> bool:
        if token is None:
            return False
        return token.expires_at is None or self.clock() < token.expires_at - self.margin

    def expires_at(self, credentials: Credentials) -> float | None:
        """When the cached token for ``credentials`` expires (``None``: none cached, or no ``exp``)."""
        token = self._tokens.get(self._slot(credentials))
        return token.expires_at if token else None

    async def token(self, http: HttpClient, credentials: Credentials) -> str:
        """A token to send now: the direct one, the cached one while fresh, else a new one."""
        if credentials.token is not None:
            return credentials.token.get()
        slot = self._slot(credentials)
        cached = self._tokens.get(slot)
        if self._fresh(cached):
            assert cached is not None
            return cached.value
        async with self._lock(slot):
            cached = self._tokens.get(slot)  # another run may have refreshed it meanwhile
            if self._fresh(cached):
                assert cached is not None
                return cached.value
            token = await self._exchange(http, credentials)
            self._tokens[slot] = token
            return token.value

    def invalidate(self, credentials: Credentials, token: str) -> None:
        """Drop ``token`` (refused by the API), unless another run replaced it already."""
        slot = self._slot(credentials)
        cached = self._tokens.get(slot)
        if cached is not None and cached.value == token:
            del self._tokens[slot]

    def clear(self) -> None:
        """Forget every cached token."""
        self._tokens.clear()

    def _lock(self, slot: tuple[str, str]) -> asyncio.Lock:
        import asyncio

        loop = asyncio.get_running_loop()
        locks = self._locks.get(loop)
        if locks is None:
            locks = self._locks[loop] = {}
        lock = locks.get(slot)
        if lock is None:
            lock = locks[slot] = asyncio.Lock()
        return lock

    async def _exchange(self, http: HttpClient, credentials: Credentials) -> _Token:
        assert credentials.key is not None
        key = credentials.key.get()
        self.exchanges += 1
        response = await http.send(
            "GET",
            credentials.auth_url,
            provider=PROVIDER,
            headers={"apikey": key, "Accept": "application/json"},
            parse_error=exchange_error_parser(key),
        )
        data = await read_json_response(
            http,
            response,
            what="the token exchange's answer",
            secrets=(key,),
            limit=_EXCHANGE_LIMIT,
        )
        value = token_of(data)
        if value is None:
            shape = sorted(data) if isinstance(data, Mapping) else type(data).__name__
            raise AuthenticationError(
                f"the token exchange answered without a token (fields: {shape})",
                provider=PROVIDER,
                status=response.status,
                hint="check auth_url: it must be Animus's /auth/generate-token",
            )
        expires_at = jwt_expiry(value)
        if expires_at is None and (seconds := _expires_in(data)) is not None:
            expires_at = self.clock() + seconds
        return _Token(value, expires_at)

    def __repr__(self) -> str:
        return f"<AnimusAuth {len(self._tokens)} token(s), {self.exchanges} exchange(s)>"


DEFAULT_AUTH: Final = AnimusAuth()
"""The token cache the registered provider and the default chat model share."""
