"""Tests for ``imagestream.errors``: the hierarchy, messages and pickling."""

from __future__ import annotations

import inspect
import pickle
from pathlib import Path

import pytest

import imagestream
from imagestream import errors
from imagestream.errors import (
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

ALL_CLASSES = [getattr(errors, name) for name in errors.__all__]

# The tree from the module docstring: class -> its direct parent.
PARENTS: dict[type[Exception], type[Exception]] = {
    ImagestreamError: Exception,
    ConfigurationError: ImagestreamError,
    MissingAPIKeyError: ConfigurationError,
    ValidationError: ImagestreamError,
    ImageValidationError: ValidationError,
    PluginError: ImagestreamError,
    PluginLoadError: PluginError,
    UnknownProviderError: PluginError,
    UnknownDecoderError: PluginError,
    ProviderError: ImagestreamError,
    AuthenticationError: ProviderError,
    InvalidRequestError: ProviderError,
    ContentPolicyError: ProviderError,
    NoImageError: ProviderError,
    QuotaExceededError: ProviderError,
    RateLimitError: ProviderError,
    ConflictError: ProviderError,
    ServerError: ProviderError,
    APIConnectionError: ProviderError,
    APITimeoutError: APIConnectionError,
    StreamInterruptedError: ProviderError,
    UnexpectedResponseError: ProviderError,
    StreamDecodeError: ImagestreamError,
    StreamTruncatedError: StreamDecodeError,
    DecoderLimitError: StreamDecodeError,
    SaveError: ImagestreamError,
    UnsafePathError: SaveError,
}


def test_all_lists_every_error_class() -> None:
    defined = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, BaseException) and not name.startswith("_")
    }
    assert defined == set(errors.__all__)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_every_error_derives_from_imagestream_error(cls: type[Exception]) -> None:
    assert issubclass(cls, ImagestreamError)
    assert issubclass(cls, Exception)


@pytest.mark.parametrize(("cls", "parent"), list(PARENTS.items()), ids=lambda c: c.__name__)
def test_tree_matches_documentation(cls: type[Exception], parent: type[Exception]) -> None:
    assert cls.__bases__ == (parent,)


def test_tree_is_complete() -> None:
    assert set(PARENTS) == set(ALL_CLASSES)


@pytest.mark.parametrize("name", errors.__all__)
def test_errors_are_exported_from_the_package(name: str) -> None:
    assert getattr(imagestream, name) is getattr(errors, name)


def test_stream_interrupted_is_not_a_connection_error() -> None:
    """Retry logic treats these differently: data had already arrived."""
    assert not issubclass(StreamInterruptedError, APIConnectionError)


def test_str_includes_hint() -> None:
    error = ImagestreamError("it broke", hint="try again")
    assert str(error) == "it broke (try again)"
    assert error.message == "it broke"
    assert error.hint == "try again"
    assert error.partial is None
    assert error.args == ("it broke",)


def test_str_without_hint_is_the_message() -> None:
    assert str(ConfigurationError("bad option")) == "bad option"
    assert str(ConfigurationError("bad option", hint="")) == "bad option"


def test_errors_are_catchable_as_base() -> None:
    with pytest.raises(ImagestreamError):
        raise RateLimitError("slow down", provider="p", status=429)


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({}, "boom"),
        ({"provider": "openai"}, "openai: boom"),
        ({"status": 502}, "boom [HTTP 502]"),
        ({"provider": "openai", "status": 429}, "openai: boom [HTTP 429]"),
        ({"provider": "", "status": 0}, "boom [HTTP 0]"),
        ({"provider": "novelai", "hint": "wait a bit"}, "novelai: boom (wait a bit)"),
        (
            {"provider": "p", "status": 400, "hint": "check the size"},
            "p: boom [HTTP 400] (check the size)",
        ),
    ],
)
def test_provider_error_formatting(kwargs: dict[str, object], text: str) -> None:
    assert str(ProviderError("boom", **kwargs)) == text  # type: ignore[arg-type]


def test_provider_error_attributes() -> None:
    error = RateLimitError(
        "too many",
        provider="openai",
        status=429,
        request_id="req_1",
        code="rate_limit_exceeded",
        error_type="requests",
        retry_after=2.5,
        hint="slow down",
    )
    assert (error.provider, error.status, error.request_id) == ("openai", 429, "req_1")
    assert (error.code, error.error_type, error.retry_after) == (
        "rate_limit_exceeded",
        "requests",
        2.5,
    )
    assert error.hint == "slow down"
    assert error.message == "openai: too many [HTTP 429]"


def test_provider_error_defaults() -> None:
    error = ProviderError("x")
    assert error.provider is None
    assert error.status is None
    assert error.request_id is None
    assert error.code is None
    assert error.error_type is None
    assert error.retry_after is None
    assert error.hint is None


def test_missing_api_key_names_the_variable() -> None:
    error = MissingAPIKeyError("openai", "OPENAI_API_KEY")
    assert (error.provider, error.env_var) == ("openai", "OPENAI_API_KEY")
    assert "openai: no API key" in str(error)
    assert "OPENAI_API_KEY" in str(error)


def test_plugin_load_error_message() -> None:
    error = PluginLoadError("imagestream-foo", "ImportError: no module named foo")
    assert error.plugin == "imagestream-foo"
    assert str(error) == "plugin 'imagestream-foo' failed to load: ImportError: no module named foo"


def test_stream_decode_error_offset() -> None:
    assert str(StreamDecodeError("bad frame", offset=17)) == "bad frame at byte 17"
    assert str(StreamDecodeError("bad frame", offset=0)) == "bad frame at byte 0"
    assert str(StreamDecodeError("bad frame")) == "bad frame"
    assert StreamTruncatedError("cut", offset=3).offset == 3


def test_decoder_limit_error_names_the_limit() -> None:
    error = DecoderLimitError("max_event_bytes", 1_048_576, offset=2048, what="one SSE event")
    text = str(error)
    assert text.startswith("max_event_bytes=1048576 bytes exceeded (one SSE event) at byte 2048")
    assert "pass a larger max_event_bytes= to the decoder" in text
    assert (error.limit, error.value, error.offset) == ("max_event_bytes", 1_048_576, 2048)
    assert isinstance(error, StreamDecodeError)


def test_decoder_limit_error_minimal() -> None:
    assert str(DecoderLimitError("max_frame_bytes", 10)).startswith(
        "max_frame_bytes=10 bytes exceeded ("
    )


def test_save_error_path() -> None:
    error = UnsafePathError("refusing", path=Path("x/y.png"), hint="use a plain name")
    assert error.path == Path("x/y.png")
    assert str(error) == "refusing (use a plain name)"
    assert SaveError("no space").path is None


# --- pickling -----------------------------------------------------------------------------


def _round_trip(error: BaseException) -> BaseException:
    clone: BaseException = pickle.loads(pickle.dumps(error))
    return clone


PROVIDER_CLASSES = [cls for cls in ALL_CLASSES if issubclass(cls, ProviderError)]


@pytest.mark.parametrize("cls", PROVIDER_CLASSES, ids=lambda c: c.__name__)
def test_provider_errors_pickle_with_all_attributes(cls: type[ProviderError]) -> None:
    error = cls(
        "went wrong",
        provider="openai",
        status=503,
        request_id="req_9",
        code="overloaded",
        error_type="server",
        retry_after=1.5,
        hint="try later",
    )
    clone = _round_trip(error)
    assert type(clone) is cls
    assert vars(clone) == vars(error)
    assert str(clone) == str(error)
    assert clone.args == error.args


@pytest.mark.parametrize(
    "error",
    [
        ImagestreamError("base", hint="h"),
        ConfigurationError("bad size", hint="use WxH"),
        ValidationError("empty prompt"),
        ImageValidationError("not base64"),
        PluginError("plugin"),
        UnknownProviderError("no such provider"),
        UnknownDecoderError("no such decoder"),
        StreamDecodeError("bad", offset=5, hint="h"),
        StreamTruncatedError("cut", offset=9),
        SaveError("disk full", path=Path("a/b.png"), hint="free space"),
        UnsafePathError("escape", path=Path("../x")),
    ],
    ids=lambda e: type(e).__name__,
)
def test_other_errors_pickle(error: ImagestreamError) -> None:
    clone = _round_trip(error)
    assert type(clone) is type(error)
    assert vars(clone) == vars(error)
    assert str(clone) == str(error)


@pytest.mark.parametrize(
    "error",
    [
        MissingAPIKeyError("openai", "OPENAI_API_KEY"),
        PluginLoadError("imagestream-foo", "boom"),
        DecoderLimitError("max_event_bytes", 1024, offset=3, what="event"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_with_positional_arguments_pickle(error: ImagestreamError) -> None:
    clone = _round_trip(error)
    assert type(clone) is type(error)
    assert vars(clone) == vars(error)
    assert str(clone) == str(error)


def test_pickled_error_keeps_partial_attribute() -> None:
    error = ServerError("x", provider="p")
    clone = _round_trip(error)
    assert isinstance(clone, ServerError)
    assert clone.partial is None
    assert clone.hint is None
