"""``imagestream providers`` and ``imagestream plugins`` as text, and run without click.

Both list what the installed plugins register, and people and scripts run
them as they are, to see what is installed: :func:`run_listing` prints them
directly when the command line is exactly one of :data:`LISTINGS`, with the
errors and plugin warnings the click commands print (:mod:`._report`).
Importing click and building the command group would cost as much as the
listing itself. Any other argument (``--help``, a typo) goes through click,
whose commands (:mod:`._inspect`) print the same text.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Callable

from ._report import error_text, failed_plugin_lines, failure


def providers_text(as_json: bool) -> str:
    """What ``imagestream providers [--json]`` prints, without its last newline."""
    # The registry, not imagestream.list_providers: the run machinery (asyncio,
    # the HTTP client, the built-in plugins) stays unimported, and so do the
    # providers' classes (registered as LazyProvider).
    from .._plugins import listing_plugin_manager

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # failures are reported by 'imagestream plugins'
        registered = listing_plugin_manager().registry.providers
        found = [registered[name] for name in sorted(registered)]
    if as_json:
        return json.dumps([p.describe() for p in found], indent=2)
    if not found:
        return "no providers installed (pip install imagestream-procedural)"
    lines = []
    for provider in found:
        if provider.streams_previews:
            previews = "real previews"
        elif provider.can_stream:
            previews = "streams, no previews"  # text or progress as it comes, pictures at the end
        else:
            previews = "no previews (fake streaming)"
        key = f", key from ${provider.key_env}" if provider.key_env else ", no key"
        lines.append(f"{provider.name}: {provider.description} [{previews}{key}]")
        for model in provider.models:
            mark = " (default)" if model.id == provider.default_model else ""
            stream = "previews" if model.streams_previews else "no previews"
            lines.append(f"  {model.id}{mark}  {stream}  {model.description}")
    return "\n".join(lines)


def plugins_text() -> str:
    """What ``imagestream plugins`` prints, without its last newline."""
    # The built-ins are listed as declared (BUILTIN_HOOKS), not imported: like
    # 'providers', this imports the installed plugins' entry modules only.
    from .._plugins import listing_plugin_manager

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the JSON says it all
        manager = listing_plugin_manager()
        manager.registry.providers  # noqa: B018 - registering can fail too; report it
        manager.registry.decoder_names  # noqa: B018
        infos = manager.listed_plugin_infos()
    return json.dumps([info.as_dict() for info in infos], indent=2)


LISTINGS: dict[tuple[str, ...], Callable[[], str]] = {
    ("providers",): lambda: providers_text(as_json=False),
    ("providers", "--json"): lambda: providers_text(as_json=True),
    ("plugins",): plugins_text,
}
"""The command lines :func:`run_listing` runs itself, and what each prints."""


def run_listing(args: list[str]) -> int | None:
    """Print the listing ``args`` ask for and return the exit code; ``None`` if they ask for none.

    Errors are reported as :func:`~imagestream.cli.reported_errors` does
    without ``--verbose``, and plugins that failed to load as the command
    group does when a command ends.
    """
    listing = LISTINGS.get(tuple(args))
    if listing is None:
        return None
    try:
        text = listing()
    except (KeyboardInterrupt, Exception) as exc:
        message, hint, code = failure(exc)
        _say(error_text(message, hint))
    else:
        code = 0
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    for line in failed_plugin_lines(set()):
        _say(line)
    return code


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
