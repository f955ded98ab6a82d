"""The server's settings, with their defaults in one place.

Loopback by default. Binding any other address needs a token, which every
API route then checks; the web page asks for it once. Limits cap what one
client, and all of them together, may ask of the providers.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import attrs

from imagestream import ConfigurationError, Secret

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "TOKEN_ENV", "ServerConfig"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787
"""``imagestream serve`` listens on http://127.0.0.1:8787 unless told otherwise."""

TOKEN_ENV = "IMAGESTREAM_SERVER_TOKEN"
"""Environment variable holding the server's access token."""


def _origins(value: object) -> tuple[str, ...]:
    return tuple(str(origin) for origin in value) if isinstance(value, list | tuple) else ()


def _secret(value: str | Secret | None) -> Secret | None:
    if value is None or isinstance(value, Secret):
        return value
    return Secret(value) if value.strip() else None


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (nothing else can reach them)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@attrs.frozen(repr=False)
class ServerConfig:
    """How the server runs.

    Attributes:
        host: Address to bind. Anything but loopback requires ``token``.
        port: TCP port.
        token: Access token checked on every API route (``Authorization: Bearer``).
        cors_origins: Origins allowed to call the API from a browser (empty: CORS off).
        out_dir: Where generated images are saved and served from (``/files/``).
        save: Save every final image to ``out_dir`` (the gallery, download
            links, ``response_format="url"``). ``False`` makes the server a pure
            relay: images reach the client inline and the server keeps nothing.
        default_provider: Provider used when a request names none.
        max_body_bytes: Largest request body (edits upload images).
        max_per_client: Generations one client may run at once.
        max_total: Generations the server runs at once.
        ping_interval: Seconds between SSE comment pings on a quiet stream.
        send_timeout: Seconds a client may take to accept bytes before it is dropped.
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: Secret | None = attrs.field(default=None, converter=_secret)
    cors_origins: tuple[str, ...] = attrs.field(default=(), converter=_origins)
    out_dir: Path = attrs.field(default=Path("generated-images"), converter=Path)
    save: bool = True
    default_provider: str | None = None
    max_body_bytes: int = 64 * 2**20
    max_per_client: int = 4
    max_total: int = 64
    ping_interval: float = 15.0
    send_timeout: float = 30.0

    def check(self) -> ServerConfig:
        """Refuse settings that would expose the server or cannot work.

        Raises:
            ConfigurationError: A non-loopback address without a token, or a bad limit.
        """
        if not is_loopback(self.host) and self.token is None:
            raise ConfigurationError(
                f"binding {self.host} exposes the server beyond this machine: a token is required",
                hint=f"pass --token or set {TOKEN_ENV}; or bind 127.0.0.1",
            )
        for name in ("max_body_bytes", "max_per_client", "max_total"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"{name} must be at least 1")
        if self.ping_interval <= 0 or self.send_timeout <= 0:
            raise ConfigurationError("ping_interval and send_timeout must be positive")
        return self

    @classmethod
    def token_from_env(cls) -> Secret | None:
        """The token in ``IMAGESTREAM_SERVER_TOKEN``, if set."""
        return _secret(os.environ.get(TOKEN_ENV))

    def __repr__(self) -> str:
        token = "set" if self.token else "none"
        saving = f"out_dir={str(self.out_dir)!r}" if self.save else "save=False"
        return f"ServerConfig({self.host}:{self.port}, token={token}, {saving})"
