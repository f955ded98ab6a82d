"""A local stand-in for the Animus API, speaking every endpoint the plugin uses.

- ``GET /auth/generate-token``: checks the ``apikey`` header, issues a JWT
  whose ``exp`` the test controls (``token_ttl``), answered in the SDK's
  shape (``{"animus": {"token"}}``) or the documentation's (``{"accessToken"}``).
- ``POST /v3/chat/completions``: OpenAI-shaped; streams
  ``chat.completion.chunk`` events ending in ``[DONE]``, written in seeded
  random pieces that do not line up with events, or one JSON answer.
- ``POST /v3/generate/image``: ``{"output": [url]}``.
- ``POST /v3/generation/create`` and ``GET /v3/generation/status/{id}``:
  a generation that moves through scripted ``(status, progress)`` steps, one
  per poll, then ``result_urls``.
- ``GET /files/{name}``: the result files, with the content type (and
  length, or none) each test chooses.

Every API route checks ``Authorization: Bearer`` against the tokens it
issued (and their expiry, by the real clock) or the direct token, and can be
told to refuse the next N calls with a 401. Every request is recorded.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from imagestream.testing import make_png

KEY = "animus-test-key-0123456789abcdef"
"""The API key the server accepts; recognisable, so tests can look for leaks."""

DIRECT_TOKEN = "direct-token-fedcba9876543210"
"""A bearer token the server accepts without any exchange."""

PNG = make_png(16, 12, (200, 40, 40))


def make_jwt(exp: float, number: int) -> str:
    """An unsigned-looking JWT with an ``exp`` claim (the client never checks signatures)."""

    def part(value: Mapping[str, Any]) -> str:
        raw = json.dumps(value, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    claims = {"exp": int(exp), "sub": "org-test", "n": number}
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl{number}"


class Clock:
    """A clock that starts at the real time and moves only when told."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Recorded:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    at: float


@dataclass
class ChatScript:
    """How the next chat completion is answered.

    Attributes:
        pieces: The reply's content, one delta each.
        image_prompt: The image prompt, when the reply carries one.
        prompt_in: Where it goes: ``"delta"`` (in pieces), ``"message"``
            (``choices[0].message`` of the last chunk) or ``"top"`` (the last
            chunk's top level).
        reasoning: Reasoning deltas sent before the content.
        done: End with ``data: [DONE]``.
        finish_reason: The last chunk's ``finish_reason`` (``None``: no last chunk).
        as_json: Answer with one JSON body (the documented non-streamed answer).
        error_event: Send this ``error`` object after the pieces instead of ending.
        status: Answer with this HTTP status and a ``{"message"}`` body.
    """

    pieces: Sequence[str] = ("Sure! ", "Here is a ", "sunset over the sea.")
    image_prompt: str | None = None
    prompt_in: str = "message"
    reasoning: Sequence[str] = ()
    done: bool = True
    finish_reason: str | None = "stop"
    as_json: bool = False
    error_event: Mapping[str, Any] | None = None
    status: int | None = None


@dataclass
class Generation:
    """A generation the status route reports, one step per poll (the last one repeats)."""

    steps: list[tuple[str, int]] = field(
        default_factory=lambda: [
            ("queued", 0),
            ("processing", 30),
            ("processing", 60),
            ("completed", 100),
        ]
    )
    result_urls: list[str] = field(default_factory=list)
    error: str | None = None
    polls: int = 0


class AnimusServer:
    """The fake Animus API on 127.0.0.1 (``async with AnimusServer() as server``).

    Attributes:
        token_ttl: Seconds from issue to ``exp`` of each new token.
        token_shape: ``"animus"`` or ``"accessToken"``.
        reject_next: Refuse this many more API calls with a 401.
        chats: Scripts of the next chat answers (the last one repeats).
        generations: Scripted generations by id.
        next_generation: The script the next ``/generation/create`` makes.
        files: Result files by name: (content type, body, send a Content-Length).
        fail: Answer the next call to a path with (status, message) instead.
        echo_key: Quote the received ``apikey`` in a refused exchange.
    """

    def __init__(self, *, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.token_ttl = 900.0
        self.token_shape = "animus"
        self.reject_next = 0
        self.echo_key = False
        self.issued: dict[str, float] = {}
        self.chats: list[ChatScript] = [ChatScript()]
        self.generations: dict[str, Generation] = {}
        self.next_generation: Generation | None = None
        self.files: dict[str, tuple[str, bytes, bool]] = {"result.png": ("image/png", PNG, True)}
        self.fail: dict[str, tuple[int, str]] = {}
        self.requests: list[Recorded] = []
        self._runner: web.AppRunner | None = None
        self._arrival: asyncio.Event | None = None
        self.url = ""

    @property
    def base(self) -> str:
        """The API root the client is given."""
        return f"{self.url}/v3"

    def file_url(self, name: str) -> str:
        return f"{self.url}/files/{name}"

    def of(self, method: str, prefix: str) -> list[Recorded]:
        """The recorded requests with this method whose path starts with ``prefix``."""
        return [r for r in self.requests if r.method == method and r.path.startswith(prefix)]

    @property
    def exchanges(self) -> list[Recorded]:
        return self.of("GET", "/auth/generate-token")

    # -- lifecycle -----------------------------------------------------------

    async def wait_for(self, method: str, prefix: str, count: int) -> None:
        """Wait (5 s at most) until ``count`` such requests have arrived."""
        assert self._arrival is not None
        async with asyncio.timeout(5.0):
            while len(self.of(method, prefix)) < count:
                self._arrival.clear()
                await self._arrival.wait()

    async def __aenter__(self) -> AnimusServer:
        self._arrival = asyncio.Event()
        app = web.Application()
        app.router.add_get("/auth/generate-token", self._exchange)
        app.router.add_post("/v3/chat/completions", self._chat)
        app.router.add_post("/v3/generate/image", self._generate_image)
        app.router.add_post("/v3/generation/create", self._create)
        app.router.add_get("/v3/generation/status/{id}", self._status)
        app.router.add_get("/files/{name}", self._file)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- helpers ---------------------------------------------------------------

    async def _record(self, request: web.Request) -> Recorded:
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
        recorded = Recorded(
            request.method, request.path, dict(request.headers), body, time.monotonic()
        )
        self.requests.append(recorded)
        if self._arrival is not None:
            self._arrival.set()
        return recorded

    def _refusal(self, request: web.Request) -> web.Response | None:
        failure = self.fail.pop(request.path, None)
        if failure is not None:
            status, message = failure
            return web.json_response({"message": message}, status=status)
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme != "Bearer" or not token:
            return web.json_response({"message": "missing bearer token"}, status=401)
        if self.reject_next > 0:
            self.reject_next -= 1
            return web.json_response({"message": "token expired"}, status=401)
        if token == DIRECT_TOKEN:
            return None
        exp = self.issued.get(token)
        if exp is None or time.time() >= exp:
            return web.json_response({"message": "invalid or expired token"}, status=401)
        return None

    # -- routes ------------------------------------------------------------------

    async def _exchange(self, request: web.Request) -> web.Response:
        await self._record(request)
        key = request.headers.get("apikey", "")
        if key != KEY:
            said = f"invalid API key {key}" if self.echo_key else "invalid API key"
            return web.json_response({"message": said}, status=401)
        token = make_jwt(time.time() + self.token_ttl, len(self.issued) + 1)
        self.issued[token] = time.time() + self.token_ttl
        if self.token_shape == "accessToken":
            return web.json_response({"accessToken": token})
        return web.json_response(
            {"animus": {"token": token}, "livekit": {"voice": {"url": "wss://x", "token": "lk"}}}
        )

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        if (refused := self._refusal(request)) is not None:
            return refused
        script = self.chats.pop(0) if len(self.chats) > 1 else self.chats[0]
        if script.status is not None:
            return web.json_response({"message": "chat failed"}, status=script.status)
        if script.as_json:
            message: dict[str, Any] = {"role": "assistant", "content": "".join(script.pieces)}
            if script.reasoning:
                message["reasoning"] = "".join(script.reasoning)
            if script.image_prompt:
                message["image_prompt"] = script.image_prompt
            return web.json_response(
                {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20},
                }
            )
        events = [self._chunk({"reasoning": piece}) for piece in script.reasoning]
        events += [self._chunk({"content": piece}) for piece in script.pieces]
        if script.image_prompt and script.prompt_in == "delta":
            half = len(script.image_prompt) // 2
            events += [
                self._chunk({"image_prompt": script.image_prompt[:half]}),
                self._chunk({"image_prompt": script.image_prompt[half:]}),
            ]
        if script.error_event is not None:
            events.append(json.dumps({"error": script.error_event}))
        elif script.finish_reason is not None:
            last: dict[str, Any] = {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {}, "finish_reason": script.finish_reason}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20},
            }
            if script.image_prompt and script.prompt_in == "message":
                last["choices"][0]["message"] = {
                    "role": "assistant",
                    "image_prompt": script.image_prompt,
                }
            if script.image_prompt and script.prompt_in == "top":
                last["image_prompt"] = script.image_prompt
            events.append(json.dumps(last))
        if script.done and script.error_event is None:
            events.append("[DONE]")
        body = "".join(f"data: {event}\n\n" for event in events).encode()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await self._write_in_pieces(response, body)
        return response

    @staticmethod
    def _chunk(delta: Mapping[str, Any]) -> str:
        return json.dumps(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "model": "vivian",
                "choices": [{"index": 0, "delta": dict(delta), "finish_reason": None}],
            }
        )

    async def _write_in_pieces(self, response: web.StreamResponse, body: bytes) -> None:
        position = 0
        while position < len(body):
            size = self.rng.randint(1, 40)
            await response.write(body[position : position + size])
            position += size
            if self.rng.random() < 0.3:
                await asyncio.sleep(0)
        await response.write_eof()

    async def _generate_image(self, request: web.Request) -> web.Response:
        await self._record(request)
        if (refused := self._refusal(request)) is not None:
            return refused
        return web.json_response({"output": [self.file_url("result.png")]})

    async def _create(self, request: web.Request) -> web.Response:
        await self._record(request)
        if (refused := self._refusal(request)) is not None:
            return refused
        generation = self.next_generation or Generation(result_urls=[self.file_url("result.png")])
        self.next_generation = None
        generation_id = f"gen_{len(self.generations) + 1}"
        self.generations[generation_id] = generation
        return web.json_response(
            {
                "generation_id": generation_id,
                "status": "queued",
                "message": "accepted",
                "estimated_time": 3,
                "credits_deducted": 1,
                "remaining_balance": 99,
            }
        )

    async def _status(self, request: web.Request) -> web.Response:
        await self._record(request)
        if (refused := self._refusal(request)) is not None:
            return refused
        generation = self.generations.get(request.match_info["id"])
        if generation is None:
            return web.json_response({"detail": "generation not found"}, status=404)
        step = generation.steps[min(generation.polls, len(generation.steps) - 1)]
        generation.polls += 1
        status, progress = step
        done = status == "completed"
        return web.json_response(
            {
                "generation_id": request.match_info["id"],
                "status": status,
                "progress": progress,
                "result_urls": generation.result_urls if done else [],
                "error": generation.error if status == "failed" else None,
                "prompt": "a sunset",
            }
        )

    async def _file(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        name = request.match_info["name"]
        if name not in self.files:
            return web.json_response({"detail": "no such file"}, status=404)
        content_type, body, with_length = self.files[name]
        if with_length:
            return web.Response(body=body, headers={"Content-Type": content_type})
        response = web.StreamResponse(headers={"Content-Type": content_type})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(body), 4096):
            await response.write(body[start : start + 4096])
        await response.write_eof()
        return response
