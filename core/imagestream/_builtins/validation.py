"""Built-in plugin ``validation``: prompt rules before any call, image checks after.

Prompt rules run in ``on_request``, before any network call: a length cap and a
configurable blocklist of words. Image payloads are checked in ``on_chunk``:
magic bytes must match the declared type, dimensions are read from the header
and capped in pixels (a decompression-bomb guard). By default only the start of
each payload is decoded for this; the whole payload is decoded strictly, once,
when its bytes are first used (``check_finals=True`` does it here instead).
Checked chunks come out with ``mime_type``, ``width`` and ``height`` filled in.

Configure the global instance through the environment
(``IMAGESTREAM_MAX_PROMPT_CHARS``, ``IMAGESTREAM_BLOCKLIST`` as comma-separated
words, ``IMAGESTREAM_MAX_IMAGE_PIXELS``), or give a
:class:`~imagestream.Pipeline` your own ``Validation(...)``. Switch it off with
``IMAGESTREAM_DISABLE_PLUGINS=validation``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

import attrs

from .. import _defaults
from .._chunks import Chunk, ImageFinal, ImagePreview
from .._image import ImageData
from .._sniff import image_size, sniff_mime
from ..errors import ConfigurationError, ImageValidationError, ValidationError
from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from .._context import RunContext
    from .._request import ImageRequest

__all__ = ["Validation"]

# JPEG is declared under several names in the wild.
_ALIASES = {
    "image/jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
}


def _normalise_mime(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().lower()
    return _ALIASES.get(value, value)


# PNG, GIF and WebP sizes sit in the first 32 bytes; a JPEG's comes after its
# APP segments (EXIF can reach ~64 KB), so read more only when needed.
_HEADER_STEPS = (64, 4096, 96 * 1024)


def _header(image: ImageData) -> bytes:
    """The shortest start of the payload whose header is readable (or the longest tried)."""
    head = b""
    for size in _HEADER_STEPS:
        head = image.head(size)
        if len(head) < size or image_size(head) is not None:
            break
    return head


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a whole number") from None


class Validation:
    """Prompt rules and image payload checks.

    Args:
        max_prompt_chars: Longest prompt accepted.
        blocklist: Words (case-insensitive, whole words) that refuse a prompt.
        max_image_pixels: Largest width × height accepted in an image.
        check_previews: How to check previews: ``"header"`` (default) reads only
            the start of the payload (type, dimensions, pixel cap) so a preview
            that is merely shown is never decoded whole; ``True`` checks them
            in full (strict base64 over the whole payload); ``False`` skips them.
        check_finals: The same for final images (``"header"`` by default): a
            relayed image is never decoded for nothing, and whoever does need
            the bytes gets them strictly decoded, or an
            :class:`~imagestream.ImageValidationError`, from ``image.data``.
            ``True`` decodes every final here, before the caller sees it.
    """

    def __init__(
        self,
        *,
        max_prompt_chars: int = _defaults.MAX_PROMPT_CHARS,
        blocklist: Iterable[str] = (),
        max_image_pixels: int = _defaults.MAX_IMAGE_PIXELS,
        check_previews: bool | Literal["header"] = "header",
        check_finals: bool | Literal["header"] = "header",
    ) -> None:
        self.max_prompt_chars = max_prompt_chars
        self.blocklist = tuple(w.strip().lower() for w in blocklist if w.strip())
        self.max_image_pixels = max_image_pixels
        self.check_previews = check_previews
        self.check_finals = check_finals
        self._pattern = (
            re.compile(r"\b(" + "|".join(re.escape(w) for w in self.blocklist) + r")\b", re.I)
            if self.blocklist
            else None
        )

    @classmethod
    def from_env(cls) -> Validation:
        """An instance configured from ``IMAGESTREAM_*`` environment variables."""
        env = os.environ
        return cls(
            max_prompt_chars=_env_int("IMAGESTREAM_MAX_PROMPT_CHARS", _defaults.MAX_PROMPT_CHARS),
            blocklist=env.get("IMAGESTREAM_BLOCKLIST", "").split(","),
            max_image_pixels=_env_int("IMAGESTREAM_MAX_IMAGE_PIXELS", _defaults.MAX_IMAGE_PIXELS),
        )

    def check_prompt(self, prompt: str) -> None:
        """Raise :class:`~imagestream.ValidationError` if the prompt breaks a rule."""
        if not prompt.strip():
            raise ValidationError("the prompt is empty", hint="say what to draw")
        if len(prompt) > self.max_prompt_chars:
            raise ValidationError(
                f"the prompt is {len(prompt)} characters long; the limit is {self.max_prompt_chars}",
                hint="shorten it, or raise IMAGESTREAM_MAX_PROMPT_CHARS",
            )
        if self._pattern is not None:
            match = self._pattern.search(prompt)
            if match:
                raise ValidationError(
                    f"the prompt contains the blocked word {match.group(1).lower()!r}",
                    hint="remove it, or change IMAGESTREAM_BLOCKLIST",
                )

    def check_image(
        self, chunk: ImagePreview | ImageFinal, *, full: bool = True
    ) -> ImagePreview | ImageFinal:
        """Check one image chunk; return it with type and size filled in from the bytes.

        With ``full=False`` only the first bytes are decoded: enough for the
        magic bytes and the header of every format imagestream reads.
        """
        what = "preview" if isinstance(chunk, ImagePreview) else "image"
        # Full: strict base64 decoding of the whole payload happens here.
        data = chunk.image.data if full else _header(chunk.image)
        sniffed = sniff_mime(data)
        if sniffed is None:
            raise ImageValidationError(
                f"{what} payload is not a PNG, JPEG, WebP or GIF image "
                f"({len(data)} bytes starting {data[:8].hex(' ') or 'with nothing'})"
            )
        declared = _normalise_mime(chunk.mime_type or chunk.image.declared_mime_type)
        if declared is not None and declared != sniffed:
            raise ImageValidationError(f"{what} declared as {declared} but its bytes are {sniffed}")
        size = image_size(data, sniffed)
        if size is None:
            raise ImageValidationError(f"{what} has an unreadable {sniffed} header")
        width, height = size
        if width * height > self.max_image_pixels:
            raise ImageValidationError(
                f"{what} is {width}x{height}, over the cap of {self.max_image_pixels} pixels",
                hint="raise IMAGESTREAM_MAX_IMAGE_PIXELS if this is expected",
            )
        if chunk.mime_type == sniffed and chunk.width == width and chunk.height == height:
            return chunk
        return attrs.evolve(chunk, mime_type=sniffed, width=width, height=height)

    @hookimpl
    def on_request(self, request: ImageRequest, context: RunContext) -> None:
        """Refuse prompts that break the rules, before any network call."""
        self.check_prompt(request.prompt)

    @hookimpl
    def on_chunk(self, chunk: Chunk, context: RunContext) -> Chunk | None:
        """Check image payloads; fill in their type and size."""
        if isinstance(chunk, ImageFinal) and self.check_finals:
            return self.check_image(chunk, full=self.check_finals is True)
        if isinstance(chunk, ImagePreview) and self.check_previews:
            return self.check_image(chunk, full=self.check_previews is True)
        return None
