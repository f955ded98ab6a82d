"""Built-in plugin ``filesystem``: the default saver.

Writes each final image under ``options.out_dir`` as ``image-<timestamp>.<ext>``
(the extension from the sniffed bytes), or to ``options.output``; atomically,
never overwriting an existing file unless ``options.overwrite``, and refusing
names that escape the output directory or hold control characters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._result import SavedImage
from .._saving import check_path, default_name, fix_suffix, numbered, safe_join, write_atomic
from .._sniff import image_size, sniff_mime
from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from pathlib import Path

    from .._chunks import ImageFinal
    from .._context import RunContext
    from .._saving import SaveOptions

__all__ = ["FilesystemSaver", "save_image"]


def save_image(image: ImageFinal, options: SaveOptions, *, index: int = 0) -> SavedImage:
    """Save one image synchronously; ``index`` numbers the images of one run."""
    data = image.image.data
    mime = sniff_mime(data)
    target: Path
    overwrite = options.overwrite
    named = options.output
    # Control characters are refused wherever they are (NUL is impossible, a
    # newline a trap), before a directory is made for them.
    if named is not None:
        check_path(named, "output path")
    else:
        check_path(options.out_dir, "output directory")
    if named is None and options.filename is not None:
        named = safe_join(options.out_dir, options.filename)
    if named is not None:
        fixed = fix_suffix(named, data)
        target = numbered(fixed, index)
        # overwrite replaces the file that was named, never another: a name
        # whose suffix had to change to match the bytes was not asked for.
        overwrite = overwrite and fixed == named
    else:
        target = safe_join(options.out_dir, default_name(mime, sample=index))
    written = write_atomic(target, data, overwrite=overwrite)
    size = image_size(data, mime)
    return SavedImage(
        path=written,
        mime_type=mime,
        bytes=len(data),
        sha256=image.image.sha256,
        width=size[0] if size else None,
        height=size[1] if size else None,
        sample=image.sample,
    )


class FilesystemSaver:
    """Saves to the local file system, off the event loop (fsync can be slow)."""

    @hookimpl(trylast=True)
    async def save(
        self, image: ImageFinal, options: SaveOptions, context: RunContext
    ) -> SavedImage:
        """Write the image; raise :class:`~imagestream.SaveError` on failure."""
        counter: int = context.state.get("imagestream.saved", 0)
        context.state["imagestream.saved"] = counter + 1
        # Imported here: built-ins load whenever plugins do (``--help`` lists
        # plugin commands), and asyncio would cost every command 20 ms.
        import asyncio

        return await asyncio.to_thread(save_image, image, options, index=counter)
