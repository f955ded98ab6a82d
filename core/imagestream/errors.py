"""The one exception hierarchy of imagestream.

Every error that imagestream or a plugin raises on purpose derives from
:class:`ImagestreamError`, so ``except imagestream.ImagestreamError`` catches
them all. The tree, drawn once::

    ImagestreamError
    ├── ConfigurationError          bad settings: unknown option, bad size, ...
    │   └── MissingAPIKeyError      no key; says which variable to set
    ├── ValidationError             refused locally, before any network call
    │   └── ImageValidationError    an image payload failed a check
    ├── PluginError                 a plugin could not be loaded or used
    │   ├── PluginLoadError
    │   ├── UnknownProviderError
    │   └── UnknownDecoderError
    ├── ProviderError               the provider said no, or the link broke
    │   ├── AuthenticationError     401 / 403, bad or revoked key
    │   ├── InvalidRequestError     400 / 404 / 422, the provider refused the input
    │   ├── ContentPolicyError      moderation / safety refusal
    │   ├── NoImageError            the model answered, but drew no image
    │   ├── QuotaExceededError      out of credit (402, insufficient_quota)
    │   ├── RateLimitError          429 or "too many concurrent generations"
    │   ├── ConflictError           409
    │   ├── ServerError             5xx
    │   ├── APIConnectionError      could not connect, reset before any data
    │   │   └── APITimeoutError     connect timeout or a stall between chunks
    │   ├── StreamInterruptedError  the stream broke after data had arrived
    │   └── UnexpectedResponseError 2xx, but not the content type asked for
    ├── StreamDecodeError           bytes that are not the promised format
    │   ├── StreamTruncatedError    the stream ended inside an event or frame
    │   └── DecoderLimitError       a configured size limit was exceeded
    └── SaveError                   an image could not be written
        └── UnsafePathError         a refused name: outside the folder, control characters

Errors carry facts a caller can act on (``provider``, ``status``,
``request_id``, ``retry_after``, ...) and never an API key: the key is not
passed to any constructor here, and provider plugins redact it from bodies
they quote.

When a stream fails after chunks have arrived, the pipeline attaches what was
received to the error as :attr:`ImagestreamError.partial` so that nothing is
lost: previews, text and any final images that did come.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from ._result import GenerationResult

__all__ = [
    "APIConnectionError",
    "APITimeoutError",
    "AuthenticationError",
    "ConfigurationError",
    "ConflictError",
    "ContentPolicyError",
    "DecoderLimitError",
    "ImageValidationError",
    "ImagestreamError",
    "InvalidRequestError",
    "MissingAPIKeyError",
    "NoImageError",
    "PluginError",
    "PluginLoadError",
    "ProviderError",
    "QuotaExceededError",
    "RateLimitError",
    "SaveError",
    "ServerError",
    "StreamDecodeError",
    "StreamInterruptedError",
    "StreamTruncatedError",
    "UnexpectedResponseError",
    "UnknownDecoderError",
    "UnknownProviderError",
    "UnsafePathError",
    "ValidationError",
]


class ImagestreamError(Exception):
    """Base class of every error imagestream raises on purpose.

    Attributes:
        message: The human sentence, also ``str(error)``.
        hint: What to do next, when there is something to do (may be ``None``).
        partial: What a failed run had received before it failed (a
            :class:`~imagestream.GenerationResult`), set by the pipeline.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.partial: GenerationResult | None = None

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take other constructor arguments than the message, so
        # rebuild from the instance state instead of calling __init__ again
        # (errors must survive multiprocessing and concurrent.futures).
        return (_rebuild, (type(self), self.__dict__))


def _rebuild(cls: type[ImagestreamError], state: dict[str, Any]) -> ImagestreamError:
    err = cls.__new__(cls)
    Exception.__init__(err, state.get("message", ""))
    err.__dict__.update(state)
    return err


class ConfigurationError(ImagestreamError):
    """A setting cannot be read: an unknown option name, the wrong type, a word
    that is not one of the choices, a size that is not WxH, a missing file."""


class MissingAPIKeyError(ConfigurationError):
    """A provider needs a key and none was given.

    Attributes:
        provider: The provider that asked.
        env_var: The environment variable that would supply the key.
    """

    def __init__(self, provider: str, env_var: str) -> None:
        super().__init__(
            f"{provider}: no API key",
            hint=f"set {env_var}, run 'imagestream keys set {provider}', or pass --key / api_key=",
        )
        self.provider = provider
        self.env_var = env_var


class ValidationError(ImagestreamError):
    """The request was read but refused locally, before any network call: a
    value out of range, a combination the provider or model does not accept."""


class ImageValidationError(ValidationError):
    """An image payload failed a check: bad base64, wrong magic bytes, too many pixels."""


class PluginError(ImagestreamError):
    """A plugin could not be loaded, or something it registered is unusable."""


class PluginLoadError(PluginError):
    """A plugin failed to import or register (raised only in strict mode).

    Attributes:
        plugin: The entry point or plugin name.
    """

    def __init__(self, plugin: str, message: str) -> None:
        super().__init__(f"plugin {plugin!r} failed to load: {message}")
        self.plugin = plugin


class UnknownProviderError(PluginError):
    """No installed plugin registered a provider of that name."""


class UnknownDecoderError(PluginError):
    """No installed plugin registered a stream decoder of that name."""


class ProviderError(ImagestreamError):
    """The provider refused the request, failed, or the connection to it broke.

    Attributes:
        provider: Name of the provider (``"openai"``), when known.
        status: HTTP status code, when there was one.
        request_id: The provider's request id (for support tickets), when sent.
        code: The provider's machine-readable error code, when sent.
        error_type: The provider's error type, when sent.
        retry_after: Seconds the provider asked us to wait, when it said.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        code: str | None = None,
        error_type: str | None = None,
        retry_after: float | None = None,
        hint: str | None = None,
    ) -> None:
        prefix = f"{provider}: " if provider else ""
        suffix = f" [HTTP {status}]" if status is not None else ""
        super().__init__(f"{prefix}{message}{suffix}", hint=hint)
        self.provider = provider
        self.status = status
        self.request_id = request_id
        self.code = code
        self.error_type = error_type
        self.retry_after = retry_after

    @property
    def retry_after(self) -> float | None:
        """Seconds to wait before retrying, when the provider said: ``None`` or finite in [0, cap]."""
        return self._retry_after

    @retry_after.setter
    def retry_after(self, value: float | None) -> None:
        # Whoever sets it (a header, a provider's parser, a body's "retryDelay"),
        # a caller's sleep(retry_after) always returns: see clamp_retry_after.
        from ._retry import clamp_retry_after

        self._retry_after = clamp_retry_after(value)


class AuthenticationError(ProviderError):
    """The key was missing on the server side, wrong, or not allowed (401 / 403)."""


class InvalidRequestError(ProviderError):
    """The provider refused the input (400 / 404 / 422): unknown parameter, bad size, ..."""


class ContentPolicyError(ProviderError):
    """The provider's safety system refused the prompt or the image."""


class NoImageError(ProviderError):
    """The model finished without an image although one was asked for.

    Never a "successful" run with zero images: what the model said instead is
    kept, because it usually says why ("I can't draw real people..."). The
    pipeline raises it for any run whose provider ends, without an error,
    having sent no final image; providers raise it themselves when they know
    why (a refusal, a failed image call).

    Attributes:
        text: The text the model answered with (may be empty).
        finish_reason: The provider's reason for stopping, when it gave one.
    """

    def __init__(
        self, message: str, *, text: str = "", finish_reason: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.text = text
        self.finish_reason = finish_reason


class QuotaExceededError(ProviderError):
    """The account is out of credit or needs a subscription (402, ``insufficient_quota``)."""


class RateLimitError(ProviderError):
    """Too many requests (429), or the account's concurrent-generation lock is taken."""


class ConflictError(ProviderError):
    """The provider reported a conflict (409)."""


class ServerError(ProviderError):
    """The provider failed on its side (5xx)."""


class APIConnectionError(ProviderError):
    """No answer: the connection could not be made or broke before any data arrived."""


class APITimeoutError(APIConnectionError):
    """Connecting took too long, or the stream stalled longer than the stall timeout."""


class StreamInterruptedError(ProviderError):
    """The stream broke after data had arrived; :attr:`partial` holds what came."""


class UnexpectedResponseError(ProviderError):
    """A 2xx answer that is not what was asked for: an HTML page, or JSON instead of a stream.

    Proxies, captive portals and misconfigured gateways answer 200 with a page
    of their own; the message quotes its first bytes instead of letting a
    decoder fail on them.

    Attributes:
        content_type: The media type the server declared (``""`` when none).
    """

    def __init__(self, message: str, *, content_type: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.content_type = content_type


class StreamDecodeError(ImagestreamError):
    """Bytes that are not the format the decoder expects.

    Attributes:
        offset: Byte offset in the stream where the problem was found, when known.
    """

    def __init__(self, message: str, *, offset: int | None = None, hint: str | None = None) -> None:
        where = f" at byte {offset}" if offset is not None else ""
        super().__init__(f"{message}{where}", hint=hint)
        self.offset = offset


class StreamTruncatedError(StreamDecodeError):
    """The stream ended inside an event or frame: the last message is incomplete."""


class DecoderLimitError(StreamDecodeError):
    """A size limit was exceeded; the message names the limit and how to raise it.

    Attributes:
        limit: The name of the limit (the decoder's keyword argument).
        value: The configured value, in bytes.
    """

    def __init__(
        self, limit: str, value: int, *, offset: int | None = None, what: str = ""
    ) -> None:
        detail = f" ({what})" if what else ""
        super().__init__(
            f"{limit}={value} bytes exceeded{detail}",
            offset=offset,
            hint=f"pass a larger {limit}= to the decoder if this stream is legitimate",
        )
        self.limit = limit
        self.value = value


class SaveError(ImagestreamError):
    """An image could not be written. The image itself is kept.

    Attributes:
        path: The path that was being written, when known.
    """

    def __init__(self, message: str, *, path: Path | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.path = path


class UnsafePathError(SaveError):
    """A path was refused: a file name that would land outside the output
    directory, or a path holding a control character (NUL, newline, tab,
    other C0 characters, DEL)."""
