"""Each streamed ``GenerateContentResponse`` turned into chunks, in the order they arrived.

Every SSE event (and a whole non-streamed body) is one response object:
``candidates[].content.parts[]`` hold text (``thought: true`` for the model's
reasoning), and whole images as ``inlineData``. Text becomes
:class:`~imagestream.TextDelta` (``thought=True`` kept apart from the answer),
each image an :class:`~imagestream.ImageFinal` numbered in arrival order (a
thought image, drawn while the model reasons, an
:class:`~imagestream.ImagePreview`). ``usageMetadata`` is cumulative and
repeated in every event: the last one becomes one :class:`~imagestream.Usage`
at the end.

How a reply ends decides whether the run succeeded: a safety or policy
``finishReason`` or a blocked prompt is a
:class:`~imagestream.ContentPolicyError` naming the reason; a reply that
ended without the image it was asked for is a
:class:`~imagestream.NoImageError` carrying the model's text. A stream that
stops before any ``finishReason`` is interrupted, and the pipeline keeps
what came.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from imagestream import (
    ContentPolicyError,
    ImageData,
    ImageFinal,
    ImagePreview,
    NoImageError,
    ProviderError,
    Secret,
    StreamInterruptedError,
    TextDelta,
    Usage,
)
from imagestream.provider import Chunk, redact

from ._errors import KEY_PATTERNS, error_from_object

__all__ = ["POLICY_REASONS", "ResponseReader", "summed", "usage_of"]

POLICY_REASONS = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
        "MODEL_ARMOR",
    }
)
"""Finish reasons that mean a safety or policy system stopped the reply."""

NO_IMAGE_REASONS = frozenset({"NO_IMAGE", "IMAGE_OTHER"})
"""Finish reasons that mean the model could not draw."""


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _by_modality(details: object) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in details if isinstance(details, list) else ():
        if isinstance(item, Mapping) and (tokens := _count(item.get("tokenCount"))) is not None:
            modality = str(item.get("modality", ""))
            counts[modality] = counts.get(modality, 0) + tokens
    return counts


def usage_of(metadata: Mapping[str, Any]) -> Usage:
    """``usageMetadata`` as :class:`~imagestream.Usage`, output split by modality.

    ``candidatesTokensDetails`` often itemises only the image tokens: the
    text tokens are then the rest of ``candidatesTokenCount``.
    """
    prompt = _count(metadata.get("promptTokenCount"))
    output = _count(metadata.get("candidatesTokenCount"))
    inputs = _by_modality(metadata.get("promptTokensDetails"))
    outputs = _by_modality(metadata.get("candidatesTokensDetails"))
    image_out = outputs.get("IMAGE")
    text_out = outputs.get("TEXT")
    if text_out is None and output is not None and outputs:
        text_out = output - sum(outputs.values())
    return Usage(
        input_tokens=prompt,
        output_tokens=output,
        total_tokens=_count(metadata.get("totalTokenCount")),
        input_text_tokens=inputs.get("TEXT") if inputs else None,
        input_image_tokens=inputs.get("IMAGE") if inputs else None,
        output_text_tokens=text_out,
        output_image_tokens=image_out,
        thought_tokens=_count(metadata.get("thoughtsTokenCount")),
        raw=metadata,
    )


def summed(hops: list[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The ``usageMetadata`` of several requests of one reply, added up (one hop: as it is)."""
    if len(hops) == 1:
        return hops[0]
    total: dict[str, Any] = {}
    for metadata in hops:
        for name, value in metadata.items():
            if (count := _count(value)) is not None:
                total[name] = total.get(name, 0) + count
            elif isinstance(value, list) and name.endswith("Details"):
                merged = _by_modality(total.get(name, [])) if name in total else {}
                for modality, tokens in _by_modality(value).items():
                    merged[modality] = merged.get(modality, 0) + tokens
                total[name] = [{"modality": m, "tokenCount": t} for m, t in merged.items()]
            else:
                total.setdefault(name, value)
    return total


class ResponseReader:
    """Turns a run's response objects into chunks; :meth:`finish` judges how it ended.

    Args:
        provider: ``"gemini"`` or ``"vertex"``, for errors.
        wants_image: Whether an image was asked for.
        secrets: Credentials to mask in any message quoted from the server.
        synthetic: Mark the chunks synthetic (a whole response, not a stream).
    """

    def __init__(
        self,
        provider: str,
        *,
        wants_image: bool,
        secrets: Iterable[Secret] = (),
        synthetic: bool = False,
    ) -> None:
        self.provider = provider
        self.synthetic = synthetic
        self.wants_image = wants_image
        self.secrets = tuple(secrets)
        self.images = 0
        self.previews = 0
        self.text: list[str] = []
        self.finish_reason: str | None = None
        self.finish_message: str | None = None
        self.usage: Mapping[str, Any] | None = None
        self.earlier_usage: list[Mapping[str, Any]] = []
        self.continuation_token: str | None = None
        self.facts: dict[str, Any] = {}

    def read(self, response: object) -> list[Chunk]:
        """The chunks of one response object (an SSE event's JSON)."""
        if not isinstance(response, Mapping):
            # Quoted from the server, so masked: it may echo the key back.
            quoted = redact(str(response), self.secrets, patterns=KEY_PATTERNS)[:80]
            raise ProviderError(
                f"an event is not a JSON object: {quoted!r}", provider=self.provider
            )
        error = response.get("error")
        if isinstance(error, Mapping):
            raise error_from_object(error, provider=self.provider, secrets=self.secrets)
        for name in ("modelVersion", "responseId"):
            if isinstance(response.get(name), str):
                self.facts[name] = response[name]
        if isinstance(response.get("usageMetadata"), Mapping):
            self.usage = response["usageMetadata"]
        feedback = response.get("promptFeedback")
        if isinstance(feedback, Mapping) and feedback.get("blockReason"):
            reason = str(feedback["blockReason"])
            detail = feedback.get("blockReasonMessage")
            raise ContentPolicyError(
                f"the prompt was blocked ({reason})" + (f": {detail}" if detail else ""),
                provider=self.provider,
                code=reason,
                hint="rephrase the prompt",
            )
        chunks: list[Chunk] = []
        candidates = response.get("candidates")
        for candidate in candidates if isinstance(candidates, list) else ():
            if not isinstance(candidate, Mapping):
                continue
            content = candidate.get("content")
            parts = content.get("parts") if isinstance(content, Mapping) else None
            for part in parts if isinstance(parts, list) else ():
                chunk = self._part(part) if isinstance(part, Mapping) else None
                if chunk is not None:
                    chunks.append(chunk)
            if isinstance(candidate.get("continuationToken"), str):
                self.continuation_token = candidate["continuationToken"]
            if candidate.get("finishReason"):
                self.finish_reason = str(candidate["finishReason"])
                message = candidate.get("finishMessage")
                self.finish_message = str(message) if message else None
        return chunks

    def continuation(self) -> str | None:
        """The token to resume with when this hop ended in ``CONTINUATION``; starts the next hop.

        Google may split one long reply into several requests: the reply's
        first part ends with ``finishReason: CONTINUATION`` and a
        ``continuationToken``, and the same request sent again with that
        token goes on where it stopped. Usage is then summed over the hops.
        """
        token = self.continuation_token if self.finish_reason == "CONTINUATION" else None
        if token is not None:
            if self.usage is not None:
                self.earlier_usage.append(self.usage)
            self.usage = None
            self.finish_reason = None
            self.continuation_token = None
        return token

    def _part(self, part: Mapping[str, Any]) -> Chunk | None:
        thought = part.get("thought") is True
        text = part.get("text")
        if isinstance(text, str):
            if not text:
                return None  # the empty part that carries the finish reason
            if not thought:
                self.text.append(text)
            return TextDelta(text, synthetic=self.synthetic, thought=thought)
        inline = part.get("inlineData")
        if not isinstance(inline, Mapping) or not isinstance(inline.get("data"), str):
            return None  # a function call, a file reference: nothing to show
        mime = inline.get("mimeType") if isinstance(inline.get("mimeType"), str) else None
        image = ImageData.from_base64(inline["data"], mime)
        if thought:
            # An interim image the model drew while thinking: a preview, not billed.
            self.previews += 1
            return ImagePreview(
                image,
                index=self.previews - 1,
                mime_type=mime,
                synthetic=self.synthetic,
                extra={"thought": True},
            )
        self.images += 1
        return ImageFinal(
            image,
            sample=self.images - 1,
            mime_type=mime,
            synthetic=self.synthetic,
            extra=dict(self.facts),
        )

    def finish(self) -> list[Chunk]:
        """The chunks the end of the reply adds (its usage), or the error it ended with.

        Raises:
            ContentPolicyError: A safety or policy finish reason.
            NoImageError: The reply ended without the image it was asked for.
            StreamInterruptedError: The stream ended before any finish reason.
        """
        reason = self.finish_reason
        said = "".join(self.text).strip()
        if reason is None:
            raise StreamInterruptedError(
                "the stream ended before the model finished (no finishReason)",
                provider=self.provider,
            )
        if reason in POLICY_REASONS:
            detail = f": {self.finish_message}" if self.finish_message else ""
            raise ContentPolicyError(
                f"the reply was stopped by Google's safety system ({reason}){detail}",
                provider=self.provider,
                code=reason,
                hint="rephrase the prompt",
            )
        if self.wants_image and not self.images:
            why = f"finishReason {reason}" + (
                f": {self.finish_message}" if self.finish_message else ""
            )
            quoted = f'; it said: "{said[:300]}"' if said else ""
            raise NoImageError(
                f"the model answered without an image ({why}){quoted}",
                provider=self.provider,
                code=reason,
                text=said,
                finish_reason=reason,
                hint="ask for an image explicitly in the prompt, or try again",
            )
        hops = [*self.earlier_usage, *([self.usage] if self.usage is not None else [])]
        if not hops:
            return []
        return [attrs.evolve(usage_of(summed(hops)), synthetic=self.synthetic)]
