"""Application Default Credentials for Vertex AI, through google-auth (the ``vertex`` extra).

``google.auth.default()`` finds credentials the way every Google tool does
(``GOOGLE_APPLICATION_CREDENTIALS``, ``gcloud auth application-default
login``, the metadata server); refreshing them is blocking I/O, so it runs in
a worker thread. Credentials are kept per provider object and refreshed only
when they are missing or expired.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from imagestream import AuthenticationError, ConfigurationError, Secret

__all__ = ["AdcTokens"]

_SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


class AdcTokens:
    """Access tokens from Application Default Credentials, cached and refreshed as needed."""

    def __init__(self) -> None:
        self._credentials: Any = None
        self._lock = threading.Lock()

    async def token(self) -> tuple[Secret, str | None]:
        """A valid access token and the credentials' quota project, if any."""
        return await asyncio.to_thread(self._token)

    def _token(self) -> tuple[Secret, str | None]:
        try:
            import google.auth
            import google.auth.exceptions
            import google.auth.transport.requests
        except ImportError:
            raise ConfigurationError(
                "vertex: Application Default Credentials need google-auth",
                hint="pip install 'imagestream-google[vertex]', or pass -o access_token / --key",
            ) from None
        with self._lock:
            try:
                if self._credentials is None:
                    self._credentials, _ = google.auth.default(scopes=_SCOPES)
                credentials = self._credentials
                if not credentials.valid:
                    credentials.refresh(google.auth.transport.requests.Request())
            except google.auth.exceptions.DefaultCredentialsError as exc:
                raise ConfigurationError(
                    f"vertex: no Application Default Credentials ({exc})",
                    hint="run 'gcloud auth application-default login', or pass --key for express mode",
                ) from None
            except google.auth.exceptions.GoogleAuthError as exc:
                raise AuthenticationError(
                    f"could not refresh the Google credentials: {type(exc).__name__}",
                    provider="vertex",
                ) from None
            return Secret(credentials.token), getattr(credentials, "quota_project_id", None)
