"""Tests of the solid provider, through the same pipeline users run."""

from __future__ import annotations

import pytest

import imagestream
from imagestream.testing import PluginHarness, chunks_of, make_png
from imagestream_solid import _plugin


@pytest.fixture
def plugins(imagestream_plugins: PluginHarness) -> PluginHarness:
    """The built-ins plus this plugin, registered the way its entry point would be."""
    imagestream_plugins.register(_plugin)
    return imagestream_plugins


def test_three_previews_then_the_final_image(plugins: PluginHarness) -> None:
    chunks = plugins.run("a red wall", provider="solid", size="16x8")

    kinds = [chunk.kind for chunk in chunks]
    assert kinds == ["text_delta", "image_preview", "image_preview", "image_preview", "image_final"]
    final = chunks[-1]
    assert isinstance(final, imagestream.ImageFinal)
    assert final.image.data == make_png(16, 8, (255, 0, 0))
    assert (final.mime_type, final.width, final.height) == ("image/png", 16, 8)


def test_hex_colours_and_several_images(plugins: PluginHarness) -> None:
    chunks = plugins.run("paint it #00ff80", provider="solid", size="4x4", n=2)

    finals = chunks_of(imagestream.ImageFinal, chunks)
    assert [final.sample for final in finals] == [0, 1]
    assert finals[1].image.data == make_png(4, 4, (0, 255, 128))
    assert len(chunks_of(imagestream.ImagePreview, chunks)) == 6


def test_the_provider_is_listed(plugins: PluginHarness) -> None:
    assert "solid" in [provider.name for provider in imagestream.list_providers()]


def test_the_previews_option(plugins: PluginHarness) -> None:
    chunks = plugins.run("a red wall", provider="solid", size="4x4", previews=0)

    assert [chunk.kind for chunk in chunks] == ["text_delta", "image_final"]


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        # Cannot be read as the setting it is for: ConfigurationError.
        ({"size": "big"}, imagestream.ConfigurationError, "not WIDTHxHEIGHT"),
        ({"model": "solid-2"}, imagestream.ConfigurationError, "unknown model"),
        ({"output_format": "jpeg"}, imagestream.ConfigurationError, "unknown output_format"),
        ({"preview": 2}, imagestream.ConfigurationError, "did you mean 'previews'"),
        ({"previews": "many"}, imagestream.ConfigurationError, "whole number"),
        # Read, but refused: ValidationError.
        ({"size": "4096x16"}, imagestream.ValidationError, "width must be between 1 and 2048"),
        ({"previews": 9}, imagestream.ValidationError, "previews must be between 0 and 8"),
        ({"n": 5}, imagestream.ValidationError, "n must be between 1 and 4"),
    ],
)
def test_bad_settings_fail_before_any_work(
    plugins: PluginHarness,
    params: dict[str, object],
    error: type[imagestream.ImagestreamError],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        plugins.run("a red wall", provider="solid", **params)


def test_a_prompt_without_a_colour_is_refused(plugins: PluginHarness) -> None:
    with pytest.raises(imagestream.ValidationError, match="names no colour"):
        plugins.run("a wall", provider="solid")
