"""The record the decoder produces: one dispatched server-sent event."""

from __future__ import annotations

import json
from typing import Any

import attrs

__all__ = ["ServerSentEvent"]


@attrs.frozen
class ServerSentEvent:
    """One event, as an ``EventSource`` would dispatch it.

    Attributes:
        event: The event type: the last ``event`` field of the block, or
            ``"message"`` when there was none or it was empty.
        data: The ``data`` field values of the block joined with ``"\\n"``.
        id: The last event ID when the event was dispatched. It persists
            from event to event until another valid ``id`` field changes it
            (an ``id`` field with an empty value resets it to ``""``).
        retry: The reconnection time in milliseconds in effect when the event
            was dispatched: the value of the most recent valid ``retry`` field
            seen so far in the stream, in this block or an earlier one, or
            ``None`` if there was none. Like ``id``, it is stream state that
            persists, not a property of the one block.
    """

    event: str = "message"
    data: str = ""
    id: str = ""
    retry: int | None = None

    def json(self) -> Any:
        """Parse :attr:`data` as JSON (what OpenAI and Gemini send)."""
        return json.loads(self.data)
