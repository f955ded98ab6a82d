"""Lets ``pytest docs/examples`` import the example code without installing it.

The tutorial plugin is deliberately not installed: installing it would add a
``solid`` entry point to the environment the rest of the test suite runs in.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

for path in (HERE / "imagestream-solid" / "src", HERE / "snippets"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
