"""The kit for provider authors: everything a provider needs, each once.

A provider maps one service's protocol to chunks and nothing else. Keys,
redaction, option reading, input images, the streaming HTTP call,
content-type checks and concurrency limits come from here, so every provider
behaves the same way where users can see it::

    from imagestream.provider import Options, Prepared, Provider, stream_events

What is here, by job:

========================  ==================================================
the provider              :class:`~imagestream.Provider`, :class:`~imagestream.ModelInfo`,
                          :class:`~imagestream.Pricing`, :class:`~imagestream.ProviderResponse`
                          (``.chunks()`` turns a whole response into
                          chunks), :class:`Prepared`, :class:`~imagestream.RunContext`;
                          :class:`LazyProvider` registers it without importing it
keys                      ``Provider.key_env`` / ``key_aliases`` read by
                          :meth:`Provider.api_key <imagestream.Provider.api_key>`; :func:`find_key`,
                          :func:`require_key`, :class:`KeyConflictWarning`,
                          :class:`~imagestream.Secret`
redaction                 :func:`redact` and its one :data:`MASK`
options                   :class:`Options` and the ``read_*`` functions;
                          :func:`did_you_mean`
input images              :func:`load_input_image`,
                          :func:`load_input_images`, :class:`InputImage`;
                          :func:`load_input_bytes` for opaque data
HTTP                      :class:`~imagestream.HttpClient` (``context.http``),
                          :func:`stream_events`, :func:`iter_events`,
                          :func:`read_json`, :func:`check_content_type`,
                          :func:`media_type`, :func:`~imagestream.error_for_status`,
                          :class:`~imagestream.RetryPolicy`,
                          :func:`parse_retry_after`; :func:`probe_json` asks
                          a server what it has, for listing it, blocking and
                          bounded
WebSockets                :func:`open_websocket`, :func:`iter_websocket`,
                          :class:`WebSocketConnection`, :class:`WebSocketMessage`
concurrency               ``Provider.max_concurrency`` and
                          :meth:`Provider.concurrency_key <imagestream.Provider.concurrency_key>`
========================  ==================================================

**Which error a bad value raises.** :class:`~imagestream.ConfigurationError`
when it cannot be read as the setting it is for (an unknown option name, the
wrong type, a word that is not one of the choices, a size that is not
``WIDTHxHEIGHT``, a file that does not exist);
:class:`~imagestream.ValidationError` when it is read but refused (a number
out of range, a combination the provider or model does not accept, an input
that is not an image). Both are raised by ``validate``, before any network
call. A missing key is :class:`~imagestream.MissingAPIKeyError`, a
``ConfigurationError``.

**Parse once.** ``validate`` returns ``Prepared(request, settings)``; the
pipeline puts ``settings`` on the run's context and ``stream`` / ``generate``
read it back with ``context.prepared_as(Settings)``, so a request is parsed,
and its input files read, once.

Everything here is public and follows the project's version: plugins pin a
compatible range (``imagestream>=0.2,<0.3``) and import nothing else from the
core's private modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

if TYPE_CHECKING:
    from ._base64 import decode_base64, encode_base64
    from ._chunks import Chunk, ImageFinal, ImagePreview, Progress, TextDelta, Usage
    from ._context import RunContext
    from ._decoding import Decoder
    from ._http import HttpClient
    from ._image import ImageData
    from ._inputs import (
        DEFAULT_INPUT_TYPES,
        MAX_INPUT_BYTES,
        InputImage,
        load_input_bytes,
        load_input_image,
        load_input_images,
    )
    from ._keys import KeyConflictWarning, find_key, require_key
    from ._options import (
        Options,
        did_you_mean,
        read_choice,
        read_flag,
        read_integer,
        read_list,
        read_mapping,
        read_number,
        read_size,
        read_text,
    )
    from ._probe import probe_json
    from ._provider import (
        LazyProvider,
        ModelInfo,
        OptionSpec,
        Prepared,
        Pricing,
        Provider,
        ProviderResponse,
    )
    from ._redact import MASK, redact
    from ._request import ImageRequest
    from ._retry import RetryPolicy, parse_retry_after
    from ._secret import Secret
    from ._status import ErrorParser, error_for_status
    from ._transport import (
        JSON_TYPES,
        check_content_type,
        iter_events,
        media_type,
        read_json,
        stream_events,
    )
    from ._urls import api_url
    from ._websocket import WebSocketConnection, WebSocketMessage, iter_websocket, open_websocket

__all__ = [
    "DEFAULT_INPUT_TYPES",
    "JSON_TYPES",
    "MASK",
    "MAX_INPUT_BYTES",
    "Chunk",
    "Decoder",
    "ErrorParser",
    "HttpClient",
    "ImageData",
    "ImageFinal",
    "ImagePreview",
    "ImageRequest",
    "InputImage",
    "KeyConflictWarning",
    "LazyProvider",
    "ModelInfo",
    "OptionSpec",
    "Options",
    "Prepared",
    "Pricing",
    "Progress",
    "Provider",
    "ProviderResponse",
    "RetryPolicy",
    "RunContext",
    "Secret",
    "TextDelta",
    "Usage",
    "WebSocketConnection",
    "WebSocketMessage",
    "api_url",
    "check_content_type",
    "decode_base64",
    "did_you_mean",
    "encode_base64",
    "error_for_status",
    "find_key",
    "iter_events",
    "iter_websocket",
    "load_input_bytes",
    "load_input_image",
    "load_input_images",
    "media_type",
    "open_websocket",
    "parse_retry_after",
    "lazy_exports",
    "probe_json",
    "read_choice",
    "read_flag",
    "read_integer",
    "read_json",
    "read_list",
    "read_mapping",
    "read_number",
    "read_size",
    "read_text",
    "redact",
    "require_key",
    "stream_events",
]

# Imported on first use, like the top-level package: a plugin's entry module
# that imports this kit must not pay for aiohttp or asyncio at start-up.
_LAZY: dict[str, str] = {
    "check_content_type": "._transport",
    "Chunk": "._chunks",
    "decode_base64": "._base64",
    "Decoder": "._decoding",
    "DEFAULT_INPUT_TYPES": "._inputs",
    "did_you_mean": "._options",
    "encode_base64": "._base64",
    "error_for_status": "._status",
    "ErrorParser": "._status",
    "find_key": "._keys",
    "HttpClient": "._http",
    "ImageData": "._image",
    "ImageFinal": "._chunks",
    "ImagePreview": "._chunks",
    "ImageRequest": "._request",
    "InputImage": "._inputs",
    "iter_events": "._transport",
    "JSON_TYPES": "._transport",
    "KeyConflictWarning": "._keys",
    "LazyProvider": "._provider",
    "load_input_image": "._inputs",
    "load_input_images": "._inputs",
    "load_input_bytes": "._inputs",
    "MASK": "._redact",
    "MAX_INPUT_BYTES": "._inputs",
    "media_type": "._transport",
    "ModelInfo": "._provider",
    "Options": "._options",
    "OptionSpec": "._provider",
    "parse_retry_after": "._retry",
    "Prepared": "._provider",
    "probe_json": "._probe",
    "Pricing": "._provider",
    "Provider": "._provider",
    "ProviderResponse": "._provider",
    "read_choice": "._options",
    "read_flag": "._options",
    "read_integer": "._options",
    "read_list": "._options",
    "read_json": "._transport",
    "read_mapping": "._options",
    "read_number": "._options",
    "read_size": "._options",
    "read_text": "._options",
    "redact": "._redact",
    "require_key": "._keys",
    "RetryPolicy": "._retry",
    "RunContext": "._context",
    "Secret": "._secret",
    "stream_events": "._transport",
    "TextDelta": "._chunks",
    "Usage": "._chunks",
    "api_url": "._urls",
    "Progress": "._chunks",
    "open_websocket": "._websocket",
    "iter_websocket": "._websocket",
    "WebSocketConnection": "._websocket",
    "WebSocketMessage": "._websocket",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__, package="imagestream")
