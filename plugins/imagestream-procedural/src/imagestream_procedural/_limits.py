"""Input limits shared by the renderer, the schedule and the frame generator.

They are checked up front with clear messages because the failure modes
otherwise are unfriendly: a 0-pixel canvas crashes deep inside Pillow, and a
100000-pixel one exhausts memory before anything is drawn.
"""

from __future__ import annotations

from typing import Final

MIN_SIDE: Final = 16
MAX_SIDE: Final = 4096
MIN_STEPS: Final = 1
MAX_STEPS: Final = 200


def check_size(width: int, height: int) -> None:
    """Raise :class:`ValueError` unless both sides are within ``MIN_SIDE..MAX_SIDE``."""
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        if not MIN_SIDE <= value <= MAX_SIDE:
            raise ValueError(
                f"{name} must be between {MIN_SIDE} and {MAX_SIDE} pixels, got {value}"
            )


def check_steps(steps: int) -> None:
    """Raise :class:`ValueError` unless ``steps`` is within ``MIN_STEPS..MAX_STEPS``."""
    if isinstance(steps, bool) or not isinstance(steps, int):
        raise ValueError(f"steps must be an integer, got {steps!r}")
    if not MIN_STEPS <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be between {MIN_STEPS} and {MAX_STEPS}, got {steps}")
