"""The web UI's error answers as imagestream's errors.

The API answers an exception with ``{"error": <its type>, "detail": ...,
"body": ..., "errors": <its text>}`` and the status the exception carries
(500 for an unexpected one, such as the GPU running out of memory); FastAPI's
own errors are ``{"detail": ...}`` (``"Not Found"`` for a path the server does
not have: the API is off; a list of problems for a body it cannot read).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from imagestream import (
    APIConnectionError,
    InvalidRequestError,
    ProviderError,
    ServerError,
    error_for_status,
)
from imagestream.provider import ErrorParser, redact

__all__ = ["PROVIDER", "checkpoint_missing", "error_parser", "parse_error", "unreachable"]

PROVIDER = "a1111"

OOM_HINT = (
    "lower the size, the batch (n) or the hires fix scale, use a smaller checkpoint, "
    "or start the web UI with --medvram or --lowvram"
)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, Sequence) and value:
        # FastAPI's validation errors: [{"loc": [...], "msg": ..., "type": ...}, ...]
        parts = []
        for item in value[:5]:
            if isinstance(item, Mapping):
                where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
                parts.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return ""


def parse_error(status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
    """The error for an error answer of the server (``send``'s ``parse_error``)."""
    raw = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if not isinstance(data, Mapping):
        data = {}
    kind = data.get("error") if isinstance(data.get("error"), str) else None
    detail = _text(data.get("detail"))
    errors = _text(data.get("errors"))
    said = detail or errors or kind or raw[:300] or "HTTP error"
    if kind and kind not in ("HTTPException", said) and not said.startswith(kind):
        said = f"{kind}: {said}"
    said = said[:500]
    if "outofmemory" in (kind or "").lower() or "out of memory" in said.lower():
        oom = error_for_status(
            status,
            f"the GPU ran out of memory: {said}",
            provider=PROVIDER,
            headers=headers,
            code="out_of_memory",
            cls=ServerError,
        )
        return _hinted(oom, OOM_HINT)
    error = error_for_status(status, said, provider=PROVIDER, headers=headers, error_type=kind)
    lowered = said.lower()
    if status == 401 or status == 403:
        return _hinted(
            error,
            "the web UI was started with --api-auth: pass --key user:password, "
            "set A1111_API_AUTH, or put user:password@ in the URL",
        )
    if status == 404 and detail == "Not Found":
        return _hinted(
            error, "start the web UI with --api (and check base_url)", code="api_not_enabled"
        )
    if "sampler not found" in lowered:
        return _hinted(
            error, "GET /sdapi/v1/samplers lists the server's samplers", code="sampler_not_found"
        )
    if "model not found" in lowered or ("checkpoint" in lowered and "not found" in lowered):
        return _hinted(
            error,
            "'imagestream models -p a1111' lists the server's checkpoints",
            code="checkpoint_not_found",
        )
    return error


def error_parser(secrets: Sequence[str]) -> ErrorParser:
    """:func:`parse_error`, with ``secrets`` (the login) masked in the body before it is read.

    The login goes as basic authentication, whose header holds it in base64:
    the client masks that form, this one the login itself, should the server
    quote it.
    """
    masked = tuple(secret for secret in secrets if secret)

    def parse(status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        if masked:
            body = redact(body.decode("utf-8", "replace"), masked).encode("utf-8")
        return parse_error(status, body, headers)

    return parse


def _hinted(error: ProviderError, hint: str, *, code: str | None = None) -> ProviderError:
    error.hint = error.hint or hint
    if code is not None:
        error.code = code
    return error


def checkpoint_missing(name: str, available: Sequence[str]) -> InvalidRequestError:
    """The error for a checkpoint the server does not have."""
    if available:
        listed = ", ".join(available[:8]) + (", ..." if len(available) > 8 else "")
        hint = f"the server has: {listed}"
    else:
        hint = "put a checkpoint in the web UI's models/Stable-diffusion folder"
    return InvalidRequestError(
        f"the server has no checkpoint {name!r}",
        provider=PROVIDER,
        code="checkpoint_not_found",
        hint=hint,
    )


def unreachable(exc: APIConnectionError, base_url: str) -> APIConnectionError:
    """``exc`` asking whether the web UI runs where it was looked for."""
    shown = redact(base_url)
    reason = exc.message.removeprefix(f"{PROVIDER}: ")
    return type(exc)(
        f"is the web UI (AUTOMATIC1111 or Forge) running at {shown} with --api? ({reason})",
        provider=PROVIDER,
        status=exc.status,
        hint="start it with --api (webui.sh --api, or COMMANDLINE_ARGS=--api), or name another "
        "server with --base-url or A1111_BASE_URL",
    )
