"""Typed option readers and their one error policy: unreadable → ConfigurationError, refused → ValidationError."""

from __future__ import annotations

import math

import pytest

from imagestream import ConfigurationError, ValidationError
from imagestream.provider import (
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

KNOWN = ("steps", "style", "scale", "stream", "size", "extra", "tags", "label")


def test_unknown_names_are_refused_with_did_you_mean() -> None:
    with pytest.raises(ConfigurationError) as info:
        Options({"stpes": 3, "zzz": 1}, provider="acme", known=KNOWN)
    message = str(info.value)
    assert message.startswith("acme: unknown options 'stpes', 'zzz'")
    assert "did you mean 'steps'?" in message
    assert "known options: extra, label, scale" in message


def test_known_none_skips_the_name_check() -> None:
    assert "anything" in Options({"anything": 1}, provider="acme")


def test_absent_and_none_values_give_the_default() -> None:
    options = Options({"steps": None}, provider="acme", known=KNOWN)
    assert options.integer("steps", 30, low=1) == 30
    assert options.integer("steps") is None
    assert options.choice("style", ("a", "b")) is None
    assert options.flag("stream", True) is True
    assert options.size("size") is None
    assert options.mapping("extra") is None
    assert options.texts("tags") is None


def test_readers_return_typed_values() -> None:
    options = Options(
        {
            "steps": 12,
            "style": "Vivid",
            "scale": 2,
            "stream": "no",
            "size": "64x32",
            "extra": {"a": 1},
            "tags": "one",
            "label": "  hi ",
        },
        provider="acme",
        known=KNOWN,
    )
    assert options.integer("steps", 1, low=1, high=50) == 12
    assert options.choice("style", ("vivid", "natural")) == "vivid"
    assert options.number("scale", 1.0, low=0, high=10) == 2.0
    assert options.flag("stream", True) is False
    assert options.size("size") == (64, 32)
    assert options.mapping("extra", keys={"a"}) == {"a": 1}
    assert options.texts("tags") == ("one",)
    assert options.text("label") == "hi"
    assert options.raw("steps") == 12


@pytest.mark.parametrize(
    ("call", "error"),
    [
        # cannot be read as the setting: ConfigurationError
        (lambda: read_integer("3", "n", provider="p"), ConfigurationError),
        (lambda: read_integer(True, "n", provider="p"), ConfigurationError),
        (lambda: read_integer(2.5, "n", provider="p"), ConfigurationError),
        (lambda: read_number("x", "s", provider="p"), ConfigurationError),
        (lambda: read_number(False, "s", provider="p"), ConfigurationError),
        (lambda: read_flag("maybe", "f", provider="p"), ConfigurationError),
        (lambda: read_flag(1, "f", provider="p"), ConfigurationError),
        (lambda: read_text(3, "t", provider="p"), ConfigurationError),
        (lambda: read_text("  ", "t", provider="p"), ConfigurationError),
        (lambda: read_choice("nope", "c", ("a", "b"), provider="p"), ConfigurationError),
        (lambda: read_choice(3, "c", ("a", "b"), provider="p"), ConfigurationError),
        (lambda: read_size("big", provider="p"), ConfigurationError),
        (lambda: read_size(64, provider="p"), ConfigurationError),
        (lambda: read_size("0x10", provider="p"), ConfigurationError),
        (lambda: read_mapping([1], "m", provider="p"), ConfigurationError),
        (lambda: read_mapping({"z": 1}, "m", provider="p", keys={"a"}), ConfigurationError),
        # read, but refused: ValidationError
        (lambda: read_integer(0, "n", provider="p", low=1), ValidationError),
        (lambda: read_integer(101, "n", provider="p", low=0, high=100), ValidationError),
        (lambda: read_number(11.0, "s", provider="p", high=10), ValidationError),
        (lambda: read_number(math.nan, "s", provider="p"), ValidationError),
        (lambda: read_number(math.inf, "s", provider="p", low=0), ValidationError),
    ],
)
def test_the_error_policy(call: object, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        call()  # type: ignore[operator]
    assert str(info.value).startswith("p: ")
    # The two kinds never overlap: a refusal is not also a configuration error.
    assert isinstance(info.value, ConfigurationError) != isinstance(info.value, ValidationError)


def test_range_messages_say_the_bounds() -> None:
    with pytest.raises(ValidationError, match="between 0 and 100, not 101"):
        read_integer(101, "quality", provider="p", low=0, high=100)
    with pytest.raises(ValidationError, match="at least 1"):
        read_integer(0, "n", provider="p", low=1)
    with pytest.raises(ValidationError, match="at most 2"):
        read_number(3, "x", provider="p", high=2)


def test_choice_suggests_and_lists() -> None:
    with pytest.raises(ConfigurationError) as info:
        read_choice("vivd", "style", ("vivid", "natural"), provider="p")
    assert "did you mean 'vivid'?" in str(info.value)
    assert "natural, vivid" in str(info.value)
    assert read_choice("A", "c", ("A", "a"), provider="p") == "A"  # exact match first
    with pytest.raises(ConfigurationError):
        read_choice("VIVID", "style", ("vivid",), provider="p", fold_case=False)


@pytest.mark.parametrize(
    ("word", "value"), [("yes", True), ("ON", True), ("0", False), ("off", False)]
)
def test_flag_words(word: str, value: bool) -> None:
    assert read_flag(word, "f", provider="p") is value


def test_size_accepts_tuples() -> None:
    assert read_size((8, 4), provider="p") == (8, 4)


def test_texts_refuses_non_lists() -> None:
    with pytest.raises(ConfigurationError, match="list of strings"):
        Options({"tags": 3}, provider="p", known=KNOWN).texts("tags")


def test_voice_helpers() -> None:
    options = Options({}, provider="acme", known=KNOWN)
    assert isinstance(options.refuse("x"), ValidationError)
    assert str(options.unreadable("y", hint="z")) == "acme: y (z)"
    assert did_you_mean("sede", ["seed", "size"]) == "seed"
    assert did_you_mean("qqqq", ["seed"]) is None


def test_text_as_written_and_lists() -> None:
    assert read_text(" a, ", "p", provider="x", strip=False) == " a, "
    assert read_text(" a, ", "p", provider="x") == "a,"
    assert read_list([1, "a"], "l", provider="x") == [1, "a"]
    with pytest.raises(ConfigurationError, match="l must be a list, not str"):
        read_list("ab", "l", provider="x")
    options = Options({"label": [{"a": 1}]}, provider="x", known=KNOWN)
    assert options.items("label") == [{"a": 1}]
    assert options.items("tags") == ()


def test_a_text_field_may_come_as_the_option_of_its_name() -> None:
    given = Options({"negative_prompt": "fog"}, provider="acme")
    assert given.text_field("negative_prompt", None) == "fog"
    assert given.text_field("negative_prompt", "fog") == "fog"
    assert Options({}, provider="acme").text_field("negative_prompt", "rain") == "rain"
    assert Options({}, provider="acme").text_field("negative_prompt", None) is None
    with pytest.raises(ConfigurationError, match="acme: negative_prompt given both"):
        given.text_field("negative_prompt", "rain")
    with pytest.raises(ConfigurationError):
        Options({"negative_prompt": 3}, provider="acme").text_field("negative_prompt", None)
