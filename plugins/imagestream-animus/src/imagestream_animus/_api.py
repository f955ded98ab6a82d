"""Authenticated calls to the Animus API: a bearer token on each, one refresh on a 401."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from imagestream import AuthenticationError

from ._auth import AnimusAuth, Credentials
from ._config import PROVIDER, TOKEN_ENV
from ._errors import error_parser
from ._wire import read_json_response

if TYPE_CHECKING:
    import aiohttp

    from imagestream import HttpClient, RetryPolicy

__all__ = ["AnimusAPI"]

log = logging.getLogger("imagestream.animus")


class AnimusAPI:
    """The Animus API at ``base``, for one run or one chat turn.

    Args:
        http: The HTTP client (a run's ``context.http``, or the loop's pooled one).
        credentials: The key to exchange, or the token to send.
        base: The API root (``https://api.animusai.co/v3``).
        auth: The token cache.
        stall_timeout: Seconds without data before a read fails (``None``: the client's).
    """

    def __init__(
        self,
        http: HttpClient,
        credentials: Credentials,
        *,
        base: str,
        auth: AnimusAuth,
        stall_timeout: float | None = None,
    ) -> None:
        self.http = http
        self.credentials = credentials
        self.base = base.rstrip("/")
        self.auth = auth
        self.stall_timeout = stall_timeout
        self._tokens: list[str] = []

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every credential this object has sent or holds, for masking."""
        return (*self.credentials.secrets(), *self._tokens)

    @property
    def last_token(self) -> str | None:
        """The token sent last (``None`` before the first call)."""
        return self._tokens[-1] if self._tokens else None

    def url(self, path: str) -> str:
        """``path`` under the API root."""
        return f"{self.base}/{path.lstrip('/')}"

    async def send(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        accept: str = "application/json",
        retry: RetryPolicy | None = None,
    ) -> aiohttp.ClientResponse:
        """Send with ``Authorization: Bearer``; a 401 refreshes the token and retries once.

        Returns the response once its status is 2xx (the body unread).

        Raises:
            AuthenticationError: The key cannot be exchanged, a fresh token is
                refused as well, or a token given directly is refused.
            ProviderError: Any other error status, typed (see ``_errors``).
        """
        url = self.url(path)
        for attempt in (1, 2):
            token = await self.auth.token(self.http, self.credentials)
            if token not in self._tokens:
                self._tokens.append(token)
            try:
                return await self.http.send(
                    method,
                    url,
                    provider=PROVIDER,
                    headers={"Authorization": f"Bearer {token}", "Accept": accept},
                    json_body=json_body,
                    parse_error=error_parser(self.secrets),
                    retry=retry,
                    stall_timeout=self.stall_timeout,
                )
            except AuthenticationError as exc:
                if exc.status != 401:
                    raise
                if not self.credentials.refreshable:
                    exc.hint = (
                        f"the token given directly (token= or {TOKEN_ENV}) was refused; it may "
                        "have expired: give a fresh one, or the API key to exchange"
                    )
                    raise
                self.auth.invalidate(self.credentials, token)
                if attempt == 2:
                    exc.hint = "a freshly exchanged token was refused too: the key may lack access"
                    raise
                log.info("animus: the token was refused (401); exchanging the key again")
        raise AssertionError("unreachable")  # pragma: no cover

    async def json(
        self,
        method: str,
        path: str,
        *,
        what: str,
        json_body: Any = None,
        retry: RetryPolicy | None = None,
    ) -> Any:
        """:meth:`send`, then the whole JSON answer (``what`` names it in errors)."""
        response = await self.send(method, path, json_body=json_body, retry=retry)
        return await read_json_response(self.http, response, what=what, secrets=self.secrets)
