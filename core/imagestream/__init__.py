"""imagestream: stream image generation from any AI provider through one chunk protocol.

::

    import imagestream

    async for chunk in imagestream.stream("a lighthouse at dusk"):
        match chunk:
            case imagestream.TextDelta(text=text): print(text, end="")
            case imagestream.ImagePreview(): show(chunk.image)
            case imagestream.ImageFinal(): chunk.image.save("out.png")

Names are imported lazily, so ``import imagestream`` stays cheap and loads no
plugin until one is needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import errors as _errors
from ._lazy import lazy_exports
from .hookspecs import hookimpl

if TYPE_CHECKING:
    from ._api import agenerate, generate, get_provider, list_providers, stream
    from ._builtins.analytics import Analytics as AnalyticsMiddleware
    from ._builtins.validation import Validation
    from ._chunks import Chunk, ImageFinal, ImagePreview, Progress, TextDelta, Usage
    from ._context import RunContext
    from ._convert import chunk_from_dict, chunk_to_dict, chunk_to_sse
    from ._decoding import Decoder, DecoderFactory, get_decoder
    from ._http import HttpClient
    from ._image import ImageData
    from ._logdb import LogWriteWarning, logs_enabled
    from ._pipeline import ChunkStream, Middleware, Pipeline, Postprocessor
    from ._plugins import (
        PluginInfo,
        PluginManager,
        get_plugin_manager,
        register_plugin,
        unregister_plugin,
    )
    from ._pool import aclose_shared_http as aclose_http_client
    from ._pool import shared_http as http_client
    from ._provider import ModelInfo, Pricing, Provider, ProviderResponse
    from ._request import ImageRequest, parse_size
    from ._result import Analytics, GenerationResult, SavedImage
    from ._retry import RetryPolicy
    from ._saving import SaveOptions
    from ._secret import Secret
    from ._status import error_for_status
    from .errors import (
        APIConnectionError,
        APITimeoutError,
        AuthenticationError,
        ConfigurationError,
        ConflictError,
        ContentPolicyError,
        DecoderLimitError,
        ImagestreamError,
        ImageValidationError,
        InvalidRequestError,
        MissingAPIKeyError,
        NoImageError,
        PluginError,
        PluginLoadError,
        ProviderError,
        QuotaExceededError,
        RateLimitError,
        SaveError,
        ServerError,
        StreamDecodeError,
        StreamInterruptedError,
        StreamTruncatedError,
        UnexpectedResponseError,
        UnknownDecoderError,
        UnknownProviderError,
        UnsafePathError,
        ValidationError,
    )
    from .progress import ProgressDisplay, show_progress

__version__ = "0.2.0"

_LAZY: dict[str, str] = {
    "stream": "._api",
    "agenerate": "._api",
    "generate": "._api",
    "get_provider": "._api",
    "list_providers": "._api",
    "logs_enabled": "._logdb",
    "LogWriteWarning": "._logdb",
    "Validation": "._builtins.validation",
    "Chunk": "._chunks",
    "ImageFinal": "._chunks",
    "ImagePreview": "._chunks",
    "TextDelta": "._chunks",
    "Usage": "._chunks",
    "Progress": "._chunks",
    "RunContext": "._context",
    "chunk_from_dict": "._convert",
    "chunk_to_dict": "._convert",
    "chunk_to_sse": "._convert",
    "Decoder": "._decoding",
    "DecoderFactory": "._decoding",
    "get_decoder": "._decoding",
    "HttpClient": "._http",
    "error_for_status": "._status",
    "ImageData": "._image",
    "ChunkStream": "._pipeline",
    "Pipeline": "._pipeline",
    "Middleware": "._pipeline",
    "Postprocessor": "._pipeline",
    "ProgressDisplay": ".progress",
    "show_progress": ".progress",
    "PluginInfo": "._plugins",
    "PluginManager": "._plugins",
    "get_plugin_manager": "._plugins",
    "register_plugin": "._plugins",
    "unregister_plugin": "._plugins",
    "ModelInfo": "._provider",
    "Pricing": "._provider",
    "Provider": "._provider",
    "ProviderResponse": "._provider",
    "ImageRequest": "._request",
    "Secret": "._secret",
    "parse_size": "._request",
    "Analytics": "._result",
    "GenerationResult": "._result",
    "SavedImage": "._result",
    "RetryPolicy": "._retry",
    "SaveOptions": "._saving",
}
_RENAMED = {
    "AnalyticsMiddleware": ("._builtins.analytics", "Analytics"),
    "http_client": ("._pool", "shared_http"),
    "aclose_http_client": ("._pool", "aclose_shared_http"),
}
_ERRORS = frozenset(_errors.__all__)  # the error classes are light: no lazy import needed

__all__ = [
    "APIConnectionError",
    "APITimeoutError",
    "Analytics",
    "AnalyticsMiddleware",
    "AuthenticationError",
    "Chunk",
    "ChunkStream",
    "ConfigurationError",
    "ConflictError",
    "ContentPolicyError",
    "Decoder",
    "DecoderFactory",
    "DecoderLimitError",
    "GenerationResult",
    "HttpClient",
    "ImageData",
    "ImageFinal",
    "ImagePreview",
    "ImageRequest",
    "ImageValidationError",
    "ImagestreamError",
    "InvalidRequestError",
    "LogWriteWarning",
    "Middleware",
    "MissingAPIKeyError",
    "ModelInfo",
    "NoImageError",
    "Pipeline",
    "PluginError",
    "PluginInfo",
    "PluginLoadError",
    "PluginManager",
    "Postprocessor",
    "Pricing",
    "Progress",
    "ProgressDisplay",
    "Provider",
    "ProviderError",
    "ProviderResponse",
    "QuotaExceededError",
    "RateLimitError",
    "RetryPolicy",
    "RunContext",
    "SaveError",
    "SaveOptions",
    "SavedImage",
    "Secret",
    "ServerError",
    "StreamDecodeError",
    "StreamInterruptedError",
    "StreamTruncatedError",
    "TextDelta",
    "UnexpectedResponseError",
    "UnknownDecoderError",
    "UnknownProviderError",
    "UnsafePathError",
    "Usage",
    "Validation",
    "ValidationError",
    "__version__",
    "aclose_http_client",
    "agenerate",
    "chunk_from_dict",
    "chunk_to_dict",
    "chunk_to_sse",
    "error_for_status",
    "generate",
    "get_decoder",
    "get_plugin_manager",
    "get_provider",
    "hookimpl",
    "http_client",
    "list_providers",
    "logs_enabled",
    "parse_size",
    "register_plugin",
    "show_progress",
    "stream",
    "unregister_plugin",
]


__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        **_LAZY,
        **{name: f"{module}:{attr}" for name, (module, attr) in _RENAMED.items()},
        **dict.fromkeys(_ERRORS, ".errors"),
    },
    __all__,
)
