"""``imagestream generate PROMPT``."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import click

from ._errors import reported_errors
from ._progress import ProgressDisplay


def _option_value(raw: str) -> Any:
    """``-o KEY VALUE`` values: JSON literals (numbers, true/false, null, lists) or text."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


@click.command()
@click.argument("prompt")
@click.option("-p", "--provider", help="Provider name (default: procedural, offline).")
@click.option("-m", "--model", help="Model id (default: the provider's).")
@click.option("--size", help="WIDTHxHEIGHT, 'auto', or a provider's named size.")
@click.option("--steps", type=click.IntRange(min=1), help="Sampler steps.")
@click.option("--seed", type=int, help="Seed, for reproducible images.")
@click.option(
    "-n", "n", type=click.IntRange(min=1), default=1, show_default=True, help="Number of images."
)
@click.option(
    "--partial-images",
    type=click.IntRange(min=0),
    help="Partial images to stream, where supported.",
)
@click.option("--format", "output_format", help="Output format: png, jpeg or webp.")
@click.option(
    "-o",
    "--option",
    "options",
    multiple=True,
    type=(str, str),
    metavar="KEY VALUE",
    help="Provider option (repeatable), e.g. -o quality high.",
)
@click.option(
    "--output", type=click.Path(dir_okay=False, path_type=Path), help="Save to this file."
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("generated-images"),
    show_default=True,
    help="Directory for generated file names.",
)
@click.option(
    "--overwrite", is_flag=True, help="Replace existing files instead of picking a free name."
)
@click.option("--base-url", help="API base URL (proxies, gateways, local servers).")
@click.option("--key", help="API key (default: the provider's environment variable).")
@click.option("-q", "--quiet", is_flag=True, help="No progress and no summary on stderr.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout at the end.")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks and debug logs.")
def generate(
    prompt: str,
    provider: str | None,
    model: str | None,
    size: str | None,
    steps: int | None,
    seed: int | None,
    n: int,
    partial_images: int | None,
    output_format: str | None,
    options: tuple[tuple[str, str], ...],
    output: Path | None,
    out_dir: Path,
    overwrite: bool,
    base_url: str | None,
    key: str | None,
    quiet: bool,
    as_json: bool,
    verbose: bool,
) -> None:
    """Generate images for PROMPT, streaming previews, and save them."""
    if verbose:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    params: dict[str, Any] = {
        "provider": provider,
        "model": model,
        "size": size,
        "steps": steps,
        "seed": seed,
        "n": n,
        "partial_images": partial_images,
        "output_format": output_format,
        "base_url": base_url,
        "api_key": key,
        "options": {name: _option_value(value) for name, value in options},
    }
    params = {name: value for name, value in params.items() if value is not None}
    with reported_errors(verbose):
        from .._saving import SaveOptions

        save = SaveOptions(out_dir=out_dir, output=output, overwrite=overwrite)
        started = time.perf_counter()
        result = asyncio.run(_run(prompt, params, save, show_progress=not quiet))
        elapsed = time.perf_counter() - started
        if as_json:
            click.echo(json.dumps(_summary(result), indent=None))
        elif result.text.strip() and not quiet:
            # What the model said (a caption, an answer next to its images).
            click.echo(result.text.strip())
        if not quiet:
            for saved in result.saved:
                dims = f"{saved.width}x{saved.height} " if saved.width else ""
                click.echo(
                    f"saved {saved.path} ({dims}{saved.mime_type}, {_human_size(saved.bytes)}) in {elapsed:.2f}s",
                    err=True,
                )


async def _run(prompt: str, params: dict[str, Any], save: Any, *, show_progress: bool) -> Any:
    from .._api import stream

    chunks = stream(prompt, save=save, **params)
    with ProgressDisplay(enabled=show_progress) as progress:
        async with chunks:
            async for chunk in chunks:
                progress.update(chunk)
    return chunks.result


def _summary(result: Any) -> dict[str, Any]:
    from .._convert import converter

    return {
        "images": [
            {
                k: v
                for k, v in saved.as_dict().items()
                if k in {"path", "mime_type", "width", "height", "bytes", "sha256"}
            }
            for saved in result.saved
        ],
        "previews": len(result.previews),
        "text": result.text,
        "thoughts": result.thoughts,
        "usage": converter("json").unstructure(result.usage) if result.usage else None,
        "analytics": result.analytics.as_dict() if result.analytics else None,
    }
