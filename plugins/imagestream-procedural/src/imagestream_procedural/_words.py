"""Prompt words for abstract art, and a hash of them that is stable across runs.

Python's built-in ``hash()`` of a string is salted per process, so it would
draw a different picture every run; everything here goes through SHA-256.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

_STOPWORDS: Final = frozenset(
    {
        "a", "an", "the", "and", "or", "of", "in", "on", "at", "to", "for", "with", "by",
        "from", "into", "onto", "over", "under", "is", "are", "was", "be", "this", "that",
        "these", "those", "it", "its", "as", "very", "simple", "plain",
    }
)  # fmt: skip
_MAX_WORDS: Final = 12
"""Longer prompts keep their first words: enough to seed a picture, short to describe."""


def content_words(prompt: str) -> tuple[str, ...]:
    """The prompt's meaningful words, lower-cased, first occurrence order, no repeats."""
    seen: dict[str, None] = {}
    for word in re.findall(r"[^\W_]+", prompt.lower()):
        if word not in _STOPWORDS:
            seen.setdefault(word, None)
    return tuple(seen)[:_MAX_WORDS]


def digest(*parts: str | int) -> bytes:
    """SHA-256 of ``parts``, unambiguously separated, as 32 bytes."""
    h = hashlib.sha256()
    for part in parts:
        data = str(part).encode("utf-8")
        # Length-prefix each part so ("ab", "c") and ("a", "bc") differ.
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.digest()
