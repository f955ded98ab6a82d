"""Shared test set-up for the core tests."""

from __future__ import annotations

import sys
from importlib import metadata

import pytest


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Print the versions that matter for reproducing a failure."""
    names = [
        "imagestream",
        "pluggy",
        "attrs",
        "cattrs",
        "aiohttp",
        "msgpack",
        "click",
        "pillow",
        "openai",
    ]
    versions = []
    for name in names:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    return [f"python {sys.version.split()[0]}; " + ", ".join(versions)]
