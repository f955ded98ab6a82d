"""The command line behaves as users of simonw/llm expect: a default command,
stdin prompts, ``-m`` alone, ``models``, errors a person can act on, output that
follows ``--output``, and help whose examples run as printed."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import click
import pytest
from click.testing import CliRunner, Result

import imagestream
from imagestream import ImageData, ImageFinal, ImageRequest, ModelInfo, Provider, RunContext
from imagestream._plugins import reset_plugin_manager
from imagestream.cli import main
from imagestream.testing import make_png

pytest.importorskip("imagestream_procedural", reason="the offline provider plugin is not installed")

SMALL = ("--size", "32x32", "--steps", "1")


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A fresh home, a temporary working directory and freshly loaded plugins."""
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    for name in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(name, str(home / name.lower()))
    for name in (
        "IMAGESTREAM_LOAD_PLUGINS",
        "IMAGESTREAM_DISABLE_PLUGINS",
        "IMAGESTREAM_STRICT_PLUGINS",
        "OPENAI_BASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    reset_plugin_manager()
    yield work
    reset_plugin_manager()


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin)


def terminal(monkeypatch: pytest.MonkeyPatch, is_terminal: bool = True) -> None:
    monkeypatch.setattr("imagestream.cli.stdin_is_terminal", lambda: is_terminal)


def report(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


# -- test providers ---------------------------------------------------------


class Recorder(Provider):
    """Streams one PNG whatever it is asked for, and keeps the requests."""

    name = "recorder"
    models = (ModelInfo("shared-1"), ModelInfo("rec-1"))
    default_model = "rec-1"

    def __init__(self, name: str = "recorder") -> None:
        self.name = name  # type: ignore[misc]
        self.requests: list[ImageRequest] = []

    async def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Any]:
        self.requests.append(request)
        yield ImageFinal(image=ImageData.from_bytes(make_png(8, 8), "image/png"))


class Refuser(Recorder):
    """Refuses any output format, as some providers do."""

    def validate(self, request: ImageRequest) -> ImageRequest:
        if request.output_format is not None:
            raise imagestream.ValidationError(f"{self.name}: no output_format")
        return request


class Twin(Recorder):
    models = (ModelInfo("shared-1"), ModelInfo("twin-1"))
    default_model = "twin-1"


def providers_plugin(*providers: Provider) -> object:
    class Plugin:
        @imagestream.hookimpl
        def register_providers(self, register: Callable[[Provider], None]) -> None:
            for provider in providers:
                register(provider)

    return Plugin()


class Broken:
    @imagestream.hookimpl
    def register_providers(self, register: Callable[[Provider], None]) -> None:
        raise RuntimeError("boom")


# -- 1. generate is the default command ----------------------------------------


def test_a_prompt_alone_runs_generate() -> None:
    data = report(run("a red circle", *SMALL, "--json"))
    (image,) = data["images"]
    assert Path(image["path"]).parent.name == "generated-images"
    # Options of generate before the prompt, and a one-word prompt, too.
    assert report(run("--json", *SMALL, "sunset"))["text"].startswith("abstract composition")


def test_help_still_lists_the_commands() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in ("generate", "models", "providers", "plugins"):
        assert re.search(rf"^\s+{command}\s", result.stdout, re.M)
    assert not Path("generated-images").exists()


def test_prompt_from_stdin_with_a_dash_or_when_piped() -> None:
    dash = report(run("-", *SMALL, "--json", stdin="a blue square on yellow\n"))
    assert dash["text"] == "a blue square on a yellow background"
    piped = report(run(*SMALL, "--json", stdin="a blue square on yellow\n"))
    assert piped["text"] == dash["text"]
    # No arguments at all, prompt piped in: generate too.
    assert run(stdin="a red circle").exit_code == 0


def test_no_prompt_at_a_terminal_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal(monkeypatch)
    result = run("generate", *SMALL)
    assert result.exit_code == 2
    assert "no PROMPT" in result.stderr and "Traceback" not in result.stderr
    bare = run()  # a bare 'imagestream' at a terminal shows the help
    assert "Commands:" in bare.output


def test_unknown_commands_say_did_you_mean() -> None:
    result = run("genrate", "a red circle")
    assert result.exit_code == 2
    assert "No such command 'genrate'. Did you mean 'generate'?" in result.stderr
    assert "No such command 'modles'. Did you mean 'models'?" in run("modles").stderr
    assert "No such command 'Models'. Did you mean 'models'?" in run("Models").stderr


def test_help_as_a_word_shows_help() -> None:
    assert run("help").stdout == run("--help").stdout
    assert run("help", "models").stdout == run("models", "--help").stdout
    assert not Path("generated-images").exists()


# -- 2. -m alone picks the provider ----------------------------------------------


def test_model_alone_picks_the_provider_that_lists_it() -> None:
    recorder, twin = Recorder(), Twin("twin")
    imagestream.register_plugin(providers_plugin(recorder, twin), "test-providers")
    assert report(run("x", "-m", "twin-1", "--json"))["images"]
    assert [r.model for r in twin.requests] == ["twin-1"] and not recorder.requests
    assert report(run("x", "-m", "procedural-1", *SMALL, "--json"))["images"]

    shared = run("x", "-m", "shared-1")
    assert shared.exit_code == 1
    assert "model 'shared-1' is offered by 'recorder' and 'twin'" in shared.stderr
    assert "-p recorder or -p twin" in shared.stderr

    typo = run("x", "-m", "procedurl-1")
    assert typo.exit_code == 1
    assert "unknown model 'procedurl-1'" in typo.stderr
    assert "did you mean 'procedural-1' (procedural)?" in typo.stderr


def test_the_registry_finds_a_models_provider() -> None:
    registry = imagestream.get_plugin_manager().registry
    assert registry.provider_for_model("procedural-1").name == "procedural"
    with pytest.raises(imagestream.ConfigurationError, match="no installed provider lists it"):
        registry.provider_for_model("nothing-like-it")


# -- 3. imagestream models -------------------------------------------------------


def test_models_lists_each_providers_models_and_options() -> None:
    listing = run("models")
    assert listing.exit_code == 0
    assert "procedural-1 (default)" in listing.stdout and "options" not in listing.stdout
    options = run("models", "-p", "procedural", "--options").stdout
    assert "preview_quality  integer 1..100 (default 70)" in options
    assert "preview_format   one of png, jpeg, webp (default jpeg)" in options

    (entry,) = json.loads(run("models", "-p", "procedural", "--options", "--json").stdout)
    assert entry["provider"] == "procedural" and entry["models"][0]["default"] is True
    assert entry["options"]["preview_quality"] == {
        "type": "integer",
        "description": "JPEG/WebP quality of the previews",
        "default": 70,
        "min": 1,
        "max": 100,
    }


def test_models_of_an_unknown_provider_say_did_you_mean() -> None:
    result = run("models", "-p", "procedrual")
    assert result.exit_code == 1
    assert "did you mean 'procedural'?" in result.stderr


def test_openai_options_are_described() -> None:
    pytest.importorskip("imagestream_openai")
    (entry,) = json.loads(run("models", "-p", "openai", "--options", "--json").stdout)
    assert entry["options"]["output_compression"]["max"] == 100
    assert entry["options"]["api"]["choices"] == ["images", "responses"]
    assert all("type" in spec and spec["description"] for spec in entry["options"].values())


# -- 4. --timeout and --deadline -------------------------------------------------


def test_timeout_sets_the_stall_timeout() -> None:
    recorder = Recorder()
    imagestream.register_plugin(providers_plugin(recorder), "test-providers")
    assert run("x", "-p", "recorder", "--timeout", "2.5").exit_code == 0
    assert recorder.requests[0].timeout == 2.5
    assert run("x", "--timeout", "0").exit_code == 2  # refused by click, before any run


@pytest.mark.skipif(
    "deadline" not in {field.name for field in attrs.fields(ImageRequest)},
    reason="to be completed: ImageRequest has no 'deadline' field yet",
)
def test_deadline_reaches_the_request() -> None:
    recorder = Recorder()
    imagestream.register_plugin(providers_plugin(recorder), "test-providers")
    result = run("x", "-p", "recorder", "--deadline", "30")
    assert result.exit_code == 0, result.output
    assert getattr(recorder.requests[0], "deadline", None) == 30


# -- 5. errors a person can act on -----------------------------------------------


def test_provider_names_typo_installed_broken() -> None:
    imagestream.register_plugin(Broken(), "shiny")
    typo = run("x", "-p", "procedurl")
    assert "did you mean 'procedural'?" in typo.stderr and "pip install" not in typo.stderr
    missing = run("x", "-p", "zzzzz")
    assert "no provider named 'zzzzz'" in missing.stderr
    assert "pip install imagestream-zzzzz" in missing.stderr
    broken = run("x", "-p", "shiny")
    assert broken.exit_code == 1
    assert "provider 'shiny' is installed but failed to load: RuntimeError: boom" in broken.stderr
    assert "see `imagestream plugins`" in broken.stderr and "pip install" not in broken.stderr


def test_a_broken_plugin_is_one_line_that_quiet_silences() -> None:
    imagestream.register_plugin(Broken(), "shiny")
    result = run("a red circle", *SMALL)
    assert result.exit_code == 0
    warnings = [line for line in result.stderr.splitlines() if "shiny" in line]
    assert warnings == [
        "warning: plugin 'shiny' failed to load and was skipped: RuntimeError: boom"
        " (see `imagestream plugins`)"
    ]
    assert "PluginWarning" not in result.stderr and "register(" not in result.stderr
    assert run("a red circle", *SMALL, "-q").stderr == ""
    # Told once, whichever step loaded the plugins first, by every command.
    for args in (("sunset", *SMALL), ("providers",), ("models",)):
        reset_plugin_manager()
        imagestream.register_plugin(Broken(), "shiny")
        told = [line for line in run(*args).stderr.splitlines() if "shiny" in line]
        assert told == warnings, args


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "preview_quality", "high"], "preview_quality must be a whole number"),
        (["-o", "preview_quality", "500"], "preview_quality must be between 1 and 100"),
        (["-o", "preview_format", "5"], "preview_format must be one of"),
        (["-o", "preview_qualty", "50"], "did you mean 'preview_quality'?"),
        (["--size", "0x0"], "size 0x0 must be positive"),
        (["--size", "huge"], "is not WIDTHxHEIGHT"),
        (["--output", ""], "--output needs a file name"),
        (["--output", "a.webp", "--format", "png"], "--output a.webp asks for webp"),
    ],
)
def test_bad_input_is_a_typed_error_never_unexpected(args: list[str], message: str) -> None:
    result = run("a red circle", *SMALL, *args)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert "unexpected" not in result.stderr


def test_null_options_mean_not_given() -> None:
    nulls = ("-o", "preview_quality", "null", "-o", "preview_format", "null")
    assert report(run("a red circle", *SMALL, *nulls, "--json"))["previews"] == 1


@pytest.mark.parametrize("url", ["http://x:99999", "http://[::1", "http://x:port"])
@pytest.mark.parametrize("provider", ["procedural", "openai", "novelai", "gemini", "vertex"])
def test_a_malformed_base_url_is_a_configuration_error(provider: str, url: str) -> None:
    if provider not in imagestream.get_plugin_manager().registry.providers:
        pytest.skip(f"{provider} is not installed")
    result = run("x", "-p", provider, "--key", "k", "--base-url", url, "--json")
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "ConfigurationError" and "base_url" in error["message"]


@pytest.mark.parametrize("url", ["http://:80", "ftp://x"])
def test_openai_wants_an_http_url_with_a_host(url: str) -> None:
    pytest.importorskip("imagestream_openai")
    result = run("x", "-p", "openai", "--key", "k", "--base-url", url)
    assert result.exit_code == 1
    assert "openai: base_url must be an http:// or https:// URL" in result.stderr


# -- 6. output that follows the user ---------------------------------------------


def test_output_extension_picks_the_format() -> None:
    data = report(run("a red circle", *SMALL, "--output", "out/c.webp", "--json"))
    (image,) = data["images"]
    assert image["path"] == str(Path("out/c.webp")) and image["mime_type"] == "image/webp"
    assert Path("out/c.webp").read_bytes()[8:12] == b"WEBP"
    jpeg = report(run("a red circle", *SMALL, "--output", "c.JPG", "--format", "jpeg", "--json"))
    assert jpeg["images"][0]["mime_type"] == "image/jpeg"


def test_n_images_get_consecutive_seeds_and_differ() -> None:
    result = run("a lighthouse at dusk", *SMALL, "-n", "3", "--json")
    images = report(result)["images"]
    first = images[0]["seed"]
    assert isinstance(first, int)
    assert [image["seed"] for image in images] == [first, first + 1, first + 2]
    assert len({image["sha256"] for image in images}) == 3
    seeded = report(run("a lighthouse at dusk", *SMALL, "-n", "2", "--seed", "41", "--json"))
    assert [image["seed"] for image in seeded["images"]] == [41, 42]
    summary = run("a lighthouse at dusk", *SMALL, "--seed", "5").stderr
    assert "seed 5)" in summary


def test_json_failures_are_json_on_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run("a red circle", "--size", "huge", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "error": {
            "type": "ConfigurationError",
            "message": "size 'huge' is not WIDTHxHEIGHT",
            "hint": "use e.g. --size 1024x1024",
        }
    }
    terminal(monkeypatch)
    usage = run("generate", "--json")
    assert usage.exit_code == 2
    assert json.loads(usage.stdout)["error"]["type"] == "UsageError"


def test_an_extension_the_provider_cannot_make_is_converted() -> None:
    recorder, refuser = Recorder(), Refuser("refuser")
    imagestream.register_plugin(providers_plugin(recorder, refuser), "test-providers")
    Path("photo.png").write_bytes(b"keep me")
    for provider, asked in ((recorder, "jpeg"), (refuser, None)):
        result = run("x", "-p", provider.name, "--output", "photo.jpg", "--overwrite", "--json")
        (image,) = report(result)["images"]
        assert (image["path"], image["mime_type"]) == ("photo.jpg", "image/jpeg")
        assert Path("photo.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
        # Asked for natively where validate takes it (the recorder ignores it).
        assert provider.requests[-1].output_format == asked
    assert Path("photo.png").read_bytes() == b"keep me"
    assert "Pillow" not in result.stderr


def test_overwrite_replaces_only_the_path_written(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pillow(self: ImageData) -> Any:
        raise imagestream.ConfigurationError("to_pil() needs Pillow")

    monkeypatch.setattr(ImageData, "to_pil", no_pillow)
    recorder = Recorder()  # always sends PNG, and nothing converts it now
    imagestream.register_plugin(providers_plugin(recorder), "test-providers")
    Path("photo.png").write_bytes(b"keep me")
    result = run("x", "-p", "recorder", "--output", "photo.jpg", "--overwrite", "--json")
    (image,) = report(result)["images"]
    assert image["path"] == "photo-1.png"
    assert Path("photo.png").read_bytes() == b"keep me"
    assert "not the .jpg --output asked for" in result.stderr
    # The path that was named is replaced.
    Path("shot.png").write_bytes(b"old")
    again = report(run("x", "-p", "recorder", "--output", "shot.png", "--overwrite", "--json"))
    assert again["images"][0]["path"] == "shot.png" and Path("shot.png").read_bytes() != b"old"


def test_the_saver_overwrites_only_the_name_it_was_given(fresh: Path) -> None:
    from imagestream import SaveOptions
    from imagestream._builtins.filesystem import save_image

    png = ImageFinal(image=ImageData.from_bytes(make_png(4, 4)))
    Path("photo.png").write_bytes(b"keep me")
    saved = save_image(png, SaveOptions(output=Path("photo.jpg"), overwrite=True))
    assert saved.path == Path("photo-1.png") and Path("photo.png").read_bytes() == b"keep me"
    named = save_image(png, SaveOptions(output=Path("photo.png"), overwrite=True))
    assert named.path == Path("photo.png") and Path("photo.png").read_bytes() == make_png(4, 4)


# -- every example in every --help runs as printed -------------------------------


def _commands(group: click.Group, ctx: click.Context, path: tuple[str, ...]) -> Iterator[Any]:
    for name in group.list_commands(ctx):
        try:
            command = group.get_command(ctx, name)
        except ImportError:  # a core command whose module is still being written
            continue
        if command is None:
            continue
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from _commands(command, click.Context(command, parent=ctx), (*path, name))


def _help_texts() -> Iterator[tuple[tuple[str, ...], str]]:
    reset_plugin_manager()
    try:
        yield (), run("--help").stdout
        for path in _commands(main, click.Context(main), ()):
            yield path, run(*path, "--help").stdout
    finally:
        reset_plugin_manager()


def examples(help_text: str) -> list[str]:
    """Example lines: the indented lines of each 'Examples:' section, and '-o' after 'e.g.'."""
    found: list[str] = []
    lines = help_text.splitlines()
    for number, line in enumerate(lines):
        if line.strip() != "Examples:":
            continue
        for example in lines[number + 1 :]:
            if example.strip():
                found.append(example.strip())
            elif found and found[-1] != "":
                break
    flat = " ".join(help_text.split())
    for option in re.findall(r"e\.g\. (-o \S+ [^\s;,.]+)", flat):
        found.append(f'imagestream "a red circle" --size 32x32 --steps 1 {option}')
    return [example for example in found if example]


def _all_examples() -> list[str]:
    return sorted({example for _, text in _help_texts() for example in examples(text)})


def test_the_example_finder_finds_examples() -> None:
    text = (
        "Usage: x\n\n  Examples:\n\n    imagestream a\n    imagestream b\n\n  -o  e.g. -o k v; more"
    )
    assert examples(text) == [
        "imagestream a",
        "imagestream b",
        'imagestream "a red circle" --size 32x32 --steps 1 -o k v',
    ]
    assert len(_all_examples()) >= 5


@pytest.mark.parametrize("example", _all_examples())
def test_every_help_example_runs_as_printed(example: str) -> None:
    # The one input file examples name (imagestream batch), as its help describes it.
    Path("prompts.jsonl").write_text(
        '{"id": "cat", "prompt": "a cat on a red sofa"}\n{"id": "dog", "prompt": "a dog"}\n'
    )
    stdin = None
    if " | " in example:
        source, example = example.split(" | ", 1)
        words = shlex.split(source)
        assert words[0] == "echo", f"only 'echo ... |' pipes are understood: {source}"
        stdin = " ".join(words[1:]) + "\n"
    words = shlex.split(example)
    assert words[0] == "imagestream", example
    result = run(*words[1:], stdin=stdin)
    assert result.exit_code == 0, f"{example}\n{result.output}"
    assert "unexpected" not in result.output


def test_runs_are_logged_unless_no_log_and_cache_replays() -> None:
    from imagestream._logdb import count_entries

    assert run("a red circle", *SMALL).exit_code == 0
    assert run("a red circle", *SMALL, "--no-log").exit_code == 0
    assert count_entries() == 1
    args = ("a lighthouse", *SMALL, "--seed", "4", "--cache", "--json")
    first, again = report(run(*args)), report(run(*args))
    assert (first["replayed"], again["replayed"]) == (False, True)
    assert first["images"][0]["sha256"] == again["images"][0]["sha256"]
    assert "from the cache" in run(*args[:-1]).stderr


def test_an_image_whose_save_fails_is_kept_and_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused --output does not lose the picture: it lands in generated-images/."""
    from click.testing import CliRunner

    from imagestream.cli import main

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        main, ["generate", "a red circle", "-q", "--size", "32x32", "--output", "bad\nname.png"]
    )
    assert result.exit_code == 1
    kept = list((tmp_path / "generated-images").glob("image-*.png"))
    assert len(kept) == 1 and kept[0].read_bytes().startswith(b"\x89PNG")
    assert "the image was kept at" in result.output and kept[0].name in result.output
