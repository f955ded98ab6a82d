"""Repository files on the site: README pages, and links to the rest of the repository.

Configuration (set in ``conf.py``):

``readme_pages``
    ``{"plugins/imagestream-sse/README.md": "plugins/sse", ...}``: the page
    that shows each README (usually by including it), paths relative to
    ``repo_root``. The READMEs in it are the ones whose links are rewritten.
``repo_root``
    The repository's root directory.
``repo_url``
    What the ``repo:`` link scheme points at (``myst_url_schemes`` in
    ``conf.py``). A relative URL is relative to the HTML output's root.

When a page includes a README (MyST ``{include}``), the README's relative
links are rewritten before it is parsed: a link to another README that is a
page becomes a link to that page (``#anchors`` kept), a link to any other
file of the repository becomes a ``repo:`` link, and a link to a file that
does not exist is a warning (an error with ``-W``).

A relative ``repo_url`` is made relative to each page, so that ``repo:``
links also work from pages in subdirectories.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
# [text](target) or [text](target "title"), not ![image](...); and [label]: target
_INLINE = re.compile(r"(!?\[[^\]]*\]\()(<?)([^()\s<>]+)(>?)((?:\s+\"[^\"]*\")?\))")
_DEFINITION = re.compile(r"^( {0,3}\[[^\]]+\]:\s*)(<?)(\S+?)(>?)(\s.*)?$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def rewrite_links(
    text: str,
    readme: Path,
    root: Path,
    pages: Mapping[str, str],
    warn: Callable[[str], None],
) -> str:
    """``text`` (Markdown read from ``readme``) with its relative links rewritten.

    Args:
        text: The Markdown.
        readme: The file it was read from (relative links start there).
        root: The repository's root.
        pages: README paths relative to ``root``, each to the docname of its page.
        warn: Called with a message for each link to a file that does not exist.
    """

    def target(link: str) -> str:
        if _SCHEME.match(link) or link.startswith(("#", "/")):
            return link
        path, hash_, anchor = link.partition("#")
        resolved = (readme.parent / path).resolve()
        if not resolved.is_relative_to(root):
            warn(f"{readme} links to {link}, outside the repository")
            return link
        relative = resolved.relative_to(root).as_posix()
        if relative in pages:
            return f"/{pages[relative]}.md{hash_}{anchor}"
        if not resolved.exists():
            warn(f"{readme} links to {link}, which does not exist")
            return link
        return f"repo:{relative}{hash_}{anchor}"

    def inline(match: re.Match[str]) -> str:
        opening, left, link, right, closing = match.groups()
        if opening.startswith("!"):
            return match.group(0)  # an image: the include's :relative-images: handles it
        return f"{opening}{left}{target(link)}{right}{closing}"

    lines = text.split("\n")
    fence = None
    for number, line in enumerate(lines):
        stripped = line.strip()
        if fence is not None:
            if stripped.startswith(fence) and set(stripped) == {fence[0]}:
                fence = None
            continue
        opening = _FENCE.match(line)
        if opening:
            fence = opening.group(1)
            continue
        line = _INLINE.sub(inline, line)
        definition = _DEFINITION.match(line)
        if definition:
            label, left, link, right, rest = definition.groups()
            line = f"{label}{left}{target(link)}{right}{rest or ''}"
        lines[number] = line
    return "\n".join(lines)


def _on_include_read(
    app: Any, relative_path: Path, parent_docname: str, content: list[str]
) -> None:
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    readme = (Path(app.srcdir) / relative_path).resolve()
    root = Path(app.config.repo_root).resolve()
    pages = app.config.readme_pages
    if readme.is_relative_to(root) and readme.relative_to(root).as_posix() in pages:
        content[0] = rewrite_links(
            content[0],
            readme,
            root,
            pages,
            lambda message: logger.warning(message, location=app.env.docname),
        )


def _relative_repo_links(app: Any, doctree: Any, docname: str) -> None:
    from docutils import nodes

    url = app.config.repo_url
    if _SCHEME.match(url) or url.startswith("/") or "/" not in docname:
        return
    prefix = "../" * docname.count("/")
    for ref in doctree.findall(nodes.reference):
        if "repo-link" in ref.get("classes", ()) and ref.get("refuri", "").startswith(url):
            ref["refuri"] = posixpath.normpath(prefix + ref["refuri"])


def setup(app: Any) -> dict[str, Any]:
    app.add_config_value("readme_pages", {}, "env", dict)
    app.add_config_value("repo_root", "", "env", str)
    app.add_config_value("repo_url", "", "env", str)
    app.connect("include-read", _on_include_read)
    app.connect("doctree-resolved", _relative_repo_links)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
