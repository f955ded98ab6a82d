"""Fail the HTML build on a broken internal link.

After an HTML build, every ``href`` and ``src`` in the written pages that is
not an absolute URL (``https:``, ``mailto:``, ...) must name a file of the
output, and its ``#fragment`` an ``id`` (or ``name``) in that file. Links
with the ``repo-link`` class point into the repository, outside the output,
and are checked where they are made (see ``readme_pages``). Each broken link
is a warning naming the page it is on; if there is any, the build fails
(exit status 1, with or without ``-W``).
"""

from __future__ import annotations

import posixpath
import re
from collections import defaultdict
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_LINK_ATTRS = {"a": "href", "link": "href", "img": "src", "script": "src", "iframe": "src"}


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("id", "name") if tag == "a" else ("id",):
            anchor = values.get(name)
            if anchor:
                self.anchors.add(anchor)
        link = values.get(_LINK_ATTRS.get(tag, ""))
        if link is not None and "repo-link" not in (values.get("class") or "").split():
            self.links.append(link)


def broken_links(outdir: Path) -> dict[str, list[str]]:
    """``{page: [link, ...]}`` for every internal link of the HTML in ``outdir`` that does not resolve."""
    pages: dict[str, _Page] = {}
    for path in sorted(outdir.rglob("*.html")):
        parser = _Page()
        parser.feed(path.read_text(encoding="utf-8"))
        pages[path.relative_to(outdir).as_posix()] = parser
    broken: dict[str, list[str]] = defaultdict(list)
    for name, page in pages.items():
        for link in page.links:
            if _SCHEME.match(link) or link.startswith("//"):
                continue
            parts = urlsplit(link)
            target = name
            if parts.path:
                target = posixpath.normpath(
                    posixpath.join(posixpath.dirname(name), unquote(parts.path))
                )
                if target.startswith("../") or not (outdir / target).exists():
                    broken[name].append(link)
                    continue
                if (outdir / target).is_dir():
                    target = posixpath.join(target, "index.html")
            fragment = unquote(parts.fragment)
            if fragment and target in pages and fragment not in pages[target].anchors:
                broken[name].append(link)
    return dict(broken)


def _check(app: Any, exception: Exception | None) -> None:
    from sphinx.util import logging

    if exception is not None or app.builder.format != "html":
        return
    logger = logging.getLogger(__name__)
    for page, links in broken_links(Path(app.outdir)).items():
        for link in links:
            # Reported against the page's source (an included README is part of its page).
            location = (page.removesuffix(".html"), None)
            logger.warning("broken internal link: %s", link, location=location)
        app.statuscode = 1  # a failed build, with or without -W


def setup(app: Any) -> dict[str, Any]:
    app.connect("build-finished", _check)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
