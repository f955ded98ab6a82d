"""The record the decoder produces: one dispatched server-sent event."""

from __future__ import annotations

import json
from typing import Any

import attrs

__all__ = ["ServerSentEvent", "make_event"]


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


# The decoder builds one event per dispatched block, and on streams of small
# events attrs' generated __init__ (object.__setattr__ per field, since the
# class is frozen) is the largest single cost. Storing through the slot
# descriptors directly does the same work about a third faster. It is only
# valid while __init__ does nothing else: no validators, converters or
# __attrs_post_init__ (a test checks that).
_new = object.__new__
_set_event = ServerSentEvent.__dict__["event"].__set__
_set_data = ServerSentEvent.__dict__["data"].__set__
_set_id = ServerSentEvent.__dict__["id"].__set__
_set_retry = ServerSentEvent.__dict__["retry"].__set__


def make_event(event: str, data: str, id: str, retry: int | None) -> ServerSentEvent:
    """Build a :class:`ServerSentEvent` equal to ``ServerSentEvent(event, data, id, retry)``."""
    instance: ServerSentEvent = _new(ServerSentEvent)
    _set_event(instance, event)
    _set_data(instance, data)
    _set_id(instance, id)
    _set_retry(instance, retry)
    return instance
