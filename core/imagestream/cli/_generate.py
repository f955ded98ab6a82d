"""``imagestream generate PROMPT``, the default command."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from ._errors import plugin_failures, quiet_plugin_warnings, reported_errors
from ._options import provider_options
from ._output import EXTENSION_FORMATS, converting_to, output_format, provider_makes
from ._progress import ProgressDisplay


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def _read_prompt(prompt: str | None) -> str:
    """PROMPT, or standard input when it is ``-`` or absent with input piped in."""
    from . import stdin_is_terminal

    if prompt == "-" or (prompt is None and not stdin_is_terminal()):
        return sys.stdin.read().strip() if sys.stdin is not None else ""
    if prompt is None:
        raise click.UsageError(
            "no PROMPT: give it as an argument, or pipe it in (echo 'a red circle' | imagestream -)",
            click.get_current_context(silent=True),
        )
    return prompt


def _logs_enabled() -> bool:
    from .._logdb import logs_enabled

    return logs_enabled()


def _provider_for_model(model: str) -> str:
    """The installed provider that lists ``model`` (``-m`` without ``-p``)."""
    from .._plugins import get_plugin_manager

    return get_plugin_manager().registry.provider_for_model(model).name


@click.command()
@click.argument("prompt", required=False)
@click.option(
    "-p",
    "--provider",
    help="Provider name (default: the one that lists -m's model, else procedural, offline).",
)
@click.option("-m", "--model", help="Model id (default: the provider's).")
@click.option("--size", help="WIDTHxHEIGHT, 'auto', or a provider's named size.")
@click.option("--steps", type=click.IntRange(min=1), help="Sampler steps.")
@click.option(
    "--negative-prompt",
    metavar="TEXT",
    help="What not to draw, for providers that take one (diffusion models).",
)
@click.option(
    "--seed",
    type=int,
    help="Seed of the first image, for providers that take one; with -n the next get "
    "SEED+1, SEED+2, ... (default: random, reported with each image).",
)
@click.option(
    "-n", "n", type=click.IntRange(min=1), default=1, show_default=True, help="Number of images."
)
@click.option(
    "--partial-images",
    type=click.IntRange(min=0),
    help="Partial images to stream, where supported.",
)
@click.option(
    "--format",
    "given_format",
    help="Output format: png, jpeg or webp (default: --output's extension, else the provider's).",
)
@click.option(
    "-o",
    "--option",
    "options",
    multiple=True,
    type=(str, str),
    metavar="KEY VALUE",
    help="Provider option (repeatable), e.g. -o preview_format webp; "
    "'imagestream models --options' lists them.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save to this file; its extension picks the format.",
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("generated-images"),
    show_default=True,
    help="Directory for generated file names.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace the file named by --output instead of picking a free name.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Stall timeout: fail when nothing arrives for this long.",
)
@click.option(
    "--deadline",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Fail when the whole run takes longer than this (default: no limit).",
)
@click.option(
    "--cache",
    is_flag=True,
    help="Replay an identical earlier run (needs --seed) from the generation cache, "
    "else generate and store this one.",
)
@click.option(
    "--log/--no-log",
    "log",
    default=None,
    help="Record this run in the generation log, or not (default: unless 'imagestream logs off').",
)
@click.option("--base-url", help="API base URL (proxies, gateways, local servers).")
@click.option("--key", help="API key (default: the provider's environment variable).")
@click.option(
    "-q", "--quiet", is_flag=True, help="No progress, summary or plugin warnings on stderr."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout at the end.")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks and debug logs.")
def generate(
    prompt: str | None,
    provider: str | None,
    model: str | None,
    size: str | None,
    steps: int | None,
    negative_prompt: str | None,
    seed: int | None,
    n: int,
    partial_images: int | None,
    given_format: str | None,
    options: tuple[tuple[str, str], ...],
    output: Path | None,
    out_dir: Path,
    overwrite: bool,
    timeout: float | None,
    deadline: float | None,
    cache: bool,
    log: bool | None,
    base_url: str | None,
    key: str | None,
    quiet: bool,
    as_json: bool,
    verbose: bool,
) -> None:
    """Generate images for PROMPT, streaming previews, and save them.

    This is the default command: 'imagestream PROMPT' runs it. PROMPT is read
    from standard input when it is '-', or when it is left out and input is
    piped in. With --json a failure is printed as {"error": {"type",
    "message", "hint"}} on stdout.

    Examples:

    \b
      imagestream "a simple red circle"
      imagestream "a lighthouse at dusk" -n 2 --seed 7 --output lighthouse.webp
      echo "a blue square on yellow" | imagestream - --size 256x256 -o preview_format png
    """
    if verbose:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    failures = plugin_failures()
    failures.quiet = quiet
    with reported_errors(verbose, as_json=as_json), quiet_plugin_warnings():
        text = _read_prompt(prompt)
        params: dict[str, Any] = {
            "provider": provider,
            "model": model,
            "size": size,
            "steps": steps,
            "negative_prompt": negative_prompt,
            "seed": seed,
            "n": n,
            "partial_images": partial_images,
            "base_url": base_url,
            "api_key": key,
            "timeout": timeout,
            "deadline": deadline,
            "options": provider_options(options),
        }
        params = {name: value for name, value in params.items() if value is not None}
        params["log"] = _logs_enabled() if log is None else log
        if cache:
            params["cache"] = True
        try:
            if model is not None and provider is None:
                params["provider"] = _provider_for_model(model)
            fmt = output_format(output, given_format)
            # Only implied by --output's extension: asked for natively when the
            # provider takes it, converted afterwards when it does not.
            convert = fmt if given_format is None else None
            if fmt is not None and (convert is None or provider_makes(fmt, text, params)):
                params["output_format"] = fmt
            failures.report()
            from .._saving import SaveOptions

            save = SaveOptions(out_dir=out_dir, output=output, overwrite=overwrite)
            started = time.perf_counter()
            with converting_to(convert):
                result = asyncio.run(_run(text, params, save, show_progress=not quiet))
            elapsed = time.perf_counter() - started
        finally:
            failures.report()
        if as_json:
            click.echo(json.dumps(_summary(result), indent=None))
        elif result.text.strip() and not quiet:
            # What the model said (a caption, an answer next to its images).
            click.echo(result.text.strip())
        if not quiet:
            _print_saved(result, output, elapsed)


async def _run(prompt: str, params: dict[str, Any], save: Any, *, show_progress: bool) -> Any:
    from .._api import stream
    from ..errors import SaveError
    from ._rescue import rescue_unsaved

    chunks = stream(prompt, save=save, **params)
    try:
        with ProgressDisplay(enabled=show_progress) as progress:
            async with chunks:
                async for chunk in chunks:
                    progress.update(chunk)
    except SaveError as exc:
        rescue_unsaved(exc)  # the picture is not lost with the save
        raise
    except (asyncio.CancelledError, KeyboardInterrupt):
        # Ctrl-C halfway: the images saved before it stay; say where they are.
        for saved in chunks.result.saved:
            click.echo(f"saved {saved.path} before the interruption", err=True)
        raise
    return chunks.result


def _seeds(result: Any) -> dict[int, int | None]:
    """Each sample's seed, as the provider reported it on the final image."""
    return {image.sample: image.seed for image in result.images}


def _print_saved(result: Any, output: Path | None, elapsed: float) -> None:
    seeds = _seeds(result)
    for saved in result.saved:
        details = [f"{saved.width}x{saved.height} {saved.mime_type}" if saved.width else None]
        details.append(_human_size(saved.bytes))
        seed = seeds.get(saved.sample)
        details.append(f"seed {seed}" if seed is not None else None)
        listed = ", ".join(part for part in details if part)
        source = " from the cache" if result.replayed else ""
        click.echo(f"saved {saved.path} ({listed}){source} in {elapsed:.2f}s", err=True)
        asked = output.suffix.lower() if output is not None else ""
        if asked in EXTENSION_FORMATS and saved.path.suffix.lower() != asked:
            click.echo(
                f"  note: the provider sent {saved.mime_type}, not the {asked} --output asked for",
                err=True,
            )


def _summary(result: Any) -> dict[str, Any]:
    from .._convert import converter

    seeds = _seeds(result)
    keys = {"path", "mime_type", "width", "height", "bytes", "sha256"}
    return {
        "images": [
            {
                **{k: v for k, v in saved.as_dict().items() if k in keys},
                "seed": seeds.get(saved.sample),
            }
            for saved in result.saved
        ],
        "previews": result.preview_count,
        "text": result.text,
        "thoughts": result.thoughts,
        "usage": converter("json").unstructure(result.usage) if result.usage else None,
        "analytics": result.analytics.as_dict() if result.analytics else None,
        "replayed": result.replayed,
    }
