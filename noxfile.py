"""Developer tasks: ``nox`` runs tests, lint, typecheck and docs; ``nox -s bench`` the benchmarks."""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests", "fast", "lint", "typecheck", "docs"]

ROOT = Path(__file__).parent
# Order matters only for readability: pip resolves the local distributions together.
PLUGINS = [
    "plugins/imagestream-sse",
    "plugins/imagestream-msgpack",
    "plugins/imagestream-procedural",
    "plugins/imagestream-openai",
    "plugins/imagestream-novelai",
    "plugins/imagestream-google",
    "plugins/imagestream-comfyui",
    "plugins/imagestream-a1111",
    "plugins/imagestream-server",
    "plugins/imagestream-batch",
    "plugins/imagestream-animus",
]
TEST_DEPS = [
    "pytest>=8",
    "pytest-asyncio>=0.24",
    "pytest-timeout>=2.3",
    "hypothesis>=6.100",
    "pillow>=10",
    "pyyaml>=6",
    "openai>=1.60",
    "google-genai>=3.0",
    "google-auth>=2.20",
    "playwright>=1.40",
    # imagestream-batch's Ray engine is tested on a local Ray (its optional [ray] extra).
    "ray>=2.40",
]
PEERS = ["openai>=1.60", "httpx>=0.27", "httpx-sse>=0.4", "orjson", "pybase64"]
# Plugins that need PyTorch: installed, after torch itself, only by the
# sessions that run them (tests, bench); lint, typecheck and docs do without.
TORCH_PLUGINS = ["plugins/imagestream-diffusers"]
# The CPU build that this project's machines keep for pip (uv does not look
# there); elsewhere pip fetches the release from PyPI.
TORCH = "torch==2.13.0"


def _install_torch(session: nox.Session) -> None:
    """torch with pip, before anything that depends on it.

    Resolved by uv from scratch, any torch requirement takes the CUDA build
    (several GB). pip takes the pinned build instead; the torch plugins ask
    only for torch>=2.1, which it satisfies, so uv then leaves it alone.
    """
    session.install("pip")
    # run_install: part of the install step, so that --install-only installs it too.
    session.run_install("python", "-m", "pip", "install", "--quiet", TORCH)


def _install_project(session: nox.Session, *extra: str, torch: bool = False) -> None:
    editable = ["-e", "."]
    plugins = PLUGINS + (TORCH_PLUGINS if torch else [])
    for plugin in plugins:
        if (ROOT / plugin / "pyproject.toml").exists():
            editable += ["-e", plugin]
    if torch:
        _install_torch(session)
    session.install(*editable, *extra)


@nox.session
def tests(session: nox.Session) -> None:
    """Run every test: the core's and each plugin's."""
    _install_project(session, *TEST_DEPS, torch=True)
    session.run("pytest", *(session.posargs or ["-q"]))


# The tests whose code takes another path when the `fast` extra (pybase64,
# orjson) is installed; the tests session runs them without it, this one with it.
FAST_PATH_TESTS = [
    "tests/test_base64.py",
    "tests/test_base64_pieces.py",
    "tests/test_image_data.py",
    "tests/test_parser_properties.py",
    "plugins/imagestream-sse",
    "plugins/imagestream-openai",
]


@nox.session
def fast(session: nox.Session) -> None:
    """The decoding tests again, with the `fast` extra installed."""
    deps = [dep for dep in TEST_DEPS if not dep.startswith(("ray", "playwright"))]
    _install_project(session, *deps, "pybase64>=1.3", "orjson")
    session.run("pytest", *(session.posargs or ["-q", *FAST_PATH_TESTS]))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the whole tree."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the core, every plugin's sources, and the plugin guide's examples."""
    _install_project(session, "mypy>=1.10", "pillow>=10", "pytest>=8", "types-PyYAML")
    sources = ["core/imagestream"] + [
        str(path.relative_to(ROOT)) for path in sorted(ROOT.glob("plugins/*/src/imagestream_*"))
    ]
    # The code docs/writing-a-plugin.md shows, tests included. As in the tests
    # session, the example plugin is not installed: mypy finds imagestream_solid
    # in the src directory it is given, and the snippets' tests the snippets
    # beside them.
    examples = [
        "docs/examples/imagestream-solid/src",
        "docs/examples/imagestream-solid/tests",
        "docs/examples/snippets",
        "docs/examples/conftest.py",
    ]
    session.run("mypy", "--strict", *sources, *examples)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation; warnings are errors."""
    _install_project(session, "sphinx>=7.2.5", "myst-parser>=4", "furo>=2024.1")
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against peers, in one process each; prints medians and ratios."""
    _install_project(session, *PEERS, torch=True)
    for script in sorted(ROOT.glob("bench/bench_*.py")):
        session.run("python", str(script), *session.posargs)
