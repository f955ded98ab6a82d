"""Building a request's URL from a provider's base URL."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["api_url"]


def api_url(base_url: str, path: str, **params: str) -> str:
    """``base_url`` + ``path``, with ``params`` added to the base URL's own query.

    A query the base URL already carries (a proxy's token, an API version)
    is kept, and a trailing ``/`` on the base URL does not double the slash::

        api_url("http://127.0.0.1:8188/?token=t", "/view", filename="a.png")
        # 'http://127.0.0.1:8188/view?token=t&filename=a.png'
    """
    parts = urlsplit(base_url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(
        (parts.scheme, parts.netloc, parts.path.rstrip("/") + path, urlencode(query), "")
    )
