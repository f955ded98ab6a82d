"""The format ``generate`` saves in: ``--format``, else the one ``--output``'s extension names.

An explicit ``--format`` is sent to the provider, which makes it or refuses.
A format only implied by the extension is a wish: the provider is asked for
it when its :meth:`~imagestream.Provider.validate` accepts it (a native
encoding is best), and whatever other format comes back is converted with
the core's Pillow bridge (:meth:`ImageData.to_pil <imagestream.ImageData.to_pil>`,
:meth:`ImageData.from_pil <imagestream.ImageData.from_pil>`). Without Pillow
the image is saved as it came, under its own extension.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import ConfigurationError, ImagestreamError
from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from .._chunks import ImageFinal
    from .._context import RunContext
    from .._request import ImageRequest

__all__ = ["EXTENSION_FORMATS", "FormatConverter", "converting_to", "output_format"]

EXTENSION_FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp"}
"""The formats an ``--output`` extension asks for; other extensions ask for none."""

_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


def output_format(output: Path | None, given: str | None) -> str | None:
    """The format ``--output`` and ``--format`` ask for together (``None``: the provider's).

    Raises:
        ConfigurationError: ``--output`` has no file name, or its extension
            names another format than ``--format``.
    """
    if output is None:
        return given
    if output.name in ("", ".", ".."):
        raise ConfigurationError(f"--output needs a file name, not {str(output)!r}")
    implied = EXTENSION_FORMATS.get(output.suffix.lower())
    if given is None or implied is None:
        return given or implied
    wanted = given.strip().lower()
    if (wanted if wanted != "jpg" else "jpeg") != implied:
        raise ConfigurationError(
            f"--output {output.name} asks for {implied} but --format asks for {given}",
            hint=f"drop --format, or give --output the extension of {given}",
        )
    return given


def provider_makes(fmt: str, prompt: str, params: Mapping[str, Any]) -> bool:
    """True when the provider's ``validate`` accepts the request with ``output_format=fmt``.

    Any refusal counts as no: if the request is refused for another reason
    too, the run itself will say which, without a format nobody typed.
    """
    from .._pipeline import SWITCHES, build_request
    from .._plugins import get_plugin_manager

    fields = {k: v for k, v in params.items() if k not in SWITCHES}
    try:
        request = build_request(prompt, {}, {**fields, "output_format": fmt})
        provider = get_plugin_manager().registry.provider(request.provider)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the real run warns, once
            provider.validate(request)
    except ImagestreamError:
        return False
    return True


class FormatConverter:
    """A ``postprocess`` plugin: final images not in ``fmt`` are re-encoded to it with Pillow."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt

    @hookimpl
    def postprocess(
        self, image: ImageFinal, request: ImageRequest, context: RunContext
    ) -> ImageFinal | None:
        """``image`` in :attr:`fmt`, or ``None`` when it is already (or Pillow is missing)."""
        if image.image.mime_type == _MIME[self.fmt]:
            return None
        try:
            picture = image.image.to_pil()
        except ConfigurationError:
            return None  # no Pillow: saved as it came, and generate says so
        if self.fmt == "jpeg" and picture.mode not in ("RGB", "L"):
            picture = picture.convert("RGB")  # JPEG has no alpha; .jpg asked for it anyway
        converted = type(image.image).from_pil(picture, self.fmt)
        return attrs.evolve(image, image=converted, mime_type=_MIME[self.fmt])


@contextmanager
def converting_to(fmt: str | None) -> Iterator[None]:
    """Convert the run's final images to ``fmt`` (``None``: leave them) while in the block."""
    if fmt is None:
        yield
        return
    from .._plugins import register_plugin, unregister_plugin

    name = register_plugin(FormatConverter(fmt), "cli-output-format")
    try:
        yield
    finally:
        unregister_plugin(name)
