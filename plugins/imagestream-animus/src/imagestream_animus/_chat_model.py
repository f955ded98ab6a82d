"""``AnimusChat``: Animus's ``/chat/completions`` as a :class:`~imagestream_animus.conversation.ChatModel`.

The endpoint is OpenAI-shaped. With ``"stream": true`` it answers with
server-sent events, each ``data:`` a ``chat.completion.chunk`` whose
``choices[0].delta`` carries a piece of ``content`` (and of ``reasoning``
when reasoning is shown), the stream ending with ``data: [DONE]``. Animus's
own body fields are sent as animus-client sends them: ``compliance``,
``check_image_generation``, ``autoTurn``, and ``reasoning`` with
``show_reasoning``.

Where the image prompt is: the documented (non-streamed) answer has it in
``choices[0].message.image_prompt``; for a stream the SDK reads none ("not
supported in streaming yet"), so every place a server could put it is read:
pieces in ``delta.image_prompt`` (joined, like content), or a whole value in
a chunk's ``choices[0].message.image_prompt``, ``choices[0].image_prompt``
or top-level ``image_prompt`` (a whole value wins over pieces). A server
that answers a streaming request with one JSON body (``autoTurn`` makes the
SDK ask for one) is read as the documented answer.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import imagestream
from imagestream import (
    ContentPolicyError,
    RetryPolicy,
    Secret,
    StreamDecodeError,
    StreamInterruptedError,
    StreamTruncatedError,
    TextDelta,
    Usage,
)
from imagestream.provider import error_for_status, media_type, redact

from ._api import AnimusAPI
from ._auth import DEFAULT_AUTH, AnimusAuth, Credentials
from ._config import DEFAULT_CHAT_MODEL, PROVIDER, api_base, auth_url_for
from ._errors import message_of, policy_refusal, scrub
from ._wire import is_json, read_json_response, refuse_content_type
from .conversation import Reply

if TYPE_CHECKING:
    import aiohttp

    from imagestream import HttpClient

__all__ = ["CHAT_RETRY", "DEFAULT_SYSTEM", "AnimusChat", "ChatEventReader"]

DEFAULT_SYSTEM: Final = "You are a helpful assistant."
"""The system message when none is given (animus-client requires one)."""

CHAT_RETRY: Final = RetryPolicy(statuses=frozenset({408, 429, 502, 503, 504}))
"""Retried before the answer starts: gateway failures and rate limits."""

_QUOTE: Final = 200


def _usage(data: Any) -> Usage | None:
    if not isinstance(data, Mapping):
        return None

    def count(name: str) -> int | None:
        value = data.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    return Usage(
        input_tokens=count("prompt_tokens"),
        output_tokens=count("completion_tokens"),
        total_tokens=count("total_tokens"),
        output_text_tokens=count("completion_tokens"),
        raw=data,
    )


def _violations(*sources: Any) -> tuple[str, ...]:
    found: list[str] = []
    for source in sources:
        if isinstance(source, Mapping):
            value = source.get("compliance_violations")
            if isinstance(value, list):
                found.extend(str(item) for item in value if item not in found)
    return tuple(found)


def _secret(value: str | Secret | None) -> Secret | None:
    if isinstance(value, Secret):
        return value if value else None
    return Secret(value) if value else None


class ChatEventReader:
    """Turns the events of one chat stream into text deltas and, at the end, a :class:`Reply`.

    Args:
        secrets: Credentials to mask in anything quoted from the stream.
    """

    def __init__(self, secrets: Sequence[str] = ()) -> None:
        self.secrets = tuple(secrets)
        self.done = False
        self._text: list[str] = []
        self._thoughts: list[str] = []
        self._prompt_pieces: list[str] = []
        self._prompt: str | None = None
        self._usage: Usage | None = None
        self._finish: str | None = None
        self._violations: tuple[str, ...] = ()
        self._extra: dict[str, Any] = {}

    def feed(self, data: str) -> list[TextDelta]:
        """The deltas in one event's ``data`` (``[DONE]`` ends the stream).

        Raises:
            StreamDecodeError: The data is not a JSON object.
            ProviderError: The event is an error (typed by its status or wording).
        """
        if data.strip() == "[DONE]":
            self.done = True
            return []
        try:
            event = json.loads(data)
        except ValueError:
            quoted = scrub(data[:_QUOTE], self.secrets)
            raise StreamDecodeError(f"{PROVIDER}: a chat event is not JSON: {quoted!r}") from None
        if not isinstance(event, Mapping):
            raise StreamDecodeError(
                f"{PROVIDER}: a chat event is {type(event).__name__}, not an object"
            )
        return self.read(event, streamed=True)

    def read(self, event: Mapping[str, Any], *, streamed: bool) -> list[TextDelta]:
        """The deltas of one parsed chunk (``streamed``) or of a whole answer."""
        if event.get("error"):
            raise self._error(event["error"])
        out: list[TextDelta] = []
        choices = event.get("choices")
        choice = (
            next((c for c in choices if isinstance(c, Mapping)), None)
            if isinstance(choices, list)
            else None
        )
        choice = choice or {}
        delta = choice.get("delta")
        delta = delta if isinstance(delta, Mapping) else {}
        message = choice.get("message")
        message = message if isinstance(message, Mapping) else {}
        for source, whole in ((delta, False), (message, True)):
            reasoning = source.get("reasoning") or source.get("reasoning_content")
            if isinstance(reasoning, str) and reasoning and (not whole or not self._thoughts):
                self._thoughts.append(reasoning)
                out.append(TextDelta(reasoning, thought=True))
            content = source.get("content")
            if isinstance(content, str) and content and (not whole or not self._text):
                self._text.append(content)
                out.append(TextDelta(content))
            elif whole and not content and not self._text and isinstance(source.get("turns"), list):
                # autoTurn: the answer split into messages.
                joined = "\n".join(str(turn) for turn in source["turns"] if turn)
                if joined:
                    self._text.append(joined)
                    out.append(TextDelta(joined))
        piece = delta.get("image_prompt")
        if isinstance(piece, str) and piece:
            self._prompt_pieces.append(piece)
        for source in (message, choice, event):
            whole_prompt = source.get("image_prompt")
            if isinstance(whole_prompt, str) and whole_prompt.strip():
                self._prompt = whole_prompt
        finish = choice.get("finish_reason")
        if isinstance(finish, str) and finish:
            self._finish = finish
        violations = _violations(event, choice)
        if violations:
            self._violations = violations
        if isinstance(event.get("usage"), Mapping):
            self._usage = _usage(event["usage"])
        for name in ("turns", "next"):
            for source in (delta, message):
                if name in source:
                    self._extra[name] = source[name]
        if not streamed:
            self.done = True
        return out

    def _error(self, error: Any) -> Exception:
        message = scrub(message_of(error) or str(error), self.secrets)[:500]
        status = None
        if isinstance(error, Mapping):
            for name in ("status", "code", "status_code"):
                value = error.get(name)
                if isinstance(value, int) and not isinstance(value, bool) and 400 <= value < 600:
                    status = value
                    break
        text = f"error in the chat stream: {message}"
        if policy_refusal(message):
            return ContentPolicyError(text, provider=PROVIDER)
        return error_for_status(status or 500, text, provider=PROVIDER)

    def reply(self) -> Reply:
        """The whole answer."""
        prompt = self._prompt if self._prompt is not None else "".join(self._prompt_pieces) or None
        return Reply(
            text="".join(self._text),
            thoughts="".join(self._thoughts),
            image_prompt=prompt.strip() if prompt and prompt.strip() else None,
            usage=self._usage,
            finish_reason=self._finish,
            compliance_violations=self._violations,
            extra=dict(self._extra),
        )


class AnimusChat:
    """Animus's chat completions, streamed: a chat model for :func:`~imagestream_animus.conversation.chat`.

    Args:
        model: The chat model (``vivian-llama3.1-70b-1.0-fp8``).
        system: The system message sent first (``None``: none).
        base_url: The API root (default ``https://api.animusai.co/<api_version>``).
        api_version: ``"v3"`` (the SDK's) unless ``base_url`` says otherwise.
        api_key: The key to exchange (default: ``ANIMUS_API_KEY``).
        token: A bearer token to send as it is instead (default: ``ANIMUS_TOKEN``).
        auth_url: Where keys are exchanged (default: ``/auth/generate-token`` at the API's host).
        check_image_generation: Ask Animus whether the reply promises a picture (``image_prompt``).
        compliance: Animus's compliance check (on by default, as in the SDK).
        reasoning: Ask for, and show, the model's reasoning (``thought`` deltas).
        auto_turn: Animus's conversational turns (the SDK asks for a whole
            answer then, and so does this).
        temperature: Sampling temperature, when set.
        max_tokens: Longest reply, when set.
        body: More body fields, sent as given (``top_p``, ``stop``, ...).
        auth: The token cache (default: the one the ``animus`` provider shares).
        http: The HTTP client (default: the running loop's pooled one).
        timeout: Seconds without data before the stream counts as stalled.
    """

    name = PROVIDER

    def __init__(
        self,
        *,
        model: str = DEFAULT_CHAT_MODEL,
        system: str | None = DEFAULT_SYSTEM,
        base_url: str | None = None,
        api_version: str | None = None,
        api_key: str | Secret | None = None,
        token: str | Secret | None = None,
        auth_url: str | None = None,
        check_image_generation: bool = True,
        compliance: bool = True,
        reasoning: bool = False,
        auto_turn: bool = False,
        temperature: float | None = None,
        max_tokens: int | None = None,
        body: Mapping[str, Any] | None = None,
        auth: AnimusAuth | None = None,
        http: HttpClient | None = None,
        timeout: float | None = None,
    ) -> None:
        self.model = model
        self.system = system
        self.base = api_base(base_url, api_version)  # a bad URL or version fails here
        self.auth_url = auth_url_for(self.base, auth_url)
        self.api_key = _secret(api_key)
        self.token = _secret(token)
        self.check_image_generation = check_image_generation
        self.compliance = compliance
        self.reasoning = reasoning
        self.auto_turn = auto_turn
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.body = dict(body or {})
        self.auth = auth or DEFAULT_AUTH
        self.http = http
        self.timeout = timeout

    def credentials(self) -> Credentials:
        """The credentials a call uses (read now: the environment may have changed).

        Raises:
            MissingAPIKeyError: No key and no token anywhere.
        """
        return Credentials.resolve(auth_url=self.auth_url, key=self.api_key, token=self.token)

    def request_body(self, messages: Sequence[Mapping[str, str]]) -> dict[str, Any]:
        """The JSON body sent for ``messages``."""
        sent = [{"role": "system", "content": self.system}] if self.system else []
        sent += [{"role": m["role"], "content": m["content"]} for m in messages]
        body: dict[str, Any] = {
            "model": self.model,
            "messages": sent,
            # autoTurn answers only as a whole body (animus-client turns stream off for it).
            "stream": not self.auto_turn,
            "compliance": self.compliance,
            "check_image_generation": self.check_image_generation,
            "autoTurn": self.auto_turn,
        }
        if self.reasoning:
            body["reasoning"] = True
            body["show_reasoning"] = True
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        body.update(self.body)
        return body

    async def reply(
        self, messages: Sequence[Mapping[str, str]]
    ) -> AsyncIterator[TextDelta | Reply]:
        """Stream the answer to ``messages``: text deltas, then the :class:`Reply`."""
        credentials = self.credentials()
        http = self.http if self.http is not None else imagestream.http_client()
        api = AnimusAPI(
            http, credentials, base=self.base, auth=self.auth, stall_timeout=self.timeout
        )
        body = self.request_body(messages)
        # Made before sending: a missing decoder plugin must not cost a call.
        decoder = imagestream.get_decoder("sse") if body.get("stream") else None
        response = await api.send(
            "POST",
            "/chat/completions",
            json_body=body,
            accept="text/event-stream" if decoder is not None else "application/json",
            retry=CHAT_RETRY,
        )
        reader = ChatEventReader(api.secrets)
        media = media_type(response)
        if is_json(media):
            answer = await read_json_response(
                http, response, what="the chat answer", secrets=api.secrets
            )
            if not isinstance(answer, Mapping):
                raise StreamDecodeError(
                    f"{PROVIDER}: the chat answer is {type(answer).__name__}, not an object"
                )
            for delta in reader.read(answer, streamed=False):
                yield delta
            yield reader.reply()
            return
        if media != "text/event-stream":
            raise await refuse_content_type(
                response, ("text/event-stream", "application/json"), api.secrets
            )
        if decoder is None:
            decoder = imagestream.get_decoder("sse")
        async for delta in self._events(http, response, decoder, reader):
            yield delta
        yield reader.reply()

    async def _events(
        self,
        http: HttpClient,
        response: aiohttp.ClientResponse,
        decoder: Any,
        reader: ChatEventReader,
    ) -> AsyncIterator[TextDelta]:
        pieces = http.iter_body(response, provider=PROVIDER)
        try:
            async for piece in pieces:
                for event in decoder.feed(piece):
                    for delta in reader.feed(str(getattr(event, "data", ""))):
                        yield delta
                    if reader.done:
                        return
            try:
                tail = decoder.close()
            except StreamTruncatedError as exc:
                raise StreamInterruptedError(
                    f"the chat stream ended inside an event ({exc.message})", provider=PROVIDER
                ) from exc
            for event in tail:
                for delta in reader.feed(str(getattr(event, "data", ""))):
                    yield delta
        finally:
            await pieces.aclose()
            response.close()
        if not reader.done and reader.reply().finish_reason is None:
            raise StreamInterruptedError(
                "the chat stream ended before its end ([DONE]) and without a finish_reason",
                provider=PROVIDER,
            )

    def __repr__(self) -> str:
        return f"<AnimusChat {self.model!r} at {redact(self.base)}>"
