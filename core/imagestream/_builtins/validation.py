"""Built-in plugin ``validation``: prompt rules before any call, image checks after.

Prompt rules run in ``on_request``, before any network call: a length cap and a
configurable blocklist of words. Image payloads are checked as they arrive:
magic bytes must match the declared type, dimensions are read from the header
and capped in pixels (a decompression-bomb guard), and the image must end
where its format ends it, so a truncated image is caught: a PNG with its
``IEND`` chunk, a JPEG with its EOI marker (then at most 4 KiB of ``00`` or
whitespace padding), a WebP at the length its RIFF header gives (or one
padding byte later), a GIF with its ``3b`` trailer. By default only the first
and last bytes of each payload are decoded for this; the whole payload is
decoded, once, when its bytes are first used (``check_finals=True`` does it
here instead). Checked chunks come out with ``mime_type``, ``width`` and
``height`` filled in.

A broken payload (cut short, or base64 that does not decode) is handled by
kind. A final image raises :class:`~imagestream.ImageValidationError`, whose
``partial`` keeps the previews and text that did arrive. A preview is dropped
instead: it is never yielded, a debug line is logged on the ``imagestream``
logger, and the run's ``GenerationResult.dropped_previews`` counts it.
Previews are screened in a ``stream`` wrapper, before any ``on_chunk`` hook
sees them; finals in ``on_chunk``. Any other fault (not an image, not the
declared type, over the pixel cap) raises for previews and finals alike.

Configure the global instance through the environment
(``IMAGESTREAM_MAX_PROMPT_CHARS``, ``IMAGESTREAM_BLOCKLIST`` as comma-separated
words, ``IMAGESTREAM_MAX_IMAGE_PIXELS``), or give a
:class:`~imagestream.Pipeline` your own ``Validation(...)``. Switch it off with
``IMAGESTREAM_DISABLE_PLUGINS=validation``.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Generator, Iterable
from typing import TYPE_CHECKING, Literal

import attrs

from .. import _defaults
from .._chunks import Chunk, ImageFinal, ImagePreview
from .._image import ImageData
from .._sniff import TAIL_BYTES, image_size, incompleteness, sniff_mime
from ..errors import ConfigurationError, ImageValidationError, ValidationError
from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from .._context import RunContext
    from .._provider import Provider
    from .._request import ImageRequest
    from .._result import GenerationResult

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
# Enough of the end for a PNG's IEND chunk, a GIF's trailer and an unpadded
# JPEG's EOI marker: decoding TAIL_BYTES for every image would cost more.
_SHORT_TAIL = 16


def _header(image: ImageData) -> bytes:
    """The shortest start of the payload whose header is readable (or the longest tried)."""
    head = b""
    for size in _HEADER_STEPS:
        head = image.head(size)
        if len(head) < size or image_size(head) is not None:
            break
    return head


def _base64_fault(image: ImageData, what: str) -> str | None:
    """What is wrong with the payload's base64 (decoding it all, once), or ``None``."""
    try:
        image.data  # noqa: B018 - decoded and kept on the image
    except ImageValidationError as exc:
        return exc.message.replace("image payload", f"{what} payload", 1)
    return None


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
        # One state per instance: two Validation plugins in one pipeline each
        # screen the stream and count what they dropped.
        self._key = f"imagestream.validation.{id(self):x}"
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

        With ``full=False`` only the first and last bytes are decoded: enough
        for the magic bytes, the header of every format imagestream reads and
        the end of the image.

        Raises:
            ImageValidationError: The payload is not valid base64, not an
                image, not of its declared type, over the pixel cap, or cut
                short.
        """
        checked, broken = self._inspect(chunk, full=full)
        if broken is not None:
            raise ImageValidationError(
                broken,
                hint="it was damaged or cut short on the way; generating again usually helps",
            )
        return checked

    def _inspect(
        self, chunk: ImagePreview | ImageFinal, *, full: bool
    ) -> tuple[ImagePreview | ImageFinal, str | None]:
        """The checked chunk and, if its payload is broken, why; other faults raise.

        Broken: not valid base64, or cut short (its end is not where its
        format ends it). A final that is broken raises; a preview is dropped.
        """
        what = "preview" if isinstance(chunk, ImagePreview) else "image"
        image = chunk.image
        if full:
            broken = _base64_fault(image, what)
            if broken is not None:
                return chunk, broken
        try:
            return self._inspect_bytes(chunk, what, full=full)
        except ImageValidationError:
            if not full and image.arrived_as_base64:
                # The error path: a fault in the base64 is the one to report.
                broken = _base64_fault(image, what)
                if broken is not None:
                    return chunk, broken
            raise

    def _inspect_bytes(
        self, chunk: ImagePreview | ImageFinal, what: str, *, full: bool
    ) -> tuple[ImagePreview | ImageFinal, str | None]:
        image = chunk.image
        # Full: the whole payload is decoded (by _inspect, kept on the image).
        data = image.data if full else _header(image)
        sniffed = sniff_mime(data)
        if sniffed is None:
            if not data:
                raise ImageValidationError(f"{what} payload is empty")
            raise ImageValidationError(
                f"{what} payload is not a PNG, JPEG, WebP or GIF image "
                f"({len(data)} bytes starting {data[:8].hex(' ')})"
            )
        declared = _normalise_mime(chunk.mime_type or image.declared_mime_type)
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
        if full:
            nbytes = len(data)
            fault = incompleteness(data[:16], data[-TAIL_BYTES:], nbytes, sniffed)
        else:
            # Only a WebP's check needs the size (the others read their tail).
            nbytes = image.nbytes if sniffed == "image/webp" else 0
            # The last few bytes settle every format but a JPEG padded after
            # its EOI marker: only a fault found in them is looked at again
            # with every byte the check may need.
            tail = image.tail(_SHORT_TAIL)
            fault = incompleteness(data[:16], tail, nbytes, sniffed)
            if fault is not None and len(tail) == _SHORT_TAIL:
                fault = incompleteness(data[:16], image.tail(TAIL_BYTES), nbytes, sniffed)
            if fault is not None and not image.arrived_as_base64:
                nbytes = image.nbytes
            elif fault is not None:
                # The error path: decode it all, to report a base64 fault if
                # there is one, else what the whole bytes show.
                broken = _base64_fault(image, what)
                if broken is not None:
                    return chunk, broken
                decoded = image.data
                nbytes = len(decoded)
                fault = incompleteness(decoded[:16], decoded[-TAIL_BYTES:], nbytes, sniffed)
        broken = None
        if fault is not None:
            broken = f"{what} is an incomplete {sniffed} of {nbytes} bytes: {fault}"
        if chunk.mime_type == sniffed and chunk.width == width and chunk.height == height:
            return chunk, broken
        return attrs.evolve(chunk, mime_type=sniffed, width=width, height=height), broken

    @hookimpl
    def on_request(self, request: ImageRequest, context: RunContext) -> None:
        """Refuse prompts that break the rules, before any network call."""
        self.check_prompt(request.prompt)

    @hookimpl(wrapper=True)
    def stream(
        self, request: ImageRequest, provider: Provider, context: RunContext
    ) -> Generator[None, AsyncIterator[Chunk] | None, AsyncIterator[Chunk] | None]:
        """Screen the stream's previews: check them, drop the ones cut short."""
        inner = yield
        if inner is None or not self.check_previews:
            return inner
        return self._screen(inner, context)

    async def _screen(
        self, inner: AsyncIterator[Chunk], context: RunContext
    ) -> AsyncIterator[Chunk]:
        state = self._state(context)
        state.screening = True
        full = self.check_previews is True
        try:
            async for chunk in inner:
                if isinstance(chunk, ImagePreview):
                    checked, broken = self._inspect(chunk, full=full)
                    if broken is not None:
                        state.dropped_previews += 1
                        context.logger.debug(
                            "validation: dropped preview %d (step %s): %s",
                            chunk.index,
                            chunk.step,
                            broken,
                        )
                        continue
                    chunk = checked
                yield chunk
        finally:
            aclose = getattr(inner, "aclose", None)
            if aclose is not None:
                await aclose()

    @hookimpl
    def on_chunk(self, chunk: Chunk, context: RunContext) -> Chunk | None:
        """Check final images (previews too, when the stream was not screened)."""
        if isinstance(chunk, ImageFinal) and self.check_finals:
            return self.check_image(chunk, full=self.check_finals is True)
        if isinstance(chunk, ImagePreview) and self.check_previews:
            state = self._state(context) if context is not None else None
            if state is not None and state.screening:
                return None  # checked in stream(), before any on_chunk hook
            # Not screened by stream() (called directly, or a replayed stream):
            # too late to drop a broken preview, so it raises.
            return self.check_image(chunk, full=self.check_previews is True)
        return None

    @hookimpl
    def on_result(self, result: GenerationResult, context: RunContext) -> None:
        """Count the dropped previews on the result."""
        state = context.state.get(self._key)
        if isinstance(state, _RunState):
            result.dropped_previews += state.dropped_previews

    @hookimpl
    def on_error(self, error: BaseException, context: RunContext) -> None:
        """Count the dropped previews on the partial result of a failed run."""
        state = context.state.get(self._key)
        partial = getattr(error, "partial", None)
        if isinstance(state, _RunState) and partial is not None:
            partial.dropped_previews += state.dropped_previews

    def _state(self, context: RunContext) -> _RunState:
        state = context.state.get(self._key)
        if not isinstance(state, _RunState):
            state = context.state[self._key] = _RunState()
        return state


class _RunState:
    """What the validation middleware keeps for one run (in ``context.state``)."""

    __slots__ = ("dropped_previews", "screening")

    def __init__(self) -> None:
        self.screening = False
        self.dropped_previews = 0
