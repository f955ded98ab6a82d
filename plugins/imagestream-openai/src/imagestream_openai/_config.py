"""Where requests go and how they authenticate: base URL, organisation, project.

Settings come from the request first (``base_url=``/``--base-url``, the
``organization``/``project`` options), then from the environment variables the
official SDK reads, so a shell already set up for OpenAI works unchanged (the
key is read by the kit: ``Provider.key_env``). Gateways differ in small ways
(Azure's older deployments want an ``api-key`` header and an ``api-version``
query), which the ``auth_header`` and ``api_version`` options cover.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from urllib.parse import quote, urlsplit

import attrs

from imagestream.errors import ConfigurationError
from imagestream.provider import Secret, redact

from ._version import __version__

__all__ = [
    "DEFAULT_BASE_URL",
    "ENV_BASE_URL",
    "ENV_ORG",
    "ENV_PROJECT",
    "Endpoint",
    "env_organization",
    "env_project",
    "resolve_base_url",
]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
ENV_BASE_URL = "OPENAI_BASE_URL"
ENV_ORG = "OPENAI_ORG_ID"
ENV_PROJECT = "OPENAI_PROJECT_ID"

_USER_AGENT = f"imagestream-openai/{__version__}"


def resolve_base_url(given: str | None) -> str:
    """The API base URL without a trailing slash: the request's, ``OPENAI_BASE_URL``, or OpenAI's.

    Raises:
        ConfigurationError: The URL is not ``http(s)://host/...``.
    """
    url = (given or os.environ.get(ENV_BASE_URL, "").strip() or DEFAULT_BASE_URL).rstrip("/")
    if any(mark in url for mark in "@?#"):
        return _check_base_url(url)  # it may carry a credential: not kept in the cache
    return _checked_base_url(url)


def _check_base_url(url: str) -> str:
    hint = "e.g. --base-url https://api.openai.com/v1"
    try:
        parts = urlsplit(url)
        # Read here, so a bad port or host fails now, not inside the HTTP client.
        host, _ = parts.hostname, parts.port
    except ValueError as exc:
        raise ConfigurationError(
            f"openai: base_url {redact(url)!r} is not a URL: {redact(str(exc))}", hint=hint
        ) from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigurationError("openai: base_url must be an http:// or https:// URL", hint=hint)
    return url


# Parsed once per URL (a refused one raises, and is not cached).
_checked_base_url = functools.lru_cache(maxsize=64)(_check_base_url)


@attrs.frozen(repr=False)
class Endpoint:
    """Everything needed to address and authenticate one request.

    Attributes:
        base_url: API root, e.g. ``https://api.openai.com/v1``.
        api_key: The key; only :meth:`headers` ever reads it.
        organization: ``OpenAI-Organization`` header value, if any.
        project: ``OpenAI-Project`` header value, if any.
        auth_header: ``"bearer"`` (``Authorization: Bearer``) or ``"api-key"``.
        api_version: Appended as ``?api-version=`` (older Azure deployments).
        extra_headers: Sent with every request (gateways' own headers).
    """

    base_url: str
    api_key: Secret
    organization: str | None = None
    project: str | None = None
    auth_header: str = "bearer"
    api_version: str | None = None
    extra_headers: Mapping[str, str] = attrs.field(factory=dict)

    def url(self, path: str) -> str:
        """The full URL of an API path such as ``images/generations``."""
        url = f"{self.base_url}/{path}"
        if self.api_version:
            url += f"?api-version={quote(self.api_version, safe='')}"
        return url

    def headers(
        self, *, accept: str, content_type: str | None = "application/json"
    ) -> dict[str, str]:
        """Request headers, credentials included (never log the result)."""
        headers = {"Accept": accept, "User-Agent": _USER_AGENT}
        if content_type:
            headers["Content-Type"] = content_type
        if self.auth_header == "api-key":
            headers["api-key"] = self.api_key.get()
        else:
            headers["Authorization"] = f"Bearer {self.api_key.get()}"
        if self.organization:
            headers["OpenAI-Organization"] = self.organization
        if self.project:
            headers["OpenAI-Project"] = self.project
        headers.update(self.extra_headers)
        return headers

    def __repr__(self) -> str:
        return f"Endpoint({redact(self.base_url)!r}, api_key={self.api_key!r})"


def env_organization() -> str | None:
    """``OPENAI_ORG_ID``, if set."""
    return os.environ.get(ENV_ORG, "").strip() or None


def env_project() -> str | None:
    """``OPENAI_PROJECT_ID``, if set."""
    return os.environ.get(ENV_PROJECT, "").strip() or None
