"""Chat that sends pictures: Animus replies streamed from the local server, pictures from any provider."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _animus_server import KEY, PNG, AnimusServer, ChatScript

import imagestream
from imagestream import (
    AuthenticationError,
    Chunk,
    ImageFinal,
    ImagePreview,
    Progress,
    ServerError,
    StreamInterruptedError,
    TextDelta,
)
from imagestream.testing import ScriptedProvider
from imagestream_animus import AnimusAuth, AnimusChat, ChatHistory, ChatTurn, achat, chat, image_tag
from imagestream_animus.conversation import ChatMessage

SUNSET = "a sunset over the sea, warm orange light, gentle waves"
SMALL = {"size": "64x64", "steps": 3}


def model(server: AnimusServer, auth: AnimusAuth, **kwargs: Any) -> AnimusChat:
    return AnimusChat(base_url=server.base, api_key=KEY, auth=auth, **kwargs)


async def talk(
    message: str,
    server: AnimusServer,
    auth: AnimusAuth,
    history: ChatHistory,
    *,
    chat_model: AnimusChat | None = None,
    **kwargs: Any,
) -> tuple[list[Chunk], ChatTurn]:
    kwargs.setdefault("image_provider", "procedural")
    kwargs.setdefault("image_params", SMALL)
    chunks = chat(message, history=history, model=chat_model or model(server, auth), **kwargs)
    async with chunks:
        seen = [chunk async for chunk in chunks]
    return seen, chunks.turn


class Recorder(imagestream.Middleware):
    """The lifecycle hooks of the image run, as events."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    @imagestream.hookimpl
    def on_request(
        self, request: imagestream.ImageRequest, context: imagestream.RunContext
    ) -> None:
        self.events.append(("start", request.prompt))

    @imagestream.hookimpl
    def on_result(
        self, result: imagestream.GenerationResult, context: imagestream.RunContext
    ) -> None:
        self.events.append(("complete", len(result.images)))

    @imagestream.hookimpl
    def on_error(self, error: BaseException, context: imagestream.RunContext) -> None:
        self.events.append(("error", type(error).__name__))


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_reply_without_an_image_prompt_is_text_only(seed: int, auth: AnimusAuth) -> None:
    async with AnimusServer(seed=seed) as server:
        server.chats = [ChatScript(pieces=("Hello", " there", ", how", " are you?"))]
        history = ChatHistory()
        chunks, turn = await talk("Hi!", server, auth, history)
    assert all(isinstance(chunk, TextDelta) for chunk in chunks)
    assert "".join(chunk.text for chunk in chunks if isinstance(chunk, TextDelta)) == (
        "Hello there, how are you?"
    )
    assert turn.text == "Hello there, how are you?"
    assert turn.image_prompt is None and turn.image is None
    assert turn.reply is not None and turn.reply.usage is not None
    assert turn.reply.usage.total_tokens == 20
    assert [(m.role, m.content) for m in history] == [
        ("user", "Hi!"),
        ("assistant", "Hello there, how are you?"),
    ]
    (call,) = server.of("POST", "/v3/chat/completions")
    body = call.json
    assert body["model"] == "vivian-llama3.1-70b-1.0-fp8"
    assert body["stream"] is True
    assert body["check_image_generation"] is True
    assert body["compliance"] is True
    assert body["autoTurn"] is False
    assert "reasoning" not in body
    assert body["messages"] == [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Hi!"},
    ]
    assert call.headers["Authorization"].startswith("Bearer ")
    assert call.headers["Accept"] == "text/event-stream"


@pytest.mark.parametrize("where", ["message", "delta", "top"])
@pytest.mark.parametrize("seed", [4, 5])
async def test_an_image_prompt_continues_the_stream_with_the_picture(
    where: str, seed: int, auth: AnimusAuth, tmp_path: Path
) -> None:
    async with AnimusServer(seed=seed) as server:
        server.chats = [ChatScript(image_prompt=SUNSET, prompt_in=where)]
        history = ChatHistory()
        chunks, turn = await talk(
            "Can you show me a sunset over the sea?",
            server,
            auth,
            history,
            save=imagestream.SaveOptions(out_dir=tmp_path),
        )
    # The reply's three deltas, then the picture's chunks.
    reply, picture = chunks[:3], chunks[3:]
    assert all(isinstance(chunk, TextDelta) for chunk in reply)
    assert "".join(c.text for c in reply if isinstance(c, TextDelta)) == turn.text
    assert turn.text == "Sure! Here is a sunset over the sea."
    kinds = [type(chunk) for chunk in picture]
    assert ImagePreview in kinds and kinds.count(ImageFinal) == 1
    # Text after the reply is the image provider's (the procedural one captions its drawing).
    assert turn.image is not None and turn.image.text
    assert "".join(c.text for c in picture if isinstance(c, TextDelta)) == turn.image.text
    assert turn.image_prompt == SUNSET
    assert turn.image is not None and turn.image.provider == "procedural"
    (saved,) = turn.saved
    assert saved.path.exists() and saved.path.parent == tmp_path
    assert [m.role for m in history] == ["user", "assistant", "assistant"]
    entry = history.messages[-1]
    assert entry.is_image and entry.image_description == SUNSET
    assert entry.image_path == str(saved.path)
    assert history.api_messages()[-1] == {"role": "assistant", "content": image_tag(SUNSET)}
    assert image_tag(SUNSET) == f'<image description="{SUNSET}" />'


async def test_the_lifecycle_hooks_fire_for_the_picture(
    server: AnimusServer, auth: AnimusAuth
) -> None:
    server.chats = [ChatScript(image_prompt=SUNSET)]
    recorder = Recorder()
    pipeline = imagestream.Pipeline(middleware=[recorder])
    _, turn = await talk("Show me a sunset", server, auth, ChatHistory(), pipeline=pipeline)
    assert recorder.events == [("start", SUNSET), ("complete", 1)]
    assert turn.images and turn.saved == []


async def test_a_failed_picture_fires_on_error_and_keeps_the_conversation(
    server: AnimusServer, auth: AnimusAuth
) -> None:
    server.chats = [ChatScript(image_prompt=SUNSET)]
    recorder = Recorder()
    broken = ScriptedProvider("broken", [ServerError("the painter fell ill", provider="broken")])
    history = ChatHistory()
    chunks = chat(
        "Show me a sunset",
        history=history,
        model=model(server, auth),
        image_provider=broken,
        pipeline=imagestream.Pipeline(middleware=[recorder]),
    )
    seen: list[Chunk] = []

    async def consume() -> None:
        async with chunks:
            async for chunk in chunks:
                seen.append(chunk)

    with pytest.raises(ServerError, match="fell ill"):
        await consume()
    assert recorder.events == [("start", SUNSET), ("error", "ServerError")]
    assert isinstance(chunks.turn.image_error, ServerError)
    assert "".join(c.text for c in seen if isinstance(c, TextDelta)).startswith("Sure!")
    assert [m.role for m in history] == ["user", "assistant"]
    assert not history.just_generated_image


async def test_the_follow_up_guard_holds_back_a_second_picture_unless_asked(
    server: AnimusServer, auth: AnimusAuth
) -> None:
    server.chats = [ChatScript(image_prompt=SUNSET)]
    history = ChatHistory()
    await talk("Show me a sunset", server, auth, history)
    assert history.just_generated_image

    chunks, turn = await talk("Wow, thanks!", server, auth, history)
    assert not any(isinstance(chunk, ImageFinal | ImagePreview) for chunk in chunks)
    assert turn.image_prompt is None and turn.skipped_image_prompt == SUNSET
    assert "follow-up guard" in (turn.skipped_reason or "")
    assert len(history.images) == 1 and not history.messages[-1].is_image

    # Right after a text-only turn, a promised picture is drawn again.
    _, turn = await talk("Another one?", server, auth, history)
    assert turn.image_prompt == SUNSET and len(history.images) == 2

    # And right after a picture, when asked for.
    chunks, turn = await talk("One more, please", server, auth, history, image_after_image=True)
    assert turn.image_prompt == SUNSET and any(isinstance(c, ImageFinal) for c in chunks)
    assert len(history.images) == 3


async def test_no_images_reports_the_prompt_without_drawing(
    server: AnimusServer, auth: AnimusAuth
) -> None:
    server.chats = [ChatScript(image_prompt=SUNSET)]
    chunks, turn = await talk("Show me", server, auth, ChatHistory(), images=False)
    assert all(isinstance(chunk, TextDelta) for chunk in chunks)
    assert turn.skipped_image_prompt == SUNSET


async def test_the_history_is_sent_with_the_next_message(
    server: AnimusServer, auth: AnimusAuth
) -> None:
    server.chats = [ChatScript(image_prompt=SUNSET), ChatScript(pieces=("More purple?",))]
    history = ChatHistory()
    await talk("Show me a sunset", server, auth, history)
    await talk("Make it purple", server, auth, history)
    second = server.of("POST", "/v3/chat/completions")[1].json["messages"]
    assert second == [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Show me a sunset"},
        {"role": "assistant", "content": "Sure! Here is a sunset over the sea."},
        {"role": "assistant", "content": image_tag(SUNSET)},
        {"role": "user", "content": "Make it purple"},
    ]
    # The saved path stays on this machine.
    assert "generated-images" not in json.dumps(second)


async def test_the_history_window_and_a_saved_history(tmp_path: Path) -> None:
    history = ChatHistory(window=2)
    history.add_user("one")
    history.add_assistant("<think>hmm</think> two")
    history.add_image('a "quoted" fox & friends', tmp_path / "fox.png")
    assert history.api_messages() == [
        {"role": "assistant", "content": "two"},
        {
            "role": "assistant",
            "content": '<image description="a &quot;quoted&quot; fox &amp; friends" />',
        },
    ]
    path = history.save(tmp_path / "talk.json")
    loaded = ChatHistory.load(path)
    assert loaded.window == 2
    assert [m.to_dict() for m in loaded] == [m.to_dict() for m in history]
    assert loaded.just_generated_image
    with pytest.raises(ValueError, match="chat message"):
        ChatMessage.from_dict({"role": "robot", "content": "x"})


async def test_reasoning_streams_as_thoughts_and_stays_out_of_the_answer(
    server: AnimusServer, auth: AnimusAuth
) -> None:
    server.chats = [ChatScript(reasoning=("Let me ", "think."), pieces=("Done.",))]
    chunks, turn = await talk(
        "Think first", server, auth, ChatHistory(), chat_model=model(server, auth, reasoning=True)
    )
    thoughts = [c.text for c in chunks if isinstance(c, TextDelta) and c.thought]
    assert thoughts == ["Let me ", "think."]
    assert (
        turn.text == "Done." and turn.reply is not None and turn.reply.thoughts == "Let me think."
    )
    body = server.of("POST", "/v3/chat/completions")[0].json
    assert body["reasoning"] is True and body["show_reasoning"] is True


async def test_a_whole_json_answer_is_read_as_documented(
    server: AnimusServer, auth: AnimusAuth
) -> None:
    server.chats = [ChatScript(as_json=True, image_prompt=SUNSET)]
    chunks, turn = await talk("Show me", server, auth, ChatHistory())
    assert (
        isinstance(chunks[0], TextDelta)
        and chunks[0].text == "Sure! Here is a sunset over the sea."
    )
    assert turn.image_prompt == SUNSET and turn.images


async def test_the_chat_refreshes_its_token_once_on_a_401(
    server: AnimusServer, auth: AnimusAuth
) -> None:
    await talk("Hi", server, auth, ChatHistory())
    server.reject_next = 1
    _, turn = await talk("Hi again", server, auth, ChatHistory())
    assert turn.text
    assert len(server.of("POST", "/v3/chat/completions")) == 3
    assert len(server.exchanges) == 2


async def test_a_refused_chat_is_an_error_and_records_nothing(
    server: AnimusServer, auth: AnimusAuth
) -> None:
    server.reject_next = 2
    history = ChatHistory()
    with pytest.raises(AuthenticationError):
        await talk("Hi", server, auth, history)
    assert len(history) == 0


async def test_a_stream_cut_before_its_end_is_interrupted(
    server: AnimusServer, auth: AnimusAuth
) -> None:
    server.chats = [ChatScript(done=False, finish_reason=None)]
    history = ChatHistory()
    with pytest.raises(StreamInterruptedError, match=r"\[DONE\]"):
        await talk("Hi", server, auth, history)
    assert len(history) == 0


async def test_an_error_event_is_a_typed_error(server: AnimusServer, auth: AnimusAuth) -> None:
    server.chats = [ChatScript(error_event={"message": "model overloaded", "code": 503})]
    with pytest.raises(ServerError, match="model overloaded"):
        await talk("Hi", server, auth, ChatHistory())


async def test_animus_draws_the_picture_by_default_with_progress(
    server: AnimusServer, auth: AnimusAuth
) -> None:
    server.chats = [ChatScript(image_prompt=SUNSET)]
    provider = imagestream_animus_provider(auth)
    chunks, turn = await talk(
        "Show me a sunset",
        server,
        auth,
        ChatHistory(),
        image_provider=provider,
        image_params={"base_url": server.base, "api_key": KEY, "poll_interval": 0.01},
    )
    progress = [c.fraction for c in chunks if isinstance(c, Progress)]
    assert progress == [0.0, 0.3, 0.6, 1.0]
    assert turn.images[0].image.data == PNG
    assert server.of("POST", "/v3/generation/create")[0].json == {"prompt": SUNSET}
    assert len(server.exchanges) == 1  # the chat and the picture share one token


def imagestream_animus_provider(auth: AnimusAuth) -> imagestream.Provider:
    from imagestream_animus import AnimusProvider

    return AnimusProvider(auth=auth)


async def test_achat_runs_a_turn_to_its_end(server: AnimusServer, auth: AnimusAuth) -> None:
    server.chats = [ChatScript(image_prompt=SUNSET)]
    turn = await achat(
        "Show me",
        model=model(server, auth),
        image_provider="procedural",
        image_params=SMALL,
    )
    assert turn.text.startswith("Sure!") and len(turn.images) == 1


async def test_auto_turn_asks_for_a_whole_answer(server: AnimusServer, auth: AnimusAuth) -> None:
    server.chats = [ChatScript(as_json=True, pieces=("One.", " Two."))]
    chat_model = model(server, auth, auto_turn=True, temperature=0.7, body={"top_p": 0.9})
    _, turn = await talk("Hi", server, auth, ChatHistory(), chat_model=chat_model)
    assert turn.text == "One. Two."
    body = server.of("POST", "/v3/chat/completions")[0].json
    assert (body["stream"], body["autoTurn"]) == (False, True)
    assert (body["temperature"], body["top_p"]) == (0.7, 0.9)
    assert server.of("POST", "/v3/chat/completions")[0].headers["Accept"] == "application/json"
