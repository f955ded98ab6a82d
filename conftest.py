"""Set-up shared by every test of the repository (the core's and each plugin's).

Runs never read or write the user's own key store, generation log or cache:
each test gets empty directories of its own for them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

USER_DIRS = ("IMAGESTREAM_CONFIG_DIR", "IMAGESTREAM_DATA_DIR", "IMAGESTREAM_CACHE_DIR")


@pytest.fixture(autouse=True)
def _private_user_dirs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    base: Path = tmp_path_factory.mktemp("user-dirs")
    for name in USER_DIRS:
        monkeypatch.setenv(name, str(base / name.removeprefix("IMAGESTREAM_").lower()))
