"""Fixtures of the Google provider's tests: the local Gemini / Vertex AI server, test images."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

# The tests run with --import-mode=importlib, which does not put this folder
# on sys.path; the server and SDK helpers are shared by several test files.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _google_server import GoogleServer, make_image

ROOT = next(
    (
        parent
        for parent in Path(__file__).resolve().parents
        if (parent / "core" / "imagestream").is_dir()
    ),
    None,
)


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Versions that change this plugin's behaviour or what its judge accepts."""
    names = ["imagestream-google", "google-genai", "google-auth", "aiohttp", "pillow"]
    versions = []
    for name in names:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    return ["imagestream-google: " + ", ".join(versions)]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """google-genai subclasses ``aiohttp.ClientSession``, which aiohttp warns about: hush it here."""
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.path)).resolve().parents:
            item.add_marker(
                pytest.mark.filterwarnings(
                    "ignore:Inheritance class AiohttpClientSession:DeprecationWarning"
                )
            )


@pytest.fixture(autouse=True)
def _clean_google_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's real key, project, base URL or proxy must never reach these
    # tests, which talk to 127.0.0.1 only.
    for name in list(os.environ):
        upper = name.upper()
        if upper.startswith(("GOOGLE_", "GEMINI_", "CLOUDSDK_", "GCE_")) or upper.endswith(
            "_PROXY"
        ):
            monkeypatch.delenv(name)
    # No mTLS client-certificate discovery (it reads gcloud's files).
    monkeypatch.setenv("GOOGLE_API_USE_CLIENT_CERTIFICATE", "false")
    try:
        import google.auth
    except ImportError:
        return

    def no_default_credentials(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a test asked google-auth for default credentials")

    # Finding default credentials may query the metadata server: never in tests.
    monkeypatch.setattr(google.auth, "default", no_default_credentials)


@pytest.fixture
async def google_server() -> AsyncIterator[GoogleServer]:
    """The fake Gemini API / Vertex AI server on 127.0.0.1, in the test's event loop."""
    server = GoogleServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def image_factory() -> Callable[..., bytes]:
    """``image_factory(mime="image/png", variant=0, width=64, height=48)``: a real image file."""
    return make_image


@pytest.fixture
def png() -> bytes:
    """A real 64x48 PNG made with Pillow."""
    return make_image("image/png", 2)


@pytest.fixture
def jpeg() -> bytes:
    """A real 64x48 JPEG made with Pillow."""
    return make_image("image/jpeg", 3)


@pytest.fixture
def google_recordings() -> Path:
    """The recorded Gemini traffic shared by the project (skips if the folder is absent)."""
    folder = ROOT.parent / "shared" / "fixtures" / "gemini" if ROOT is not None else None
    if folder is None or not folder.is_dir():
        pytest.skip("the shared recordings folder (../shared/fixtures/gemini) is not present")
    return folder


# Fixtures that load the imagestream_google plugin itself belong below this line,
# once the plugin exists; the server and SDK helpers above never import it.
