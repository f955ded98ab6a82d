"""Chat that sends pictures: the reply streams as text, and a picture it promises is drawn.

A chat model may answer with an *image prompt* next to its text (Animus does
when asked with ``check_image_generation``: "Sure, here is a sunset!" plus
``image_prompt: "a sunset over the sea, warm light"``). :func:`chat` streams
such a turn as one chunk stream: the reply's :class:`~imagestream.TextDelta`
chunks first, then, when the reply carries an image prompt, the image's own
chunks (:class:`~imagestream.Progress`, :class:`~imagestream.ImagePreview`,
:class:`~imagestream.ImageFinal`, :class:`~imagestream.Usage`, and any text
the image provider adds, such as a caption) from whichever image provider you
choose. ``chunks.turn.reply`` is set the moment the reply has ended, so a text
delta that arrives after that is the image provider's::

    from imagestream_animus.conversation import ChatHistory, chat

    history = ChatHistory()
    async with chat("Can you show me a sunset over the sea?", history=history,
                    image_provider="procedural", save=True) as chunks:
        async for chunk in chunks:
            if isinstance(chunk, imagestream.TextDelta):
                print(chunk.text, end="")
    print(chunks.turn.saved)            # where the picture went
    # the next turn: the model sees what was said and shown
    async with chat("Make it more purple.", history=history) as chunks: ...

This module is generic: the chat side is any :class:`ChatModel` (an object
whose ``reply(messages)`` yields text deltas and then one :class:`Reply`),
the image side any imagestream provider. It lives in the Animus plugin
because Animus is the chat model that makes image prompts today; nothing in
it is Animus-specific except the default model.

The image is generated through an imagestream run (the global plugins, or
the :class:`~imagestream.Pipeline` you pass), so the middleware hooks
``on_request``, ``on_result`` and ``on_error`` fire for it: they are the
"image generation started / complete / failed" events. Content filters
(:class:`~imagestream.Validation` with a ``blocklist``), retries (the HTTP
client's policy) and replays of identical seeded runs (``cache=True``) come
from the core the same way.

The :class:`ChatHistory` records the user's message, the reply and, for a
drawn picture, an image entry (``<image description="…" />`` as the model
sees it, with the saved path kept beside it). Pass the same history to the
next call. **Follow-up guard**: on the turn right after a picture, a new
image prompt is not drawn (models tend to "send another one" on any
follow-up) unless the call passes ``image_after_image=True``.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import attrs

import imagestream
from imagestream import Chunk, ProviderError, TextDelta, Usage

if TYPE_CHECKING:
    from imagestream import (
        GenerationResult,
        ImageFinal,
        Pipeline,
        Provider,
        SavedImage,
        SaveOptions,
    )

__all__ = [
    "ChatHistory",
    "ChatMessage",
    "ChatModel",
    "ChatStream",
    "ChatTurn",
    "Reply",
    "achat",
    "chat",
    "image_tag",
]

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)


@attrs.frozen
class Reply:
    """A chat model's whole answer, the last item its ``reply()`` yields.

    Attributes:
        text: The answer's text (what its text deltas add up to).
        thoughts: The model's reasoning, when it showed any.
        image_prompt: What to draw, when the answer promises a picture.
        usage: Tokens the chat call used, when reported.
        finish_reason: Why the model stopped, when it said.
        compliance_violations: Categories the provider's compliance check flagged.
        extra: Provider-specific facts kept as sent.
    """

    text: str
    thoughts: str = ""
    image_prompt: str | None = None
    usage: Usage | None = None
    finish_reason: str | None = None
    compliance_violations: tuple[str, ...] = ()
    extra: Mapping[str, Any] = attrs.field(factory=dict)


class ChatModel(Protocol):
    """What :func:`chat` needs of a chat provider.

    ``reply(messages)`` gets the conversation as ``{"role", "content"}``
    dicts (history first, the new user message last; a system message, if
    the model has one, is its own business) and is an async iterator: a
    :class:`~imagestream.TextDelta` for each piece of the answer as it
    arrives (``thought=True`` for reasoning), then exactly one
    :class:`Reply`. It is closed early if the caller stops reading.
    """

    @property
    def name(self) -> str:
        """The chat provider's name (``"animus"``)."""
        ...

    def reply(self, messages: Sequence[Mapping[str, str]]) -> AsyncIterator[TextDelta | Reply]:
        """Stream the answer to ``messages``."""
        ...


def image_tag(description: str) -> str:
    """How a shown picture reads in the conversation: ``<image description="…" />``."""
    return f'<image description="{html.escape(description, quote=True)}" />'


@attrs.define
class ChatMessage:
    """One entry of a :class:`ChatHistory`.

    Attributes:
        role: ``"user"`` or ``"assistant"``.
        content: The text, as the model sees it (an image entry's is its :func:`image_tag`).
        image_description: For an image entry, the prompt it was drawn from.
        image_path: For an image entry, where it was saved (``None`` if it was not).
        timestamp: Seconds since the epoch when it was added.
    """

    role: str
    content: str
    image_description: str | None = None
    image_path: str | None = None
    timestamp: float = attrs.field(factory=time.time)

    @property
    def is_image(self) -> bool:
        """True for a picture the assistant sent."""
        return self.image_description is not None

    def to_api(self) -> dict[str, str]:
        """The ``{"role", "content"}`` a chat model is sent (never the local path)."""
        return {"role": self.role, "content": self.content}

    def to_dict(self) -> dict[str, Any]:
        """A plain dict, for JSON."""
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChatMessage:
        """The message :meth:`to_dict` wrote.

        Raises:
            ValueError: ``data`` is not such a message.
        """
        role, content = data.get("role"), data.get("content")
        if role not in ("user", "assistant") or not isinstance(content, str):
            raise ValueError(f"not a chat message: {dict(data)!r:.200}")
        description, path = data.get("image_description"), data.get("image_path")
        timestamp = data.get("timestamp")
        return cls(
            role=role,
            content=content,
            image_description=description if isinstance(description, str) else None,
            image_path=path if isinstance(path, str) else None,
            timestamp=float(timestamp) if isinstance(timestamp, int | float) else time.time(),
        )


class ChatHistory:
    """The conversation so far: what was said, and the pictures that were shown.

    Args:
        messages: Entries to start from.
        window: How many of the latest entries are sent to the model with
            each call (``None``: all of them). Everything stays recorded.
    """

    def __init__(self, messages: Iterable[ChatMessage] = (), *, window: int | None = 40) -> None:
        self.messages: list[ChatMessage] = list(messages)
        self.window = window

    def add_user(self, text: str) -> ChatMessage:
        """Record the user's message."""
        return self._add(ChatMessage("user", text))

    def add_assistant(self, text: str) -> ChatMessage | None:
        """Record a reply (its ``<think>`` blocks left out); an empty reply records nothing."""
        visible = _THINK.sub("", text).strip()
        return self._add(ChatMessage("assistant", visible)) if visible else None

    def add_image(self, description: str, path: str | Path | None = None) -> ChatMessage:
        """Record a picture the assistant sent, drawn from ``description``."""
        return self._add(
            ChatMessage(
                "assistant",
                image_tag(description),
                image_description=description,
                image_path=str(path) if path is not None else None,
            )
        )

    def _add(self, message: ChatMessage) -> ChatMessage:
        self.messages.append(message)
        return message

    @property
    def just_generated_image(self) -> bool:
        """True when the last entry is a picture: the next turn's image prompt is held back."""
        return bool(self.messages) and self.messages[-1].is_image

    @property
    def images(self) -> list[ChatMessage]:
        """The image entries, oldest first."""
        return [message for message in self.messages if message.is_image]

    def api_messages(self) -> list[dict[str, str]]:
        """What the model is sent of the history: the latest ``window`` entries."""
        recent = (
            self.messages
            if self.window is None
            else self.messages[-self.window :]
            if self.window
            else []
        )
        return [message.to_api() for message in recent]

    def clear(self) -> None:
        """Forget everything."""
        self.messages.clear()

    def to_dict(self) -> dict[str, Any]:
        """A plain dict, for JSON (:meth:`save` writes it)."""
        return {
            "version": 1,
            "window": self.window,
            "messages": [m.to_dict() for m in self.messages],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChatHistory:
        """The history :meth:`to_dict` wrote.

        Raises:
            ValueError: ``data`` is not such a history.
        """
        messages = data.get("messages")
        if not isinstance(messages, list):
            raise ValueError("a chat history has a 'messages' list")
        window = data.get("window", 40)
        return cls(
            (ChatMessage.from_dict(item) for item in messages if isinstance(item, Mapping)),
            window=window if isinstance(window, int) and not isinstance(window, bool) else 40,
        )

    def save(self, path: str | Path) -> Path:
        """Write the history as JSON to ``path`` (replaced whole, never half-written)."""
        target = Path(path)
        temporary = target.with_name(f".{target.name}.tmp")
        temporary.write_text(
            json.dumps(self.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8"
        )
        temporary.replace(target)
        return target

    @classmethod
    def load(cls, path: str | Path) -> ChatHistory:
        """The history saved at ``path``.

        Raises:
            ValueError: The file is not a saved chat history.
            OSError: It cannot be read.
        """
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, Mapping):
            raise ValueError(f"{path} does not hold a chat history")
        return cls.from_dict(data)

    def __len__(self) -> int:
        return len(self.messages)

    def __iter__(self) -> Iterator[ChatMessage]:
        return iter(self.messages)

    def __repr__(self) -> str:
        return f"<ChatHistory {len(self.messages)} message(s), {len(self.images)} image(s)>"


@attrs.define
class ChatTurn:
    """What one :func:`chat` call did, filled in as its stream goes.

    Attributes:
        message: The user's message.
        reply: The model's whole answer (``None`` until it has ended).
        image_prompt: The prompt a picture was drawn from (``None``: none drawn).
        skipped_image_prompt: A prompt the reply carried that was not drawn.
        skipped_reason: Why it was not (the follow-up guard, ``images=False``).
        image: The image run's result (``None`` when no picture was drawn).
        image_error: What ended the image run, when it failed.
    """

    message: str
    reply: Reply | None = None
    image_prompt: str | None = None
    skipped_image_prompt: str | None = None
    skipped_reason: str | None = None
    image: GenerationResult | None = None
    image_error: BaseException | None = None

    @property
    def text(self) -> str:
        """The reply's text (empty until it has ended)."""
        return self.reply.text if self.reply else ""

    @property
    def images(self) -> list[ImageFinal]:
        """The final images drawn for this turn."""
        return list(self.image.images) if self.image else []

    @property
    def saved(self) -> list[SavedImage]:
        """Where they were saved."""
        return list(self.image.saved) if self.image else []


class ChatStream:
    """The chunks of one chat turn; :attr:`turn` says what happened.

    Use it as an async context manager around the loop, so that the chat
    call and any image run are closed however the block is left.
    """

    def __init__(self, agen: AsyncGenerator[Chunk, None], turn: ChatTurn) -> None:
        self._agen = agen
        self.turn = turn

    def __aiter__(self) -> ChatStream:
        return self

    async def __anext__(self) -> Chunk:
        return await self._agen.__anext__()

    async def aclose(self) -> None:
        """Stop the turn and close its connections."""
        await self._agen.aclose()

    async def __aenter__(self) -> ChatStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def chat(
    message: str,
    *,
    history: ChatHistory | None = None,
    model: ChatModel | None = None,
    image_provider: str | Provider | None = "animus",
    pipeline: Pipeline | None = None,
    save: bool | SaveOptions | None = None,
    image_params: Mapping[str, Any] | None = None,
    image_after_image: bool = False,
    images: bool = True,
) -> ChatStream:
    """One chat turn as a chunk stream: the reply's text, then its picture's chunks.

    Args:
        message: What the user says.
        history: The conversation so far; the turn is added to it (user
            message and reply once the reply has ended, the image entry once
            the picture is done). A fresh one when ``None``.
        model: The chat model (default: Animus, ``AnimusChat()``, which reads
            ``ANIMUS_API_KEY``).
        image_provider: Who draws a promised picture: a provider name
            (``"animus"``, ``"gemini"``, ``"procedural"``, ...) or object.
        pipeline: Run the picture through this pipeline (its middleware,
            saver and defaults) instead of the installed plugins.
        save: ``True`` or a :class:`~imagestream.SaveOptions` to save the picture.
        image_params: More request fields or options for the image run
            (``size``, ``base_url``, ``api_key``, ``seed``, ...).
        image_after_image: Draw the reply's picture even right after one
            (the follow-up guard holds it back otherwise).
        images: ``False`` to draw nothing (the prompt is only reported).

    Raises (from the iteration):
        ImagestreamError: The chat call failed (nothing is recorded in the
            history then), or the image run did (the user message and the
            reply are recorded; :attr:`ChatTurn.image_error` is set and the
            error's ``partial`` holds what arrived).
    """
    turn = ChatTurn(message)
    return ChatStream(
        _run(
            turn,
            history if history is not None else ChatHistory(),
            model,
            image_provider,
            pipeline,
            save,
            dict(image_params or {}),
            image_after_image=image_after_image,
            images=images,
        ),
        turn,
    )


async def achat(message: str, **kwargs: Any) -> ChatTurn:
    """:func:`chat` run to its end; the :class:`ChatTurn` it made (same arguments)."""
    chunks = chat(message, **kwargs)
    async with chunks:
        async for _ in chunks:
            pass
    return chunks.turn


async def _run(
    turn: ChatTurn,
    history: ChatHistory,
    model: ChatModel | None,
    image_provider: str | Provider | None,
    pipeline: Pipeline | None,
    save: bool | SaveOptions | None,
    image_params: dict[str, Any],
    *,
    image_after_image: bool,
    images: bool,
) -> AsyncGenerator[Chunk, None]:
    if model is None:
        from ._chat_model import AnimusChat

        model = AnimusChat()
    # Decided before this turn is recorded: the guard is about the turn before.
    guarded = history.just_generated_image and not image_after_image
    messages = [*history.api_messages(), {"role": "user", "content": turn.message}]
    reply: Reply | None = None
    events = model.reply(messages)
    try:
        async for event in events:
            if isinstance(event, Reply):
                reply = event
            else:
                yield event
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
    if reply is None:
        raise ProviderError(
            f"the chat model {model.name!r} ended without a reply", provider=model.name
        )
    turn.reply = reply
    history.add_user(turn.message)
    history.add_assistant(reply.text)

    prompt = (reply.image_prompt or "").strip()
    if not prompt:
        return
    if not images:
        turn.skipped_image_prompt, turn.skipped_reason = prompt, "images are off for this call"
        return
    if guarded:
        turn.skipped_image_prompt = prompt
        turn.skipped_reason = (
            "a picture was sent on the turn before (follow-up guard); "
            "pass image_after_image=True to draw this one too"
        )
        return
    turn.image_prompt = prompt
    params: dict[str, Any] = {**image_params, "provider": image_provider}
    if save is not None:
        params["save"] = save
    run = (
        pipeline.stream(prompt, **params)
        if pipeline is not None
        else imagestream.stream(prompt, **params)
    )
    try:
        async with run:
            async for chunk in run:
                yield chunk
    except Exception as exc:
        turn.image_error = exc
        raise
    finally:
        turn.image = run.result
    saved = run.result.saved
    history.add_image(prompt, saved[0].path if saved else None)
