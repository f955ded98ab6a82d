"""Fixtures of the Google provider's tests: the local Gemini / Vertex AI server, test images."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import attrs
import pytest

# The tests run with --import-mode=importlib, which does not put this folder
# on sys.path; the server and SDK helpers are shared by several test files.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _google_server import KEY, PROJECT, TOKEN, GoogleServer, make_image
from _sdk import PROMPT

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


# Fixtures that load the imagestream_google plugin itself belong below this line;
# the server and SDK helpers above never import it.

Api = Literal["gemini", "vertex", "express"]
"""How imagestream reaches the server: Gemini API key, Vertex OAuth token, express-mode key."""


@pytest.fixture
def plugins(imagestream_plugins: Any) -> Any:
    """Only the built-ins plus the ``sse`` decoder and the ``gemini``/``vertex`` providers."""
    import imagestream_google._plugin
    import imagestream_sse._plugin

    imagestream_plugins.register(imagestream_sse._plugin, "sse")
    imagestream_plugins.register(imagestream_google._plugin, "google")
    return imagestream_plugins


@attrs.define
class GoogleRun:
    """What one imagestream run against the server produced.

    Attributes:
        chunks: Every chunk yielded, in order.
        error: The :class:`~imagestream.ImagestreamError` the run ended with, or ``None``.
        result: The stream's :class:`~imagestream.GenerationResult`.
    """

    chunks: list[Any]
    error: Any
    result: Any

    @property
    def parts(self) -> list[tuple[Any, ...]]:
        """The chunks in ``SdkResult.parts`` terms: text, thought, image, thought_image."""
        import imagestream

        out: list[tuple[Any, ...]] = []
        for chunk in self.chunks:
            if isinstance(chunk, imagestream.TextDelta):
                out.append(("thought" if chunk.thought else "text", chunk.text))
            elif isinstance(chunk, imagestream.ImageFinal):
                out.append(("image", chunk.mime_type, chunk.image.data))
            elif isinstance(chunk, imagestream.ImagePreview):
                kind = "thought_image" if chunk.extra.get("thought") else "preview"
                out.append((kind, chunk.mime_type, chunk.image.data))
        return out

    @property
    def text(self) -> str:
        """The answer's text (thoughts excluded), joined."""
        return "".join(part[1] for part in self.parts if part[0] == "text")

    @property
    def thoughts(self) -> str:
        """The thought text, joined."""
        return "".join(part[1] for part in self.parts if part[0] == "thought")

    @property
    def images(self) -> list[tuple[str, bytes]]:
        """The final images as ``(mime, bytes)``, in order."""
        return [(part[1], part[2]) for part in self.parts if part[0] == "image"]

    @property
    def usages(self) -> list[Any]:
        """The :class:`~imagestream.Usage` chunks (one on success)."""
        import imagestream

        return [chunk for chunk in self.chunks if isinstance(chunk, imagestream.Usage)]

    def ok(self) -> GoogleRun:
        """This run, after checking that it succeeded (the error re-raised otherwise)."""
        if self.error is not None:
            raise self.error
        return self


def google_params(
    url: str,
    api: Api = "gemini",
    *,
    project: str = PROJECT,
    location: str | None = None,
    **params: Any,
) -> dict[str, Any]:
    """Keyword arguments of ``imagestream.stream`` that reach the server at ``url`` through ``api``.

    ``gemini``: ``provider="gemini"``, ``api_key``; ``vertex``: ``provider="vertex"`` with
    ``access_token`` and ``project`` (and ``location``) options; ``express``:
    ``provider="vertex"`` with ``api_key``. Other keywords are request fields or options;
    an ``options`` mapping is merged with the credentials.
    """
    options = dict(params.pop("options", None) or {})
    params.setdefault("timeout", 10)
    if api == "vertex":
        options.setdefault("access_token", TOKEN)
        options.setdefault("project", project)
        if location is not None:
            options.setdefault("location", location)
    else:
        params.setdefault("api_key", KEY)
    return {
        "provider": "gemini" if api == "gemini" else "vertex",
        "base_url": url,
        **params,
        "options": options,
    }


class GoogleRunner:
    """``await run(prompt, api=..., **params)``: one imagestream stream against the server.

    Errors are kept in :attr:`GoogleRun.error`, not raised; ``pipeline`` runs through a
    given :class:`~imagestream.Pipeline` (a retry policy of its own, say) instead of
    :func:`imagestream.stream`. Every run is bounded by ``deadline`` seconds.
    """

    def __init__(self, server: GoogleServer, deadline: float = 15.0) -> None:
        self.server = server
        self.deadline = deadline

    async def __call__(
        self,
        prompt: str = PROMPT,
        *,
        api: Api = "gemini",
        pipeline: Any = None,
        project: str = PROJECT,
        location: str | None = None,
        **params: Any,
    ) -> GoogleRun:
        import imagestream

        kwargs = google_params(self.server.url, api, project=project, location=location, **params)
        runner = imagestream if pipeline is None else pipeline
        chunks = runner.stream(prompt, **kwargs)
        collected: list[Any] = []
        error: imagestream.ImagestreamError | None = None
        async with asyncio.timeout(self.deadline):
            try:
                async with chunks:
                    async for chunk in chunks:
                        collected.append(chunk)
            except imagestream.ImagestreamError as caught:
                error = caught
        return GoogleRun(collected, error, chunks.result)


@pytest.fixture
def run_google(plugins: Any, google_server: GoogleServer) -> GoogleRunner:
    """``await run_google(prompt, api="gemini" | "vertex" | "express", **params)``: a
    :class:`GoogleRun` of imagestream against the local server (plugins registered)."""
    return GoogleRunner(google_server)


@pytest.fixture
async def no_retry(plugins: Any) -> AsyncIterator[Any]:
    """A :class:`~imagestream.Pipeline` over the registered plugins whose HTTP client never
    retries (a recorded ``retryDelay`` of 34.4 s is then raised, not waited out)."""
    import imagestream

    http = imagestream.HttpClient(retry=imagestream.RetryPolicy(max_retries=0))
    try:
        yield imagestream.Pipeline(manager=imagestream.get_plugin_manager(), http=http)
    finally:
        await http.close()
