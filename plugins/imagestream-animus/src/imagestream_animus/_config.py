"""Where Animus lives and what it is called: URLs, versions, variable names, defaults."""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import urlsplit

from imagestream import ConfigurationError

from ._meta import KEY_ENV, PROVIDER

__all__ = [
    "AUTH_PATH",
    "DEFAULT_API_VERSION",
    "DEFAULT_CHAT_MODEL",
    "DEFAULT_HOST",
    "KEY_ENV",
    "PROVIDER",
    "REFRESH_MARGIN",
    "TOKEN_ENV",
    "api_base",
    "auth_url_for",
    "origin",
]

DEFAULT_HOST: Final = "https://api.animusai.co"
"""The API's host; the version is the first path segment (``/v3``)."""

DEFAULT_API_VERSION: Final = "v3"
"""What animus-client uses (``apiBaseUrl`` defaults to ``https://api.animusai.co/v3``);
docs.animusai.co shows ``/v2``."""

AUTH_PATH: Final = "/auth/generate-token"
"""The key-for-token exchange, at the host's root rather than under a version."""

TOKEN_ENV: Final = "ANIMUS_TOKEN"
"""A bearer token used as it is (no exchange, no refresh)."""

DEFAULT_CHAT_MODEL: Final = "vivian-llama3.1-70b-1.0-fp8"
"""The chat model the SDK's documentation configures."""

REFRESH_MARGIN: Final = 60.0
"""Seconds before a token's ``exp`` at which a new one is fetched (the SDK's buffer)."""

_VERSION = re.compile(r"v[0-9]+(?:\.[0-9]+)?")


def api_base(base_url: str | None, version: str | None) -> str:
    """The API root: ``base_url`` as given, else the default host with ``version``.

    Raises:
        ConfigurationError: ``version`` is not ``v<number>``, or ``base_url``
            is not an http(s) URL.
    """
    if base_url:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(
                f"{PROVIDER}: base_url must be an http(s) URL, not {base_url!r}",
                hint="e.g. --base-url https://api.animusai.co/v3",
            )
        return base_url.rstrip("/")
    version = (version or DEFAULT_API_VERSION).strip()
    if not _VERSION.fullmatch(version):
        raise ConfigurationError(
            f"{PROVIDER}: api_version must look like 'v3', not {version!r}",
            hint="the SDK uses v3, the REST documentation v2",
        )
    return f"{DEFAULT_HOST}/{version}"


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url`` (lower case), without credentials or path."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme.lower()}://{host}{port}"


def auth_url_for(base: str, explicit: str | None = None) -> str:
    """Where keys are exchanged: ``explicit``, else ``/auth/generate-token`` at ``base``'s origin."""
    if explicit:
        parts = urlsplit(explicit)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(
                f"{PROVIDER}: auth_url must be an http(s) URL, not {explicit!r}",
                hint="e.g. -o auth_url https://api.animusai.co/auth/generate-token",
            )
        return explicit
    return origin(base) + AUTH_PATH
