"""The progress display on stderr: now public as :mod:`imagestream.progress`."""

from __future__ import annotations

from ..progress import ProgressDisplay

__all__ = ["ProgressDisplay"]
