"""Chunks to and from plain dicts, with a ``type`` tag, through ``cattrs``.

Two converters share one configuration and differ only in how an image payload
is written: the JSON one as base64 text, the msgpack one as raw bytes (msgpack
carries binary natively, so nothing is encoded for nothing).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Any, Literal

import attrs
import cattrs
from cattrs.strategies import configure_tagged_union

from ._chunks import CHUNK_TYPES, Chunk, ImageFinal, ImagePreview, Progress, TextDelta, Usage
from ._image import ImageData
from .errors import ValidationError

__all__ = ["chunk_from_dict", "chunk_to_dict", "chunk_to_sse", "converter"]

Flavor = Literal["json", "msgpack"]


def _tag(cls: type[Any]) -> str:
    return str(cls.kind)


@cache
def converter(flavor: Flavor = "json") -> cattrs.Converter:
    """The ready ``cattrs`` converter for chunks (``"json"`` or ``"msgpack"``)."""
    conv = cattrs.Converter(forbid_extra_keys=False)
    binary = flavor == "msgpack"

    def unstructure_image(image: ImageData) -> dict[str, Any]:
        out: dict[str, Any] = {"mime_type": image.mime_type}
        if binary:
            out["bytes"] = image.data
        else:
            out["b64"] = image.b64
        return out

    def structure_image(value: Mapping[str, Any], _: type[Any]) -> ImageData:
        mime = value.get("mime_type")
        if "bytes" in value:
            return ImageData.from_bytes(value["bytes"], mime)
        if "b64" in value:
            return ImageData.from_base64(value["b64"], mime)
        raise ValueError("an image needs 'b64' or 'bytes'")

    conv.register_unstructure_hook(ImageData, unstructure_image)
    conv.register_structure_hook(ImageData, structure_image)
    configure_tagged_union(
        TextDelta | ImagePreview | ImageFinal | Usage | Progress,
        conv,
        tag_generator=_tag,
        tag_name="type",
    )
    return conv


def chunk_to_dict(chunk: Chunk, *, flavor: Flavor = "json") -> dict[str, Any]:
    """Turn a chunk into a plain dict with a ``type`` tag.

    With ``flavor="json"`` (the default) the dict is JSON-safe: images are
    base64 strings, everything else strings, numbers, lists and dicts, so
    ``json.dumps`` takes it as it is. With ``"msgpack"`` images are raw bytes.
    """
    if not isinstance(chunk, CHUNK_TYPES):
        raise TypeError(f"not a chunk: {chunk!r}")
    result: dict[str, Any] = converter(flavor).unstructure(chunk, unstructure_as=Chunk)
    return result


def chunk_from_dict(data: Mapping[str, Any], *, flavor: Flavor = "json") -> Chunk:
    """Rebuild a chunk from :func:`chunk_to_dict` output (unknown keys are ignored).

    Raises:
        ValidationError: No ``type`` tag, an unknown one, or fields that do not fit.
    """
    kind = data.get("type") if isinstance(data, Mapping) else None
    if kind not in _KINDS:
        raise ValidationError(
            f"unknown chunk type {kind!r}", hint=f"expected one of {', '.join(sorted(_KINDS))}"
        )
    try:
        result: Chunk = converter(flavor).structure(data, Chunk)  # type: ignore[arg-type]
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError) as exc:
        raise ValidationError(f"malformed {kind} chunk: {exc}") from exc
    return result


_KINDS = frozenset(cls.kind for cls in CHUNK_TYPES)


def chunk_to_sse(chunk: Chunk, *, event_id: str | None = None) -> bytes:
    """One chunk as a server-sent event: the inverse of the ``sse`` decoder plus :func:`chunk_from_dict`.

    The event's name is the chunk's ``type`` and its data the compact JSON of
    :func:`chunk_to_dict` (images as base64), on one line: JSON escapes every
    newline, so no payload can end the event early. ``event_id`` becomes the
    ``id:`` field (what a browser's ``EventSource`` resends as
    ``Last-Event-ID`` when it reconnects)::

        event: image_final
        data: {"type":"image_final","image":{"mime_type":"image/png","b64":"iVBOR..."},...}

    Raises:
        ValueError: ``event_id`` contains a line break or NUL, which SSE cannot carry.
    """
    head = f"event: {chunk.kind}\n"
    if event_id is not None:
        if any(bad in event_id for bad in "\r\n\0"):
            raise ValueError("an SSE event id cannot contain a line break or NUL")
        head += f"id: {event_id}\n"
    if isinstance(chunk, ImagePreview | ImageFinal):
        event = _image_event(chunk, head)
        if event is not None:
            return event
    data = json.dumps(chunk_to_dict(chunk), separators=(",", ":"), ensure_ascii=False)
    return f"{head}data: {data}\n\n".encode()


# The fields of an image chunk other than its image, in the order
# chunk_to_dict writes them (attrs order, the type tag last).
_REST_FIELDS = {
    cls: tuple(field.name for field in attrs.fields(cls) if field.name != "image")
    for cls in (ImagePreview, ImageFinal)
}


def _image_event(chunk: ImagePreview | ImageFinal, head: str) -> bytes | None:
    """The event of an image chunk, written directly; ``None`` if ``extra`` is not plain JSON.

    The image is most of the event, and base64 needs no JSON escaping, so the
    JSON is written around it and the base64 bytes spliced in: one pass over
    the payload instead of five (encode, decode, scan, copy, re-encode), no
    base64 copy cached on the image, and no converter work per chunk (a relay
    sends thousands a second). The result is byte for byte what
    ``json.dumps(chunk_to_dict(chunk))`` gives (tested); provider facts in
    ``extra`` that JSON cannot take as they are (attrs objects, ...) go the
    converter's way instead.
    """
    rest = {name: getattr(chunk, name) for name in _REST_FIELDS[type(chunk)]}
    rest["type"] = chunk.kind
    try:
        tail = json.dumps(rest, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):
        return None
    image = chunk.image
    mime = json.dumps(image.mime_type, ensure_ascii=False)
    return b"".join(
        (
            f'{head}data: {{"image":{{"mime_type":{mime},"b64":"'.encode(),
            image.b64_bytes(),
            f'"}},{tail[1:]}\n\n'.encode(),
        )
    )
