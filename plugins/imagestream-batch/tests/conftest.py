"""Fixtures of the batch tests: the test providers, registered for one test."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The tests run with --import-mode=importlib, which does not put this folder
# on sys.path; the providers and helpers are shared by several test files.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _batchkit import TinyProvider

from imagestream.testing import PluginHarness


@pytest.fixture
def tiny(imagestream_plugins: PluginHarness) -> TinyProvider:
    """The ``tiny`` provider, registered alone (with the built-ins) for this test."""
    provider = TinyProvider()
    imagestream_plugins.register_provider(provider)
    return provider
