"""The documentation keeps up with the code.

Fast checks that need no Sphinx: every hook is in the hook reference and has a
docstring with its arguments, every public name is documented, every plugin
has a README that is a page of the site, the code the plugin guide and the
cookbook show is the code in ``docs/examples`` and passes its own tests, the
docs' own extensions (``docs/_ext``) do what they say, and no page or example
names a private module. The full Sphinx build runs only with
``IMAGESTREAM_BUILD_DOCS=1`` (the nox ``docs`` session builds the docs for
real); it then checks the generated command line reference and plugin pages.
"""

from __future__ import annotations

import difflib
import importlib.util
import inspect
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

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
    "register_commands",
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


# Every page of the site: docs/*.md and the pages in subdirectories (docs/plugins/).
PAGES = sorted(
    path
    for path in DOCS.rglob("*.md")
    if not {"_build", "_ext", "examples"} & set(path.relative_to(DOCS).parts)
)


def all_pages() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in PAGES)


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


def _kit_names() -> list[str]:
    from imagestream import provider

    return sorted(set(provider.__all__) - set(imagestream.__all__))


@pytest.mark.parametrize("name", _kit_names())
def test_provider_kit_name_is_in_the_api_reference(name: str) -> None:
    # The names the kit shares with the top level are covered above.
    pattern = rf"^\.\. [\w:]+:: imagestream\.provider\.{re.escape(name)}\b"
    assert re.search(pattern, page("api.md"), re.M), (
        f"imagestream.provider.{name} is public but docs/api.md has no entry for it"
    )


@pytest.mark.parametrize("plugin", PLUGIN_DIRS, ids=lambda path: path.name)
def test_plugin_has_a_readme(plugin: Path) -> None:
    assert (plugin / "README.md").is_file(), f"{plugin.name} has no README.md"


def plugin_page(plugin: Path) -> Path:
    """``docs/plugins/<name>.md``, the page that shows ``plugins/imagestream-<name>/README.md``."""
    return DOCS / "plugins" / f"{plugin.name.removeprefix('imagestream-')}.md"


@pytest.mark.parametrize("plugin", PLUGIN_DIRS, ids=lambda path: path.name)
def test_plugin_has_a_page_that_includes_its_readme(plugin: Path) -> None:
    path = plugin_page(plugin)
    assert path.is_file(), f"{plugin.name} has no page: add docs/plugins/{path.name}"
    included = re.findall(r"^```\{include\}\s+(\S+)", path.read_text(encoding="utf-8"), re.M)
    assert [(path.parent / target).resolve() for target in included] == [plugin / "README.md"]


@pytest.mark.parametrize("plugin", PLUGIN_DIRS, ids=lambda path: path.name)
def test_plugin_is_listed_with_a_link_to_its_page(plugin: Path) -> None:
    name = plugin_page(plugin).stem
    text = page("plugins.md")
    assert f"[{plugin.name}](plugins/{name}.md)" in text
    assert re.search(rf"```\{{toctree\}}[^`]*^plugins/{name}$", text, re.M), (
        f"docs/plugins.md has no toctree entry plugins/{name}"
    )


def test_no_page_links_to_a_readme_that_is_a_page() -> None:
    for target in re.findall(r"\]\(repo:([^)#]+)", all_pages()):
        assert not re.fullmatch(r"plugins/[^/]+/README\.md", target), (
            f"a page links to the file {target}; link to its page in docs/plugins/ instead"
        )


def test_repository_links_point_at_existing_files() -> None:
    for target in re.findall(r"\]\(repo:([^)#]+)", all_pages()):
        assert (ROOT / target).exists(), f"a page links to {target}, which does not exist"


def test_included_files_exist() -> None:
    for path in PAGES:
        text = path.read_text(encoding="utf-8")
        for target in re.findall(r"```\{(?:literalinclude|include)\}\s+(\S+)", text):
            assert (path.parent / target).is_file(), (
                f"{path.relative_to(DOCS)} includes {target}, which does not exist"
            )


def test_the_guide_shows_the_example_plugins_entry_point() -> None:
    pyproject = (EXAMPLES / "imagestream-solid" / "pyproject.toml").read_text(encoding="utf-8")
    snippet = '[project.entry-points.imagestream]\nsolid = "imagestream_solid._plugin"'
    assert snippet in pyproject
    assert snippet in page("writing-a-plugin.md")


def test_the_example_plugin_pins_the_cores_minor_series() -> None:
    from packaging.requirements import Requirement

    pyproject = tomllib.loads(
        (EXAMPLES / "imagestream-solid" / "pyproject.toml").read_text(encoding="utf-8")
    )
    pinned = next(
        dep
        for dep in pyproject["project"]["dependencies"]
        if Requirement(dep).name == "imagestream"
    )
    core = Requirement(pinned)
    assert core.specifier.contains(imagestream.__version__), (
        f"the example plugin pins {core}, which excludes imagestream {imagestream.__version__}"
    )
    major, minor = (int(part) for part in imagestream.__version__.split(".")[:2])
    assert not core.specifier.contains(f"{major}.{minor + 1}.0"), (
        f"{core} admits the next minor release, which may change the public API"
    )
    # The pages that tell plugin authors what to pin say the same.
    for mention in re.findall(r"imagestream>=[\d.]+,<[\d.]+", all_pages()):
        assert mention == pinned, f"a page recommends {mention}; the example pins {pinned}"


# -- the guide's code is the tested code in docs/examples ---------------------
#
# Convention: a fenced code block whose first line is ``# file: PATH`` shows
# the whole of ``docs/examples/PATH``; one whose first line is ``# from: PATH``
# shows a part of it, whole lines, verbatim.

GUIDE = "writing-a-plugin.md"
_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_CLAIM = re.compile(r"^#\s*(?:file|from)\b")
_SHOWS = re.compile(r"^# (?P<kind>file|from): (?P<path>[\w./-]+)$")


class CodeBlock(NamedTuple):
    page: str
    line: int
    """Line number of the opening fence."""
    info: str
    body: list[str]

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


def code_blocks(name: str) -> list[CodeBlock]:
    """The fenced code blocks of a page, as CommonMark (and so MyST) reads them.

    Fences may be indented (inside a list or a definition); the content loses
    as much of the indentation as the opening fence had.
    """
    blocks: list[CodeBlock] = []
    lines = page(name).splitlines()
    number = 0
    while number < len(lines):
        opening = _FENCE.match(lines[number].rstrip())
        number += 1
        if opening is None:
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        start = number
        body: list[str] = []
        while number < len(lines):
            line = lines[number]
            number += 1
            stripped = line.strip()
            if stripped.startswith(fence) and set(stripped) == {fence[0]}:
                break
            spaces = len(line) - len(line.lstrip(" "))
            body.append(line[min(spaces, indent) :])
        blocks.append(CodeBlock(name, start, opening["info"].strip(), body))
    return blocks


def claiming_blocks() -> list[CodeBlock]:
    """Every block, on any page, whose first line claims to show an example file."""
    return [
        block
        for path in sorted(DOCS.glob("*.md"))
        for block in code_blocks(path.name)
        if block.body and _CLAIM.match(block.body[0])
    ]


def _shown_whole(name: str) -> set[str]:
    shown = set()
    for block in code_blocks(name):
        claim = _SHOWS.match(block.body[0]) if block.body else None
        if claim and claim["kind"] == "file":
            shown.add(claim["path"])
    return shown


def test_the_guide_has_code_blocks_that_name_their_files() -> None:
    # Guards the parser: if it found nothing, the tests below would pass vacuously.
    assert len([block for block in claiming_blocks() if block.page == GUIDE]) >= 10


@pytest.mark.parametrize("block", claiming_blocks(), ids=str)
def test_code_block_is_the_file_it_names(block: CodeBlock) -> None:
    claim = _SHOWS.match(block.body[0])
    assert claim, f"{block}: write the first line as '# file: PATH' or '# from: PATH'"
    target = EXAMPLES / claim["path"]
    assert target.is_file(), f"{block} names {claim['path']}, which is not in docs/examples"
    shown = "\n".join(block.body[1:]) + "\n"
    actual = target.read_text(encoding="utf-8")
    if claim["kind"] == "file":
        diff = "".join(
            difflib.unified_diff(
                actual.splitlines(keepends=True),
                shown.splitlines(keepends=True),
                f"docs/examples/{claim['path']}",
                str(block),
            )
        )
        assert shown == actual, f"{block} differs from the file it names:\n{diff}"
    else:
        assert ("\n" + shown) in ("\n" + actual), (
            f"{block} is not a verbatim part of docs/examples/{claim['path']}"
        )


EXAMPLE_FILES = sorted(
    [
        EXAMPLES / "imagestream-solid" / "pyproject.toml",
        *(EXAMPLES / "imagestream-solid").glob("src/**/*.py"),
        *(EXAMPLES / "imagestream-solid").glob("tests/*.py"),
        *(
            path
            for path in (EXAMPLES / "snippets").glob("*.py")
            if not path.name.startswith("test_")
        ),
    ]
)


@pytest.mark.parametrize(
    "path", EXAMPLE_FILES, ids=lambda path: path.relative_to(EXAMPLES).as_posix()
)
def test_the_guide_shows_each_example_file_whole(path: Path) -> None:
    name = path.relative_to(EXAMPLES).as_posix()
    assert name in _shown_whole(GUIDE), (
        f"{GUIDE} does not show {name}: add a code block starting with '# file: {name}'"
    )


def test_the_guides_code_is_in_the_page_itself() -> None:
    # Readable where the Markdown is read (a repository browser, an editor), not
    # only in the built HTML.
    assert "literalinclude" not in page(GUIDE)


# -- only public modules ------------------------------------------------------

# imagestream._anything, imagestream.<package>._anything, and
# "from imagestream... import _anything"; dunders such as __version__ are public.
_PRIVATE = re.compile(
    r"\bimagestream(?:\.[A-Za-z]\w*)*\._(?!_)\w*"
    r"|\bfrom\s+imagestream(?:\.\w+)*\s+import\s+\(?\s*(?:\w+\s*,\s*)*_(?!_)\w*"
)
PUBLIC_TEXTS = sorted(
    [
        *PAGES,
        *(
            path
            for path in EXAMPLES.rglob("*")
            if path.suffix in {".py", ".toml", ".md"} and "__pycache__" not in path.parts
        ),
    ]
)


def test_the_private_name_pattern() -> None:
    for private in (
        "from imagestream._http import error_for_status",
        "import imagestream._http",
        "from imagestream import (\n    Chunk,\n    _http,\n)",
        "imagestream._builtins.fake_streaming.chunks_from_response",
        "imagestream.cli._options",
    ):
        assert _PRIVATE.search(private), private
    for public in (
        "from imagestream.provider import Options, redact",
        "imagestream.__version__",
        "imagestream_solid._plugin",
        "imagestream.hookspecs.register_commands",
    ):
        assert not _PRIVATE.search(public), public


@pytest.mark.parametrize("path", PUBLIC_TEXTS, ids=lambda path: path.relative_to(DOCS).as_posix())
def test_no_private_core_module_is_named(path: Path) -> None:
    found = sorted({match[0] for match in _PRIVATE.finditer(path.read_text(encoding="utf-8"))})
    assert not found, (
        f"docs/{path.relative_to(DOCS).as_posix()} names private core modules: {found}; "
        "use the names exported by imagestream or imagestream.provider"
    )


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
    html = tmp_path / "html"

    # The command line reference has a section for every command.
    import click

    from imagestream.cli import main

    cli = (html / "cli.html").read_text(encoding="utf-8")
    with click.Context(main, info_name="imagestream") as ctx:
        for name in main.list_commands(ctx):
            assert f'id="cli-imagestream-{name}"' in cli, f"cli.html has no 'imagestream {name}'"

    # Each plugin's page is its README, whose links to other READMEs lead to their pages.
    for plugin in PLUGIN_DIRS:
        built = (html / "plugins" / f"{plugin_page(plugin).stem}.html").read_text(encoding="utf-8")
        assert f"<h1>{plugin.name}" in built
        for href in re.findall(r'href="([^"]*)"', built):
            assert not re.search(r"imagestream-[\w-]+/README\.md", href), (
                f"{plugin.name}'s page links to the file {href} instead of its page"
            )


def test_the_build_checks_every_internal_link(tmp_path: Path) -> None:
    # What the check after every HTML build (docs/_ext/internal_links.py) finds.
    internal_links = _docs_extension("internal_links")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "page.html").write_text(
        '<h2 id="here">x</h2><a href="#here">ok</a><a href="#gone">bad anchor</a>'
        '<a href="../index.html#top">ok</a><a href="../index.html#nope">bad anchor</a>'
        '<a href="missing.html">bad file</a><a href="https://example.org/x">external</a>'
        '<a class="repo-link reference" href="../../../../README.md">repository</a>'
        '<a href="../../outside.html">outside the site</a><img src="../_static/logo.png">',
        encoding="utf-8",
    )
    (tmp_path / "index.html").write_text(
        '<a name="top"></a><a href="sub/page.html#here">ok</a><a href="#">top</a>',
        encoding="utf-8",
    )
    assert internal_links.broken_links(tmp_path) == {
        "sub/page.html": [
            "#gone",
            "../index.html#nope",
            "missing.html",
            "../../outside.html",
            "../_static/logo.png",
        ]
    }


def _docs_extension(name: str) -> Any:
    path = DOCS / "_ext" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"docs_ext_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_readme_links_become_page_and_repository_links() -> None:
    # What docs/_ext/readme_pages.py does to a README that a page includes.
    readme_pages = _docs_extension("readme_pages")
    pages = {
        f"plugins/{plugin.name}/README.md": f"plugins/{plugin_page(plugin).stem}"
        for plugin in PLUGIN_DIRS
    }
    readme = ROOT / "plugins" / "imagestream-google" / "README.md"
    text = (
        "See [sse](../imagestream-sse/README.md#limits), [the core](../../README.md),\n"
        "[a page](https://example.org/a.md), [here](#install) and ![logo](logo.png).\n"
        "[ref]: ../imagestream-openai/README.md\n"
        "```md\n[untouched](../../README.md)\n```\n"
        "[gone](../imagestream-gone/README.md) and [out](../../../elsewhere.md)\n"
    )
    warnings: list[str] = []
    assert readme_pages.rewrite_links(text, readme, ROOT, pages, warnings.append) == (
        "See [sse](/plugins/sse.md#limits), [the core](repo:README.md),\n"
        "[a page](https://example.org/a.md), [here](#install) and ![logo](logo.png).\n"
        "[ref]: /plugins/openai.md\n"
        "```md\n[untouched](../../README.md)\n```\n"
        "[gone](../imagestream-gone/README.md) and [out](../../../elsewhere.md)\n"
    )
    assert len(warnings) == 2
    assert "does not exist" in warnings[0]
    assert "outside the repository" in warnings[1]


# -- pages generated or assembled at build time ---------------------------------


def test_every_command_loads_for_the_cli_reference() -> None:
    # docs/cli.md walks the command line; a command that cannot be imported stops the build.
    import click

    from imagestream.cli import main

    with click.Context(main, info_name="imagestream") as ctx:
        for name in main.list_commands(ctx):
            assert isinstance(main.get_command(ctx, name), click.Command), name


COOKBOOK = EXAMPLES / "cookbook"


@pytest.mark.parametrize(
    "path",
    sorted(
        path
        for path in COOKBOOK.glob("*.py")
        if not path.name.startswith("test_") and path.name != "conftest.py"
    ),
    ids=lambda path: path.name,
)
def test_the_cookbook_shows_each_recipe(path: Path) -> None:
    shown = re.findall(r"^```\{literalinclude\}\s+(\S+)", page("cookbook.md"), re.M)
    assert f"examples/cookbook/{path.name}" in shown, (
        f"docs/cookbook.md does not include examples/cookbook/{path.name}"
    )
