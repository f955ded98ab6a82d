"""``imagestream batch JOB.jsonl``: the command the plugin adds to the command line.

Built cheaply (the entry point imports this whenever the command line lists
its commands); the batch machinery is imported when the command runs.
"""

from __future__ import annotations

from pathlib import Path

import click

from imagestream.cli import provider_options

__all__ = ["batch"]

EXIT_UNFINISHED = 1
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


@click.command(
    help="""Run every request of a JSONL job: resumable, rate-limit aware, locally or on Ray.

    Each line of JOB is a JSON object with an "id", a "prompt" and any of
    provider, model, size, steps, seed, n, options, negative_prompt, quality
    and output_format; the options below are the defaults for lines that do
    not set them. Images are saved as ID.png (ID-1.png, ID-2.png, ... for
    n > 1) in --out-dir, with results.jsonl (one line per request) and the
    manifest. Stop it any way you like and run the same command again: only
    what is not done runs.

    Exit status: 0 when every request is done, 1 when some failed or were
    left pending (--max-cost), 130 / 143 when interrupted (SIGINT / SIGTERM).

    Examples:

    \b
      imagestream batch prompts.jsonl --size 256x256 --concurrency 16
      imagestream batch prompts.jsonl --size 64x64 --steps 4 --json

    where prompts.jsonl holds lines such as
    {"id": "cat", "prompt": "a cat on a red sofa"}. With a provider that costs money, cap the job: -p openai --max-cost 20.
    On a Ray cluster (the [ray] extra): --engine ray --address auto.
    """
)
@click.argument("job", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-p", "--provider", help="Provider for lines that name none (default: procedural).")
@click.option("-m", "--model", help="Model for lines that name none.")
@click.option("--size", help="WIDTHxHEIGHT for lines that give none.")
@click.option("--steps", type=click.IntRange(min=1), help="Sampler steps for lines that give none.")
@click.option("--seed", type=int, help="Seed for lines that give none.")
@click.option(
    "-n", "n", type=click.IntRange(1, 100), help="Images per request for lines that give none."
)
@click.option("--quality", help="Quality level for lines that give none.")
@click.option(
    "--format", "output_format", help="Output format (png, jpeg, webp) for lines that give none."
)
@click.option(
    "-o",
    "--option",
    "options",
    multiple=True,
    type=(str, str),
    metavar="KEY VALUE",
    help="Provider option for every line (repeatable); a line's own options win.",
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Images, manifest and results (default: JOB's name + '-images', next to it).",
)
@click.option(
    "--results",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The results file (default: OUT_DIR/results.jsonl).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Requests running at once, overall.",
)
@click.option(
    "--per-provider",
    type=click.IntRange(min=1),
    help="Requests running at once per provider (it halves on a 429 and grows back).",
)
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="Retries of a transient failure (5xx, broken stream); 429s do not count.",
)
@click.option(
    "--max-cost",
    type=click.FloatRange(min=0),
    metavar="USD",
    help="Start no request that would take the job's cost past this (from provider pricing).",
)
@click.option(
    "--rerun-changed",
    is_flag=True,
    help="Generate again the done requests whose line changed (default: refuse to start). "
    "Once a request's new images are made, its earlier ones (all of them, whatever their "
    "names) are moved to OUT_DIR/replaced/, under the next free name there: never deleted, "
    "never overwritten. If its new run fails, they stay where they were.",
)
@click.option(
    "--skip-failed", is_flag=True, help="Leave the requests an earlier run recorded failed."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Stall timeout per request.",
)
@click.option(
    "--deadline",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Time limit per request.",
)
@click.option(
    "--cache",
    is_flag=True,
    help="Replay identical seeded requests from the generation cache, else store them.",
)
@click.option(
    "--log/--no-log",
    "log",
    default=None,
    help="Record each generation in the generation log "
    "(default: as 'imagestream generate' does, unless 'imagestream logs off').",
)
@click.option("--base-url", help="API base URL for every request.")
@click.option("--key", help="API key for every request (default: the provider's variable).")
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Run here, or on Ray actors (pip install 'imagestream-batch[ray]').",
)
@click.option("--address", help="Ray cluster to join (default: start a local Ray).")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Ray actors (--engine ray).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress or summary on stderr.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout at the end.")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks and debug logs.")
def batch(
    job: Path,
    provider: str | None,
    model: str | None,
    size: str | None,
    steps: int | None,
    seed: int | None,
    n: int | None,
    quality: str | None,
    output_format: str | None,
    options: tuple[tuple[str, str], ...],
    out_dir: Path | None,
    results: Path | None,
    concurrency: int,
    per_provider: int | None,
    retries: int,
    max_cost: float | None,
    rerun_changed: bool,
    skip_failed: bool,
    timeout: float | None,
    deadline: float | None,
    cache: bool,
    log: bool | None,
    base_url: str | None,
    key: str | None,
    engine: str,
    address: str | None,
    workers: int,
    quiet: bool,
    as_json: bool,
    verbose: bool,
) -> None:
    from imagestream.cli import reported_errors

    if verbose:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    with reported_errors(verbose, as_json=as_json):
        from ._main import run_command

        if log is None:  # as 'imagestream generate': logged unless 'imagestream logs off'
            from imagestream import logs_enabled

            log = logs_enabled()

        defaults = {
            "provider": provider,
            "model": model,
            "size": size,
            "steps": steps,
            "seed": seed,
            "n": n,
            "quality": quality,
            "output_format": output_format,
            "options": provider_options(options) or None,
        }
        code = run_command(
            job,
            defaults={name: value for name, value in defaults.items() if value is not None},
            out_dir=out_dir,
            results=results,
            concurrency=concurrency,
            per_provider=per_provider,
            retries=retries,
            max_cost=max_cost,
            rerun_changed=rerun_changed,
            retry_failed=not skip_failed,
            timeout=timeout,
            deadline=deadline,
            cache=cache,
            log=log,
            base_url=base_url,
            api_key=key,
            engine=engine,
            address=address,
            workers=workers,
            quiet=quiet,
            as_json=as_json,
        )
    raise SystemExit(code)
