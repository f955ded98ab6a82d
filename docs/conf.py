"""Sphinx configuration for the imagestream documentation.

Build with ``nox -s docs``, or directly::

    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))

project = "imagestream"
author = "imagestream developers"
copyright = "imagestream developers"
try:
    release = importlib.metadata.version("imagestream")
except importlib.metadata.PackageNotFoundError:  # building from a tree that is not installed
    release = "unknown"
version = release

# Repository files that are not pages are linked as files of the checkout the
# docs were built from (docs/_build/html is three levels below the repository
# root; readme_pages makes the link relative to each page). Set
# IMAGESTREAM_DOCS_REPO_URL to a published tree (".../blob/main") to link there.
REPO_URL = os.environ.get("IMAGESTREAM_DOCS_REPO_URL", "../../..")

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    # docs/_ext
    "cli_reference",
    "internal_links",
    "readme_pages",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
# examples/ holds code that the pages include; it is not a set of pages.
exclude_patterns = ["_build", "_ext", "examples", "Thumbs.db", ".DS_Store"]

# -- plugin pages --------------------------------------------------------------

# docs/plugins/<name>.md includes plugins/imagestream-<name>/README.md; links
# between READMEs become links between these pages (see docs/_ext/readme_pages.py).
readme_pages = {
    f"plugins/{path.parent.name}/README.md": f"plugins/{path.parent.name.removeprefix('imagestream-')}"
    for path in sorted(ROOT.glob("plugins/imagestream-*/README.md"))
}
# A README's link to the repository's own README ("[imagestream](../../README.md)")
# leads to the site's front page, which introduces the same project.
readme_pages["README.md"] = "index"
repo_root = str(ROOT)
repo_url = REPO_URL

# -- MyST ----------------------------------------------------------------------

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
# [text](repo:noxfile.py) links to a file in the repository that is not a page.
myst_url_schemes = {
    "http": None,
    "https": None,
    "mailto": None,
    "repo": {
        "url": f"{REPO_URL}/{{{{path}}}}",
        "title": "{{path}}",
        "classes": ["repo-link"],
    },
}

# -- autodoc -------------------------------------------------------------------

# Annotations name types imported only for type checkers; describing them in
# the parameter lists keeps signatures short and avoids unresolvable references.
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_member_order = "bysource"
# imagestream.testing imports pytest, which the docs environment need not have.
autodoc_mock_imports = ["pytest"]
autodoc_class_signature = "mixed"
add_module_names = False
python_use_unqualified_type_names = True

# The code uses Google-style docstrings ("Args:", "Attributes:", "Raises:").
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = False
napoleon_use_rtype = False
napoleon_custom_sections = [("Class attributes", "params_style")]

# Not nitpicky: without intersphinx (the build must work offline) every
# standard-library type in a signature would be a warning, and several
# docstrings refer to private or unexported names. The links that are on the
# pages are checked after each build instead (docs/_ext/internal_links.py).
nitpicky = False


def _attrs_signature(app, what, name, obj, options, signature, return_annotation):
    """Show an attrs class's real defaults (``extra={}``) instead of the generated ``NOTHING``."""
    import attrs

    if what != "class" or not attrs.has(obj) or signature is None:
        return None
    params = []
    for field in attrs.fields(obj):
        if not field.init:
            continue
        default = field.default
        if default is attrs.NOTHING:
            params.append(field.alias)
        elif isinstance(default, attrs.Factory) and not default.takes_self:
            params.append(f"{field.alias}={default.factory()!r}")
        else:
            params.append(f"{field.alias}={default!r}")
    return f"({', '.join(params)})", return_annotation


def setup(app):
    app.connect("autodoc-process-signature", _attrs_signature)


# -- HTML ----------------------------------------------------------------------

html_theme = "furo"
html_title = f"imagestream {release}"
html_theme_options = {
    "navigation_with_keys": True,
}
html_static_path: list[str] = []
