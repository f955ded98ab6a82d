"""Running the application until Ctrl-C, with handler cancellation on client disconnect."""

from __future__ import annotations

import asyncio

import click
from aiohttp import web

from ._app import make_app
from ._config import ServerConfig

__all__ = ["run_server"]


async def _serve(config: ServerConfig) -> None:
    # handler_cancellation: a client that disconnects cancels its handler at
    # once, which closes the generation and the provider's connection.
    runner = web.AppRunner(make_app(config), handler_cancellation=True, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port, backlog=1024)
        await site.start()
        host, port = runner.addresses[0][:2]
        shown = f"[{host}]" if ":" in str(host) else host
        click.echo(f"imagestream serve: http://{shown}:{port}/  (Ctrl-C to stop)", err=True)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def run_server(config: ServerConfig) -> None:
    """Serve ``config`` until interrupted."""
    try:
        asyncio.run(_serve(config))
    except KeyboardInterrupt:
        click.echo("imagestream serve: stopped", err=True)
