"""ComfyUI's WebSocket messages, turned into chunks and into the images to fetch.

Text messages are JSON objects ``{"type": ..., "data": {...}}``:

- ``status``: the queue (``data.status.exec_info.queue_remaining``), also sent on connecting;
- ``execution_start``, ``execution_cached``: a prompt starts, some nodes come from the cache;
- ``executing``: a node starts; ``node: null`` means the prompt is done;
- ``progress``: ``{value, max, prompt_id, node}``, ``value`` counting from 1;
- ``executed``: a node's output, with the images it saved (``output.images``:
  ``filename``, ``subfolder``, ``type``);
- ``execution_success``, ``execution_error``, ``execution_interrupted``: how it ended.

Binary messages start with a 4-byte big-endian event type. Type 1 is a
preview: a 4-byte image format (1 JPEG, 2 PNG), then the image. Type 4 (newer
servers, to clients that announce ``supports_preview_metadata``) is a
preview with a JSON header: a 4-byte length, the JSON (``prompt_id``,
``node_id``, ``image_type``, ...), then the image. Other types (3, a node's
progress text) are skipped.

Messages about other prompts (another client's, sharing the server) are
ignored. :class:`RunTranslator` knows nothing of the network: it is fed
messages and says what they mean.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Any

import attrs

from imagestream import Chunk, ImageData, ImagePreview, Progress

from ._errors import execution_error, interrupted

__all__ = ["BinaryPreview", "ImageRef", "RunTranslator", "parse_binary"]

PREVIEW_IMAGE = 1
PREVIEW_IMAGE_WITH_METADATA = 4
_FORMATS = {1: "image/jpeg", 2: "image/png"}


@attrs.frozen
class BinaryPreview:
    """A preview image from a binary message.

    Attributes:
        data: The image bytes.
        mime_type: What the message says they are.
        prompt_id: The prompt it belongs to, when the message says (type 4).
        node_id: The node that made it, when the message says.
    """

    data: bytes
    mime_type: str
    prompt_id: str | None = None
    node_id: str | None = None


def parse_binary(message: bytes) -> BinaryPreview | None:
    """The preview in a binary message; ``None`` for another kind or a malformed one."""
    if len(message) < 8:
        return None
    (event,) = struct.unpack_from(">I", message, 0)
    if event == PREVIEW_IMAGE:
        (image_format,) = struct.unpack_from(">I", message, 4)
        data = bytes(message[8:])
        return BinaryPreview(data, _FORMATS.get(image_format, "image/jpeg")) if data else None
    if event == PREVIEW_IMAGE_WITH_METADATA:
        (length,) = struct.unpack_from(">I", message, 4)
        if 8 + length >= len(message):
            return None
        try:
            metadata = json.loads(message[8 : 8 + length])
        except ValueError:
            return None
        if not isinstance(metadata, Mapping):
            return None
        mime = metadata.get("image_type")
        mime_type = mime if isinstance(mime, str) and mime in _FORMATS.values() else "image/jpeg"
        prompt_id = metadata.get("prompt_id")
        node_id = metadata.get("node_id")
        return BinaryPreview(
            bytes(message[8 + length :]),
            mime_type,
            prompt_id=prompt_id if isinstance(prompt_id, str) else None,
            node_id=str(node_id) if node_id is not None else None,
        )
    return None


@attrs.frozen
class ImageRef:
    """An image a node saved on the server, to fetch with ``GET /view``.

    Attributes:
        filename: The file's name.
        subfolder: Its folder under the server's directory (``""`` for none).
        type: Which directory: ``"output"`` (saved), ``"temp"`` (previewed), ``"input"``.
        node_id: The node that saved it.
    """

    filename: str
    subfolder: str
    type: str
    node_id: str | None = None


def image_refs(output: object, node_id: str | None) -> list[ImageRef]:
    """The images in a node's output (``{"images": [{filename, subfolder, type}, ...]}``)."""
    if not isinstance(output, Mapping):
        return []
    images = output.get("images")
    refs = []
    for item in images if isinstance(images, list) else ():
        if isinstance(item, Mapping) and isinstance(item.get("filename"), str):
            refs.append(
                ImageRef(
                    item["filename"],
                    str(item.get("subfolder") or ""),
                    str(item.get("type") or "output"),
                    node_id,
                )
            )
    return refs


class RunTranslator:
    """One run's messages in, chunks and images out.

    Feed every message to :meth:`text` or :meth:`binary`; each returns what
    to hand on: chunks, and :class:`ImageRef` s to fetch and yield as finals.
    :attr:`finished` turns true when the run has ended well; an error ends it
    by raising.

    Args:
        prompt_id: The run's prompt.
        total_steps: The step count the request asked for, shown until the
            server's own ``progress`` says otherwise (``None`` when unknown).
        keep_previews: Which previews to keep: ``None`` all, else the number
            wanted (``partial_images``), spread over the steps.
    """

    def __init__(
        self, prompt_id: str, *, total_steps: int | None = None, keep_previews: int | None = None
    ) -> None:
        self.prompt_id = prompt_id
        self.total_steps = total_steps
        self.keep_previews = keep_previews
        self.started = False
        self.finished = False
        self.ended = False  # finished, failed or interrupted: nothing left to cancel
        self.step: int | None = None
        self.node: str | None = None
        self.previews = 0
        self.saved: list[ImageRef] = []  # images of type "output" handed on
        self.temporary: list[ImageRef] = []  # previewed images, kept for a workflow that saves none
        self._queue: int | None = None

    # -- text ----------------------------------------------------------------

    def text(self, raw: str) -> list[Chunk | ImageRef]:
        """What a text message means for this run."""
        try:
            message = json.loads(raw)
        except ValueError:
            return []  # a custom node's chatter: not ours to judge
        if not isinstance(message, Mapping):
            return []
        kind = message.get("type")
        data = message.get("data")
        if not isinstance(kind, str) or not isinstance(data, Mapping):
            return []
        if kind == "status":
            return self._status(data)
        if not self._mine(data):
            return []
        handler = getattr(self, f"_on_{kind}", None)
        return handler(data) if handler is not None else []

    def _mine(self, data: Mapping[str, Any]) -> bool:
        prompt_id = data.get("prompt_id")
        if prompt_id is None:
            # Servers before prompt ids were sent everywhere: only while ours runs.
            return self.started
        return bool(prompt_id == self.prompt_id)

    def _status(self, data: Mapping[str, Any]) -> list[Chunk | ImageRef]:
        if self.started or self.finished:
            return []
        status = data.get("status")
        info = status.get("exec_info") if isinstance(status, Mapping) else None
        remaining = info.get("queue_remaining") if isinstance(info, Mapping) else None
        if (
            not isinstance(remaining, int)
            or isinstance(remaining, bool)
            or remaining == self._queue
        ):
            return []
        self._queue = remaining
        return [
            Progress(
                total_steps=self.total_steps,
                message="queued" if remaining <= 1 else f"queued ({remaining} in the queue)",
                extra={"queue_remaining": remaining},
            )
        ]

    def _on_execution_start(self, data: Mapping[str, Any]) -> list[Chunk | ImageRef]:
        self.started = True
        return []

    def _on_executing(self, data: Mapping[str, Any]) -> list[Chunk | ImageRef]:
        self.started = True
        node = data.get("node")
        if node is None:
            return self._finish()
        self.node = str(node)
        return []

    def _on_execution_success(self, data: Mapping[str, Any]) -> list[Chunk | ImageRef]:
        return self._finish()

    def _on_progress(self, data: Mapping[str, Any]) -> list[Chunk | ImageRef]:
        self.started = True
        value, maximum = data.get("value"), data.get("max")
        if not isinstance(value, int) or not isinstance(maximum, int):
            return []
        if isinstance(value, bool) or isinstance(maximum, bool) or value < 0 or maximum < 1:
            return []
        self.step = max(0, min(value, maximum) - 1)
        self.total_steps = maximum
        node = data.get("node")
        self.node = str(node) if node is not None else self.node
        return [
            Progress(
                step=self.step,
                total_steps=maximum,
                extra={"node": self.node} if self.node is not None else {},
            )
        ]

    def _on_executed(self, data: Mapping[str, Any]) -> list[Chunk | ImageRef]:
        node = data.get("node")
        refs = image_refs(data.get("output"), str(node) if node is not None else None)
        out: list[Chunk | ImageRef] = []
        for ref in refs:
            if ref.type == "output":
                if ref not in self.saved:
                    self.saved.append(ref)
                    out.append(ref)
            elif ref not in self.temporary:
                self.temporary.append(ref)
        return out

    def _on_execution_error(self, data: Mapping[str, Any]) -> list[Chunk | ImageRef]:
        self.ended = True
        raise execution_error(data)

    def _on_execution_interrupted(self, data: Mapping[str, Any]) -> list[Chunk | ImageRef]:
        self.ended = True
        raise interrupted(data)

    def _finish(self) -> list[Chunk | ImageRef]:
        if self.finished:
            return []
        self.finished = self.ended = True
        # A workflow that only previews its images (PreviewImage): those are its results.
        return list(self.temporary) if not self.saved else []

    # -- binary ----------------------------------------------------------------

    def binary(self, raw: bytes) -> list[Chunk | ImageRef]:
        """What a binary message means for this run: a preview, or nothing."""
        preview = parse_binary(raw)
        if preview is None or self.finished:
            return []
        if preview.prompt_id is not None:
            if preview.prompt_id != self.prompt_id:
                return []
        elif not self.started:
            return []
        if not self._wanted(self.step, self.total_steps):
            return []
        chunk = ImagePreview(
            ImageData.from_bytes(preview.data, preview.mime_type),
            index=self.previews,
            step=self.step,
            total_steps=self.total_steps if self.step is not None else None,
            mime_type=preview.mime_type,
            extra={"node": preview.node_id or self.node} if (preview.node_id or self.node) else {},
        )
        self.previews += 1
        return [chunk]

    def _wanted(self, step: int | None, total: int | None) -> bool:
        keep = self.keep_previews
        if keep is None:
            return True
        if keep <= 0:
            return False
        if step is None or not total or keep >= total:
            return self.previews < keep
        return step in {round((i + 1) * total / keep) - 1 for i in range(keep)}
