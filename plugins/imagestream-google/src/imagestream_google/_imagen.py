"""Imagen through Vertex AI's ``:predict``: a legacy, non-streaming path.

Google deprecated Imagen in favour of the Gemini image models; it stays for
users who have prompts tuned for it. The answer is one JSON body whose
``predictions`` are the images (``bytesBase64Encoded``, ``mimeType``); a
sample the safety filter removed comes back with ``raiFilteredReason`` and no
bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from imagestream import ContentPolicyError, ImageData, ImageFinal, ProviderError, ProviderResponse

__all__ = ["imagen_response"]


def imagen_response(body: object, *, provider: str) -> ProviderResponse:
    """A ``:predict`` body as a :class:`ProviderResponse`.

    Raises:
        ContentPolicyError: Every sample was filtered (the reasons are named).
        ProviderError: The body holds no prediction at all.
    """
    predictions = body.get("predictions") if isinstance(body, Mapping) else None
    if not isinstance(predictions, list) or not predictions:
        raise ProviderError("Imagen returned no prediction", provider=provider)
    images: list[ImageFinal] = []
    filtered: list[str] = []
    for item in predictions:
        if not isinstance(item, Mapping):
            continue
        data = item.get("bytesBase64Encoded")
        if isinstance(data, str) and data:
            mime = item.get("mimeType") if isinstance(item.get("mimeType"), str) else None
            extra: dict[str, Any] = {}
            if isinstance(item.get("prompt"), str):
                extra["enhanced_prompt"] = item["prompt"]
            images.append(
                ImageFinal(
                    ImageData.from_base64(data, mime),
                    sample=len(images),
                    mime_type=mime,
                    revised_prompt=extra.get("enhanced_prompt"),
                    extra=extra,
                )
            )
        elif item.get("raiFilteredReason"):
            filtered.append(str(item["raiFilteredReason"]))
    if not images:
        reasons = "; ".join(filtered) or "no reason given"
        raise ContentPolicyError(f"Imagen filtered every image ({reasons})", provider=provider)
    return ProviderResponse(images=images)
