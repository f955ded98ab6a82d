"""``imagestream chat MESSAGE``: the command this plugin adds to the command line.

Only click is imported here: the command is built whenever the command line
lists its commands. The chat itself is imported when the command runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from imagestream.cli import provider_options

from ._config import DEFAULT_CHAT_MODEL, KEY_ENV, TOKEN_ENV

__all__ = ["chat_command"]


def _read_message(message: str | None) -> str:
    from imagestream.cli import stdin_is_terminal

    if message == "-" or (message is None and not stdin_is_terminal()):
        text = sys.stdin.read().strip() if sys.stdin is not None else ""
    elif message is None:
        raise click.UsageError("no MESSAGE: give it as an argument, or pipe it in")
    else:
        text = message
    if not text.strip():
        raise click.UsageError("the MESSAGE is empty")
    return text


@click.command(
    name="chat",
    help="Chat with a model that can send pictures: the reply streams, and a picture it promises is drawn and saved.",
)
@click.argument("message", required=False)
@click.option(
    "-p",
    "--provider",
    "chat_provider",
    type=click.Choice(["animus"]),
    default="animus",
    show_default=True,
    help="Chat provider.",
)
@click.option("-m", "--model", help=f"Chat model (default: {DEFAULT_CHAT_MODEL}).")
@click.option("--system", help="System message (default: 'You are a helpful assistant.').")
@click.option(
    "--image-provider",
    default="animus",
    show_default=True,
    help="Who draws a promised picture: any provider (animus, gemini, openai, procedural, ...).",
)
@click.option("--image-model", help="The image provider's model.")
@click.option("--size", help="Picture size, WIDTHxHEIGHT, where the image provider takes one.")
@click.option(
    "-o",
    "--option",
    "options",
    multiple=True,
    type=(str, str),
    metavar="KEY VALUE",
    help="Image provider option (repeatable), as for 'imagestream generate'.",
)
@click.option(
    "--history",
    "history_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The conversation as a JSON file: read first (when it exists), written after.",
)
@click.option(
    "--another-image",
    is_flag=True,
    help="Draw a promised picture even on the turn right after one (held back otherwise).",
)
@click.option(
    "--no-images", is_flag=True, help="Only chat: report a promised picture, draw nothing."
)
@click.option(
    "--reasoning", is_flag=True, help="Ask for the model's reasoning and show it on stderr."
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save the picture to this file.",
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("generated-images"),
    show_default=True,
    help="Directory for generated file names.",
)
@click.option("--base-url", help="Animus API root (also used by --image-provider animus).")
@click.option(
    "--api-version", help="Animus API version when --base-url is not given (default: v3)."
)
@click.option("--key", help=f"Animus API key, exchanged for a token (default: ${KEY_ENV}).")
@click.option("--token", help=f"Animus bearer token, sent as it is (default: ${TOKEN_ENV}).")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Stall timeout: fail when nothing arrives for this long.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress, notes or reasoning on stderr.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout at the end.")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks and debug logs.")
def chat_command(
    message: str | None,
    chat_provider: str,
    model: str | None,
    system: str | None,
    image_provider: str,
    image_model: str | None,
    size: str | None,
    options: tuple[tuple[str, str], ...],
    history_path: Path | None,
    another_image: bool,
    no_images: bool,
    reasoning: bool,
    output: Path | None,
    out_dir: Path,
    base_url: str | None,
    api_version: str | None,
    key: str | None,
    token: str | None,
    timeout: float | None,
    quiet: bool,
    as_json: bool,
    verbose: bool,
) -> None:
    """Send MESSAGE; print the reply as it streams; draw and save a picture it promises.

    (The help shows no examples: every example in a --help runs offline in the
    project's tests, and a chat needs Animus.)
    """
    from imagestream.cli import reported_errors

    if verbose:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    with reported_errors(verbose, as_json=as_json):
        import asyncio

        from ._chat_model import AnimusChat
        from .conversation import ChatHistory

        text = _read_message(message)
        history = (
            ChatHistory.load(history_path)
            if history_path and history_path.exists()
            else ChatHistory()
        )
        kwargs: dict[str, Any] = {
            "base_url": base_url,
            "api_version": api_version,
            "reasoning": reasoning,
        }
        kwargs.update(api_key=key, token=token, timeout=timeout)
        if model:
            kwargs["model"] = model
        if system is not None:
            kwargs["system"] = system or None
        chat_model = AnimusChat(**kwargs)
        image_options = provider_options(options)
        image_params: dict[str, Any] = {"model": image_model, "size": size, "timeout": timeout}
        if image_provider == "animus":
            # One set of credentials and one server for both halves.
            image_params.update(base_url=base_url, api_key=key)
            if token:
                image_options.setdefault("token", token)
            if api_version:
                image_options.setdefault("api_version", api_version)
        image_params["options"] = image_options
        image_params = {name: value for name, value in image_params.items() if value is not None}
        turn = asyncio.run(
            _run(
                text,
                history,
                chat_model,
                image_provider,
                image_params,
                out_dir=out_dir,
                output=output,
                history_path=history_path,
                another_image=another_image,
                images=not no_images,
                quiet=quiet,
                as_json=as_json,
            )
        )
        _report(turn, history_path, quiet=quiet, as_json=as_json)


async def _run(
    text: str,
    history: Any,
    chat_model: Any,
    image_provider: str,
    image_params: dict[str, Any],
    *,
    out_dir: Path,
    output: Path | None,
    history_path: Path | None,
    another_image: bool,
    images: bool,
    quiet: bool,
    as_json: bool,
) -> Any:
    import contextlib

    import imagestream

    from .conversation import chat

    chunks = chat(
        text,
        history=history,
        model=chat_model,
        image_provider=image_provider,
        save=imagestream.SaveOptions(out_dir=out_dir, output=output),
        image_params=image_params,
        image_after_image=another_image,
        images=images,
    )
    printed = False  # reply text on stdout, without its final newline yet
    thinking = False
    captioned = False
    with contextlib.ExitStack() as stack:
        progress: imagestream.ProgressDisplay | None = None
        try:
            async with chunks:
                async for chunk in chunks:
                    if isinstance(chunk, imagestream.TextDelta) and chunks.turn.reply is not None:
                        # The image provider's own text (a caption): not the reply.
                        if not quiet and not chunk.thought:
                            click.echo(chunk.text, nl=False, err=True)
                            captioned = True
                        continue
                    if isinstance(chunk, imagestream.TextDelta):
                        if chunk.thought:
                            if not quiet:
                                click.echo(chunk.text, nl=False, err=True)
                                thinking = True
                        elif not as_json:
                            if thinking:
                                click.echo(err=True)
                                thinking = False
                            click.echo(chunk.text, nl=False)
                            sys.stdout.flush()
                            printed = True
                        continue
                    if progress is None:
                        # The reply is over: end its line before a bar is drawn under it.
                        if printed:
                            click.echo()
                            printed = False
                        progress = stack.enter_context(
                            imagestream.ProgressDisplay(enabled=not quiet)
                        )
                    progress.update(chunk)
        finally:
            if printed:
                click.echo()
            if captioned:
                click.echo(err=True)
            if history_path is not None and chunks.turn.reply is not None:
                history.save(history_path)
    return chunks.turn


def _report(turn: Any, history_path: Path | None, *, quiet: bool, as_json: bool) -> None:
    if as_json:
        click.echo(
            json.dumps(
                {
                    "reply": turn.text,
                    "thoughts": turn.reply.thoughts if turn.reply else "",
                    "image_prompt": turn.image_prompt,
                    "skipped_image_prompt": turn.skipped_image_prompt,
                    "skipped_reason": turn.skipped_reason,
                    "images": [saved.as_dict() for saved in turn.saved],
                    "history": str(history_path) if history_path else None,
                }
            )
        )
    if quiet:
        return
    for saved in turn.saved:
        size = f"{saved.width}x{saved.height} " if saved.width else ""
        click.echo(f"saved {saved.path} ({size}{saved.mime_type})", err=True)
    if turn.skipped_image_prompt:
        click.echo(
            f"note: the reply offered a picture ({turn.skipped_image_prompt!r}) that was not drawn: "
            + (
                "pass --another-image to draw one right after another"
                if "follow-up" in (turn.skipped_reason or "")
                else str(turn.skipped_reason)
            ),
            err=True,
        )
