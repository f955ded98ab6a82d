"""``imagestream.provider.lazy_exports``: a package's names imported when first read, once."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagestream.provider import lazy_exports


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"lazy_pkg_{id(tmp_path)}"
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text(
        textwrap.dedent(
            """
            from imagestream.provider import lazy_exports

            __all__ = ["Heavy", "Renamed", "Absolute"]
            __getattr__, __dir__ = lazy_exports(
                __name__,
                {"Heavy": "._heavy", "Renamed": "._heavy:Original", "Absolute": "json:dumps"},
                [*__all__, "extra"],
            )
            """
        ),
        encoding="utf-8",
    )
    (root / "_heavy.py").write_text(
        "LOADS = [1]\nclass Heavy: pass\nclass Original: pass\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for module in [m for m in sys.modules if m.startswith(name)]:
        del sys.modules[module]


def test_a_name_is_imported_when_first_read_and_kept(package: str) -> None:
    module = __import__(package)
    assert f"{package}._heavy" not in sys.modules
    heavy = module.Heavy
    assert f"{package}._heavy" in sys.modules
    assert heavy.__module__ == f"{package}._heavy"
    assert vars(module)["Heavy"] is heavy  # kept: __getattr__ is not asked again
    assert module.Renamed.__name__ == "Original"
    assert module.Absolute is __import__("json").dumps


def test_unknown_names_and_dir(package: str) -> None:
    module = __import__(package)
    with pytest.raises(AttributeError, match=f"module '{package}' has no attribute 'Nope'"):
        module.Nope  # noqa: B018
    assert dir(module) == sorted(["Absolute", "Heavy", "Renamed", "extra"])
    assert not hasattr(module, "Nope")


def test_relative_names_may_be_anchored_elsewhere() -> None:
    getattr_, _ = lazy_exports("some_module", {"dumps": ".decoder:JSONDecoder"}, package="json")
    sys.modules["some_module"] = type(sys)("some_module")
    try:
        assert getattr_("dumps").__name__ == "JSONDecoder"
        assert sys.modules["some_module"].dumps.__name__ == "JSONDecoder"
    finally:
        del sys.modules["some_module"]
