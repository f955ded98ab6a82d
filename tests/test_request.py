"""Tests for ``imagestream._request``: ``Secret``, ``parse_size`` and ``ImageRequest``."""

from __future__ import annotations

import logging
import pickle

import attrs
import pytest

from imagestream._request import ImageRequest, Secret, parse_size
from imagestream.errors import ConfigurationError

KEY = "sk-test-0123456789abcdefSECRET"


def test_secret_get_returns_the_value() -> None:
    assert Secret(KEY).get() == KEY


def test_secret_never_shows_in_text() -> None:
    secret = Secret(KEY)
    renderings = [
        repr(secret),
        str(secret),
        f"{secret}",
        f"{secret!r}",
        f"{secret!s}",
        "%s %r" % (secret, secret),  # noqa: UP031 - old-style formatting is what loggers use
        "{}".format(secret),  # noqa: UP032
        repr([secret]),
        repr({"key": secret}),
    ]
    for text in renderings:
        assert KEY not in text
        assert "SECRET" not in text
        assert "*" in text


def test_secret_never_shows_in_request_repr() -> None:
    request = ImageRequest("a cat", api_key=KEY)
    for text in (repr(request), str(request), f"{request}", f"{request!r}"):
        assert KEY not in text
        assert "api_key=Secret('**********')" in text


def test_secret_never_shows_in_log_records(caplog: pytest.LogCaptureFixture) -> None:
    request = ImageRequest("a cat", api_key=KEY)
    with caplog.at_level(logging.INFO, logger="imagestream.test"):
        logging.getLogger("imagestream.test").info("request %s / %r", request, request.api_key)
    assert caplog.records
    assert KEY not in caplog.text


def test_secret_equality_hash_and_truth() -> None:
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
    assert Secret("a") != "a"
    assert hash(Secret("a")) == hash(Secret("a"))
    assert bool(Secret("a"))
    assert not Secret("")


def test_secret_is_frozen() -> None:
    secret = Secret(KEY)
    with pytest.raises(AttributeError, match="immutable"):
        secret._value = "other"


def test_secret_pickles_with_its_value() -> None:
    """Pickling keeps the key usable (worker processes need it), still hidden in repr."""
    clone = pickle.loads(pickle.dumps(Secret(KEY)))
    assert clone.get() == KEY
    assert KEY not in repr(clone)


def test_request_wraps_plain_key_in_secret() -> None:
    request = ImageRequest("p", api_key=KEY)
    assert isinstance(request.api_key, Secret)
    assert request.api_key.get() == KEY


def test_request_keeps_given_secret_object() -> None:
    secret = Secret(KEY)
    assert ImageRequest("p", api_key=secret).api_key is secret


@pytest.mark.parametrize("value", [None, ""])
def test_request_missing_or_empty_key_is_none(value: str | None) -> None:
    assert ImageRequest("p", api_key=value).api_key is None


def test_evolved_request_still_hides_key() -> None:
    request = attrs.evolve(ImageRequest("p", api_key=KEY), prompt="q")
    assert request.api_key == Secret(KEY)
    assert KEY not in repr(request)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1024x1024", (1024, 1024)),
        (" 512 X 768 ", (512, 768)),
        ("512X768", (512, 768)),
        ("640\u00d7480", (640, 480)),  # multiplication sign
        ("640*480", (640, 480)),
        ("1x1", (1, 1)),
        ("\t1536 x 1024\n", (1536, 1024)),
        ("0001x02", (1, 2)),
        ((832, 1216), (832, 1216)),
    ],
)
def test_parse_size_valid(text: str | tuple[int, int], expected: tuple[int, int]) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", [None, "auto", "AUTO", "  Auto "])
def test_parse_size_auto_and_none(text: str | None) -> None:
    assert parse_size(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "big",
        "",
        "   ",
        "1024",
        "1024x",
        "x1024",
        "1024x1024x3",
        "1024 by 768",
        "-5x5",
        "5x-5",
        "1.5x2",
        "1024,1024",
        "0x5",
        "5x0",
        "0x0",
        (0, 5),
        (5, -1),
    ],
)
def test_parse_size_invalid(text: str | tuple[int, int]) -> None:
    with pytest.raises(ConfigurationError):
        parse_size(text)


def test_parse_size_error_quotes_input_and_hints() -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_size("big")
    assert "'big'" in str(info.value)
    assert info.value.hint is not None
    assert "1024x1024" in info.value.hint


def test_request_defaults() -> None:
    request = ImageRequest("a lighthouse")
    assert request.prompt == "a lighthouse"
    assert request.n == 1
    assert request.size is None
    assert request.dimensions is None
    assert request.options == {}
    assert request.api_key is None


@pytest.mark.parametrize(
    ("size", "stored", "dimensions"),
    [
        ("1024x768", "1024x768", (1024, 768)),
        ((512, 256), "512x256", (512, 256)),
        (" 64 X 32 ", " 64 X 32 ", (64, 32)),
        ("auto", "auto", None),
        (None, None, None),
    ],
)
def test_request_size_and_dimensions(
    size: str | tuple[int, int] | None, stored: str | None, dimensions: tuple[int, int] | None
) -> None:
    request = ImageRequest("p", size=size)
    assert request.size == stored
    assert request.dimensions == dimensions


def test_request_named_size_raises_only_when_dimensions_asked() -> None:
    """A provider's named size ("square_hd") is stored; only ``dimensions`` refuses it."""
    request = ImageRequest("p", size="square_hd")
    assert request.size == "square_hd"
    with pytest.raises(ConfigurationError):
        _ = request.dimensions


def test_request_options_are_copied_and_readable() -> None:
    options = {"style": "vivid"}
    request = ImageRequest("p", options=options)
    options["style"] = "natural"
    assert request.option("style") == "vivid"
    assert request.option("missing") is None
    assert request.option("missing", 3) == 3


def test_request_is_frozen_and_comparable() -> None:
    request = ImageRequest("p", size="1x1", api_key=KEY)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        request.prompt = "q"  # type: ignore[misc]
    assert request == ImageRequest("p", size=(1, 1), api_key=Secret(KEY))
    assert request != ImageRequest("p", size="1x1", api_key="other")
