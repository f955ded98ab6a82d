"""Where a request goes and how it authenticates: the Gemini API, Vertex AI, express mode.

* Gemini API (AI Studio): ``{base}/{version}/models/{model}:{method}``, the
  key in the ``x-goog-api-key`` header (never in the URL, where proxies and
  logs would keep it).
* Vertex AI: ``{host}/{version}/projects/{project}/locations/{location}/
  publishers/google/models/{model}:{method}`` with an OAuth bearer token.
  The host follows the location: ``global`` → ``aiplatform.googleapis.com``,
  the multi-regions ``us``/``eu`` → ``aiplatform.{loc}.rep.googleapis.com``,
  any other region → ``{loc}-aiplatform.googleapis.com``.
* Vertex express mode: an API key instead of a token, and no project or
  location in the path: ``{host}/{version}/publishers/google/models/{model}:{method}``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import attrs

from imagestream import ConfigurationError, Secret
from imagestream.provider import redact

from ._version import __version__

__all__ = ["GEMINI_BASE_URL", "Endpoint", "vertex_host"]

GEMINI_BASE_URL = "https://generativelanguage.googleapis.com"

_USER_AGENT = f"imagestream-google/{__version__}"


def vertex_host(location: str) -> str:
    """The Vertex AI base URL for ``location`` (the rule google-genai follows)."""
    if location == "global":
        return "https://aiplatform.googleapis.com"
    if location in ("us", "eu"):
        return f"https://aiplatform.{location}.rep.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


def check_base_url(url: str, provider: str) -> str:
    """``url`` without a trailing slash, refused unless it is ``http(s)://host``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"{provider}: base_url must be an http:// or https:// URL, not {redact(url)!r}",
            hint="e.g. --base-url https://generativelanguage.googleapis.com",
        )
    return url.rstrip("/")


@attrs.frozen(repr=False)
class Endpoint:
    """Everything needed to address and authenticate one model.

    Attributes:
        base_url: Scheme and host (and a gateway's path prefix, if any).
        version: API version path segment (``v1``, ``v1beta``, ``v1beta1``).
        model_path: ``models/{id}``, or ``projects/.../publishers/google/models/{id}``.
        api_key: Sent as ``x-goog-api-key``, when the endpoint uses a key.
        token: Sent as ``Authorization: Bearer``, when it uses OAuth.
        user_project: ``x-goog-user-project`` (the quota project of the credentials).
    """

    base_url: str
    version: str
    model_path: str
    api_key: Secret | None = None
    token: Secret | None = None
    user_project: str | None = None

    def url(self, method: str) -> str:
        """The URL of ``method``: ``streamGenerateContent``, ``generateContent`` or ``predict``."""
        url = f"{self.base_url}/{self.version}/{self.model_path}:{method}"
        return url + "?alt=sse" if method == "streamGenerateContent" else url

    def headers(self, *, accept: str) -> dict[str, str]:
        """Request headers, credentials included (never log the result)."""
        headers = {
            "Content-Type": "application/json",
            "Accept": accept,
            "User-Agent": _USER_AGENT,
            "x-goog-api-client": _USER_AGENT,
        }
        if self.api_key is not None:
            headers["x-goog-api-key"] = self.api_key.get()
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token.get()}"
        if self.user_project:
            headers["x-goog-user-project"] = self.user_project
        return headers

    @property
    def secrets(self) -> tuple[Secret, ...]:
        """The credentials this endpoint sends, for redaction."""
        return tuple(secret for secret in (self.api_key, self.token) if secret is not None)

    def __repr__(self) -> str:
        auth = "key" if self.api_key else "token" if self.token else "none"
        where = redact(f"{self.base_url}/{self.version}/{self.model_path}")
        return f"Endpoint({where}, auth={auth})"
