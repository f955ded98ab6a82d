"""What a finished run returns: ``GenerationResult``, ``Analytics`` and ``SavedImage``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from ._chunks import Chunk, ImageFinal, ImagePreview, TextDelta, Usage

__all__ = ["Analytics", "GenerationResult", "SavedImage"]


@attrs.frozen
class SavedImage:
    """One image written by a saver.

    Attributes:
        path: Where it was written.
        mime_type: Its sniffed type.
        bytes: Its size in bytes.
        sha256: Hex SHA-256 of the bytes.
        width: Width from the header, when readable.
        height: Height from the header, when readable.
        sample: The sample index of the image.
    """

    path: Path
    mime_type: str | None
    bytes: int
    sha256: str
    width: int | None = None
    height: int | None = None
    sample: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (``path`` as a string) for JSON output."""
        out = attrs.asdict(self)
        out["path"] = str(self.path)
        return out


@attrs.frozen
class Analytics:
    """What the ``analytics`` middleware measured for one run. Times in seconds.

    Attributes:
        provider: Provider name.
        model: Model id, when known.
        total_s: From the start of the run to its end.
        first_chunk_s: To the first chunk of any kind.
        first_preview_s: To the first preview, if there was one.
        first_final_s: To the first final image, if there was one.
        chunks: Chunk count by kind (``"image_preview"``: 3, ...).
        image_bytes: Decoded bytes of every image payload, previews included.
        text_chars: Characters of text.
        input_tokens: Input tokens reported by the provider.
        output_tokens: Output tokens reported by the provider.
        cost_usd: Cost from the provider's price table, when it has one.
        first_progress_s: To the first :class:`~imagestream.Progress` chunk
            (a provider reporting progress without pictures), if there was one.
    """

    provider: str
    model: str | None
    total_s: float
    first_chunk_s: float | None
    first_preview_s: float | None
    first_final_s: float | None
    chunks: dict[str, int]
    image_bytes: int
    text_chars: int
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    first_progress_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output."""
        return attrs.asdict(self)


@attrs.define
class GenerationResult:
    """Everything one run produced. Mutable: middleware adds to it in ``on_result``.

    Attributes:
        provider: Provider name.
        model: Model id, when known.
        images: Final images, in arrival order.
        previews: Preview chunks, in arrival order: every one for
            :func:`~imagestream.generate` and :func:`~imagestream.agenerate`;
            the latest one only for a :func:`~imagestream.stream`, whose loop
            was handed each preview and keeps the ones it wants (a long run
            with previews at every step holds one picture, not all of them,
            and an error's ``partial`` still has the last one).
        text_parts: Text deltas of the answer as they came (:attr:`text` joins them).
        thought_parts: Text deltas of the model's reasoning (``thought=True``),
            kept apart from the answer (:attr:`thoughts` joins them).
        usage: The last usage reported, if any.
        analytics: Filled by the ``analytics`` middleware.
        saved: Images written by the saver.
        save_errors: Saves that failed (the images stay in :attr:`images`).
        replayed: True when the run was replayed from the generation cache
            (``cache=True``) instead of generated.
        dropped_previews: Previews the ``validation`` middleware dropped
            because their payload was broken (cut short, or base64 that does
            not decode): they were never yielded and are not in :attr:`previews`.
        preview_count: Previews that arrived (were yielded), whether or not
            :attr:`previews` still holds them.
    """

    provider: str
    model: str | None = None
    images: list[ImageFinal] = attrs.Factory(list)
    previews: list[ImagePreview] = attrs.Factory(list)
    text_parts: list[str] = attrs.Factory(list)
    thought_parts: list[str] = attrs.Factory(list)
    usage: Usage | None = None
    analytics: Analytics | None = None
    saved: list[SavedImage] = attrs.Factory(list)
    save_errors: list[Exception] = attrs.Factory(list)
    replayed: bool = False
    dropped_previews: int = 0
    preview_count: int = 0

    def add(self, chunk: Chunk, *, latest_preview_only: bool = False) -> None:
        """Record one chunk; with ``latest_preview_only``, a preview replaces the one held."""
        if isinstance(chunk, TextDelta):
            (self.thought_parts if chunk.thought else self.text_parts).append(chunk.text)
        elif isinstance(chunk, ImagePreview):
            if latest_preview_only:
                self.previews.clear()
            self.previews.append(chunk)
            self.preview_count += 1
        elif isinstance(chunk, ImageFinal):
            self.images.append(chunk)
        elif isinstance(chunk, Usage):
            self.usage = chunk

    @property
    def text(self) -> str:
        """All text, joined."""
        return "".join(self.text_parts)

    @property
    def thoughts(self) -> str:
        """The model's reasoning text, joined (empty when it showed none)."""
        return "".join(self.thought_parts)

    @property
    def image(self) -> ImageFinal | None:
        """The first final image, or ``None``."""
        return self.images[0] if self.images else None
