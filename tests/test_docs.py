"""The documentation keeps up with the code.

Fast checks that need no Sphinx: every hook is in the hook reference and has a
docstring with its arguments, every public name is documented, every plugin
has a README and is linked, and the code the plugin guide shows passes its
own tests. The full Sphinx build runs only with ``IMAGESTREAM_BUILD_DOCS=1``
(the nox ``docs`` session builds the docs for real).
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import imagestream
from imagestream import hookspecs

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
PLUGIN_DIRS = sorted(
    path for path in (ROOT / "plugins").iterdir() if (path / "pyproject.toml").exists()
)

# The hooks this suite knows of: discovery below must find at least these.
KNOWN_HOOKS = {
    "register_providers",
    "register_decoders",
    "stream",
    "generate",
    "postprocess",
    "save",
    "on_request",
    "on_chunk",
    "on_result",
    "on_error",
}


def declared_hooks() -> dict[str, Callable[..., Any]]:
    """Every function in ``imagestream.hookspecs`` marked as a hook specification."""
    marker = hookspecs.PROJECT + "_spec"
    return {
        name: value
        for name, value in vars(hookspecs).items()
        if inspect.isfunction(value) and hasattr(value, marker)
    }


def page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def all_pages() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in sorted(DOCS.glob("*.md")))


def args_section(doc: str) -> str:
    """The body of a Google-style ``Args:`` section (empty if there is none)."""
    sections = "Returns|Yields|Raises|Warns|Examples?|Notes?|Attributes|See Also|Todo"
    match = re.search(rf"^\s*Args:\n(.*?)(?=^\s*(?:{sections}):|\Z)", doc, re.S | re.M)
    return match.group(1) if match else ""


def test_the_known_hooks_are_declared() -> None:
    assert set(declared_hooks()) >= KNOWN_HOOKS


@pytest.mark.parametrize("name", sorted(declared_hooks()))
def test_hook_is_in_the_hook_reference(name: str) -> None:
    text = page("hooks.md")
    whole_module = re.search(
        r"automodule::\s+imagestream\.hookspecs\s*\n(\s+:[^\n]*\n)*?\s+:members:", text
    )
    listed = re.search(rf"autofunction::\s+imagestream\.hookspecs\.{name}\s*$", text, re.M)
    assert whole_module or listed, (
        f"docs/hooks.md has no '.. autofunction:: imagestream.hookspecs.{name}'"
    )


@pytest.mark.parametrize("name", sorted(declared_hooks()))
def test_hook_docstring_explains_every_argument(name: str) -> None:
    hook = declared_hooks()[name]
    doc = inspect.getdoc(hook)
    assert doc, f"hook {name} has no docstring"
    params = list(inspect.signature(hook).parameters)
    if not params:
        return
    section = args_section(doc)
    assert section, f"the docstring of hook {name} has no 'Args:' section"
    for param in params:
        assert re.search(rf"^\s*{param}\b.*:", section, re.M), (
            f"hook {name}: 'Args:' does not describe {param!r}"
        )


def test_the_hook_reference_shows_the_lifecycle() -> None:
    text = page("hooks.md")
    assert re.search(r"automodule::\s+imagestream\.hookspecs", text), (
        "the module docstring (lifecycle) is missing"
    )


@pytest.mark.parametrize("name", sorted(imagestream.__all__))
def test_public_name_is_documented(name: str) -> None:
    pattern = rf"imagestream\.{re.escape(name)}(?![\w])"
    assert re.search(pattern, page("api.md")) or re.search(pattern, all_pages()), (
        f"imagestream.{name} is public but no page in docs/ mentions it"
    )


@pytest.mark.parametrize("plugin", PLUGIN_DIRS, ids=lambda path: path.name)
def test_plugin_has_a_readme(plugin: Path) -> None:
    assert (plugin / "README.md").is_file(), f"{plugin.name} has no README.md"


@pytest.mark.parametrize("plugin", PLUGIN_DIRS, ids=lambda path: path.name)
def test_plugin_is_listed_with_a_link_to_its_readme(plugin: Path) -> None:
    assert f"(repo:plugins/{plugin.name}/README.md)" in page("plugins.md")


def test_repository_links_point_at_existing_files() -> None:
    for target in re.findall(r"\]\(repo:([^)#]+)", all_pages()):
        assert (ROOT / target).exists(), f"a page links to {target}, which does not exist"


def test_included_files_exist() -> None:
    for target in re.findall(r"```\{literalinclude\}\s+(\S+)", all_pages()):
        assert (DOCS / target).is_file(), f"a page includes {target}, which does not exist"


def test_the_guide_shows_the_example_plugins_entry_point() -> None:
    pyproject = (EXAMPLES / "imagestream-solid" / "pyproject.toml").read_text(encoding="utf-8")
    snippet = '[project.entry-points.imagestream]\nsolid = "imagestream_solid._plugin"'
    assert snippet in pyproject
    assert snippet in page("writing-a-plugin.md")


def _clean_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("IMAGESTREAM_")}


def test_the_guides_example_code_passes_its_tests() -> None:
    """The tutorial plugin and the snippets the guide includes (``docs/examples``)."""
    for module in ("imagestream_sse", "aiohttp", "pytest_asyncio"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"the examples need {module}")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLES)],
        cwd=ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_sphinx_build_is_warning_free(tmp_path: Path) -> None:
    if os.environ.get("IMAGESTREAM_BUILD_DOCS") != "1":
        pytest.skip("set IMAGESTREAM_BUILD_DOCS=1 to build the docs (or run: nox -s docs)")
    command = [
        sys.executable,
        "-m",
        "sphinx",
        "-W",
        "--keep-going",
        "-b",
        "html",
        "-d",
        str(tmp_path / "doctrees"),
        str(DOCS),
        str(tmp_path / "html"),
    ]
    done = subprocess.run(
        command, cwd=ROOT, env=_clean_env(), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
