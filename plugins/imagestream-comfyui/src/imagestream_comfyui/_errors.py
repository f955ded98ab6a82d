"""ComfyUI's errors as imagestream's: a refused workflow names its node, a failed run its exception.

``POST /prompt`` answers a workflow it cannot run with status 400 and
``{"error": {...}, "node_errors": {node_id: {"errors": [...], "class_type": ...}}}``;
a run that fails on the server sends ``execution_error`` on the WebSocket,
with the node, its type and the exception's type and message.
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
    StreamInterruptedError,
    error_for_status,
)
from imagestream.provider import redact

__all__ = [
    "PROVIDER",
    "ComfyUIExecutionError",
    "ComfyUINodeError",
    "checkpoint_missing",
    "execution_error",
    "no_checkpoints",
    "interrupted",
    "parse_error",
    "unreachable",
]

PROVIDER = "comfyui"

OOM_HINT = (
    "lower the size or the batch (n), use a smaller checkpoint, "
    "or close other programs that use the GPU"
)


class ComfyUINodeError(InvalidRequestError):
    """The server refused the workflow because of one of its nodes.

    Attributes:
        node_id: The node's id in the workflow.
        class_type: The node's type (``"KSampler"``).
        errors: The server's error objects for that node (``type``,
            ``message``, ``details``, ``extra_info``).
        node_errors: Every refused node, as the server sent them.
    """

    def __init__(
        self,
        message: str,
        *,
        node_id: str,
        class_type: str | None,
        errors: Sequence[Mapping[str, Any]] = (),
        node_errors: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.node_id = node_id
        self.class_type = class_type
        self.errors = list(errors)
        self.node_errors = dict(node_errors or {})


class ComfyUIExecutionError(ServerError):
    """The workflow failed while it ran on the server.

    ``code`` is ``"out_of_memory"`` when the GPU ran out of memory, else
    ``"execution_error"``.

    Attributes:
        node_id: The node that failed.
        class_type: Its type.
        exception_type: The exception's type on the server (``"torch.OutOfMemoryError"``).
    """

    def __init__(
        self,
        message: str,
        *,
        node_id: str | None,
        class_type: str | None,
        exception_type: str | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.node_id = node_id
        self.class_type = class_type
        self.exception_type = exception_type


def _node(node_id: object, class_type: object) -> str:
    if isinstance(class_type, str) and class_type:
        return f"node {node_id} ({class_type})"
    return f"node {node_id}"


def _describe(error: Mapping[str, Any]) -> str:
    message = str(error.get("message") or error.get("type") or "error")
    details = error.get("details")
    return f"{message}: {details}" if details else message


def parse_error(status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
    """The error for an error answer of the server (``send``'s ``parse_error``)."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, Mapping):
        hint = None
        if status == 404:
            hint = "is this a ComfyUI server? check base_url"
        error = error_for_status(
            status, text[:300] or "HTTP error", provider=PROVIDER, headers=headers
        )
        error.hint = error.hint or hint
        return error
    node_errors = data.get("node_errors")
    if isinstance(node_errors, Mapping) and node_errors:
        return node_error(node_errors, status)
    error_field = data.get("error")
    if isinstance(error_field, Mapping):
        message = _describe(error_field)
        code = error_field.get("type")
    else:
        message = str(error_field or data.get("message") or text[:300])
        code = None
    if status in _NOT_THE_WORKFLOW:
        # A login, a quota or a rate limit (a proxy in front of the server, say):
        # the status's own class, which says whether waiting helps.
        return error_for_status(status, message[:500], provider=PROVIDER, headers=headers)
    cls = InvalidRequestError if 400 <= status < 500 else None
    return error_for_status(
        status,
        f"the server refused the workflow: {message}",
        provider=PROVIDER,
        headers=headers,
        code=code if isinstance(code, str) else None,
        cls=cls,
    )


_NOT_THE_WORKFLOW = frozenset({401, 402, 403, 407, 408, 409, 429})
"""Error statuses about the request's sender, not its workflow."""


def node_error(node_errors: Mapping[str, Any], status: int | None = 400) -> ComfyUINodeError:
    """The error naming the first refused node (every node is kept in ``node_errors``)."""
    node_id, entry = next(iter(node_errors.items()))
    entry = entry if isinstance(entry, Mapping) else {}
    class_type = entry.get("class_type")
    listed = entry.get("errors")
    errors = [e for e in listed if isinstance(e, Mapping)] if isinstance(listed, list) else []
    said = "; ".join(_describe(e) for e in errors) or "refused"
    others = len(node_errors) - 1
    more = f" (and {others} more node{'s' if others > 1 else ''})" if others > 0 else ""
    code = "node_error"
    hint = "fix the input in the workflow, or the value that fills it"
    if any(
        e.get("type") == "value_not_in_list"
        and isinstance(e.get("extra_info"), Mapping)
        and e["extra_info"].get("input_name") == "ckpt_name"
        for e in errors
    ):
        code = "checkpoint_not_found"
        hint = (
            "the server has no such checkpoint: 'imagestream models -p comfyui' lists those it has"
        )
    return ComfyUINodeError(
        f"{_node(node_id, class_type)} refused the workflow: {said}{more}"[:1500],
        node_id=str(node_id),
        class_type=class_type if isinstance(class_type, str) else None,
        errors=errors,
        node_errors=node_errors,
        provider=PROVIDER,
        status=status,
        code=code,
        hint=hint,
    )


def execution_error(data: Mapping[str, Any]) -> ComfyUIExecutionError:
    """The error for an ``execution_error`` message."""
    node_id = data.get("node_id")
    class_type = data.get("node_type")
    exception_type = data.get("exception_type")
    message = redact(str(data.get("exception_message") or "").strip())
    first = message.splitlines()[0] if message else "an exception"
    out_of_memory = "outofmemory" in str(exception_type).lower().replace(" ", "") or (
        "out of memory" in message.lower()
    )
    if out_of_memory:
        text = f"the GPU ran out of memory in {_node(node_id, class_type)}: {first}"
        code, hint = "out_of_memory", OOM_HINT
    else:
        kind = f"{exception_type}: " if exception_type else ""
        text = f"{_node(node_id, class_type)} failed: {kind}{first}"
        code, hint = "execution_error", "the ComfyUI console shows the whole traceback"
    return ComfyUIExecutionError(
        text[:1500],
        node_id=str(node_id) if node_id is not None else None,
        class_type=class_type if isinstance(class_type, str) else None,
        exception_type=exception_type if isinstance(exception_type, str) else None,
        provider=PROVIDER,
        code=code,
        hint=hint,
    )


def interrupted(data: Mapping[str, Any]) -> StreamInterruptedError:
    """The error for an ``execution_interrupted`` message this run did not ask for."""
    where = ""
    if data.get("node_id") is not None:
        where = f" at {_node(data.get('node_id'), data.get('node_type'))}"
    return StreamInterruptedError(
        f"the run was interrupted on the server{where}",
        provider=PROVIDER,
        code="interrupted",
        hint="someone pressed Cancel in ComfyUI, or another client interrupted it",
    )


def no_checkpoints(*, listed: bool) -> InvalidRequestError:
    """The error for a run that needs the server's first checkpoint when there is none to take."""
    if listed:
        return InvalidRequestError(
            "the server has no checkpoints",
            provider=PROVIDER,
            code="checkpoint_not_found",
            hint="put a checkpoint in ComfyUI's models/checkpoints folder",
        )
    return InvalidRequestError(
        "the server does not list its checkpoints (GET /object_info/CheckpointLoaderSimple)",
        provider=PROVIDER,
        code="checkpoint_not_found",
        hint="name one with -m NAME",
    )


def checkpoint_missing(name: str, available: Sequence[str]) -> InvalidRequestError:
    """The error for a checkpoint the server does not have."""
    if available:
        listed = ", ".join(available[:8]) + (", ..." if len(available) > 8 else "")
        hint = f"the server has: {listed}"
    else:
        hint = "put a checkpoint in ComfyUI's models/checkpoints folder"
    return InvalidRequestError(
        f"the server has no checkpoint {name!r}",
        provider=PROVIDER,
        code="checkpoint_not_found",
        hint=hint,
    )


def unreachable(exc: APIConnectionError, base_url: str) -> APIConnectionError:
    """``exc`` asking whether ComfyUI runs where it was looked for, and how to start it."""
    shown = redact(base_url)
    reason = exc.message.removeprefix(f"{PROVIDER}: ")
    return type(exc)(
        f"is ComfyUI running at {shown}? ({reason})",
        provider=PROVIDER,
        status=exc.status,
        hint="start it (python main.py), or name another server with --base-url "
        "or COMFYUI_BASE_URL",
    )
