"""``imagestream serve``: the command the plugin adds to the command line."""

from __future__ import annotations

from pathlib import Path

import click

from ._config import DEFAULT_HOST, DEFAULT_PORT, TOKEN_ENV

__all__ = ["serve"]


@click.command(
    help="Run the relay server: a live-preview web page, a streaming API, an OpenAI-compatible gateway."
)
@click.option(
    "--host",
    default=DEFAULT_HOST,
    show_default=True,
    help="Address to bind (anything but loopback needs a token).",
)
@click.option(
    "--port",
    default=DEFAULT_PORT,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="TCP port.",
)
@click.option("--token", help=f"Access token for the API (default: ${TOKEN_ENV}).")
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    metavar="ORIGIN",
    help="Allow this browser origin (repeatable); CORS is off otherwise.",
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("generated-images"),
    show_default=True,
    help="Where images are saved and served from.",
)
@click.option(
    "--no-save",
    is_flag=True,
    help="Keep no images: a pure relay (no gallery, no response_format=url).",
)
@click.option(
    "-p",
    "--provider",
    "default_provider",
    help="Provider when a request names none (default: procedural).",
)
@click.option(
    "--max-per-client",
    default=4,
    show_default=True,
    type=click.IntRange(min=1),
    help="Generations one client may run at once.",
)
@click.option(
    "--max-total",
    default=64,
    show_default=True,
    type=click.IntRange(min=1),
    help="Generations the server runs at once.",
)
def serve(
    host: str,
    port: int,
    token: str | None,
    cors_origins: tuple[str, ...],
    out_dir: Path,
    no_save: bool,
    default_provider: str | None,
    max_per_client: int,
    max_total: int,
) -> None:
    from imagestream.cli import reported_errors

    with reported_errors(verbose=False):
        from ._config import ServerConfig
        from ._run import run_server

        config = ServerConfig(
            host=host,
            port=port,
            token=token if token is not None else ServerConfig.token_from_env(),
            cors_origins=cors_origins,
            out_dir=out_dir,
            save=not no_save,
            default_provider=default_provider,
            max_per_client=max_per_client,
            max_total=max_total,
        ).check()
        run_server(config)
