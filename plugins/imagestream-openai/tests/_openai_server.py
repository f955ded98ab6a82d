"""A local aiohttp server that speaks OpenAI's image endpoints, byte for byte, for tests.

Endpoints: ``POST /v1/images/generations`` (JSON), ``POST /v1/images/edits``
(multipart), ``POST /v1/responses`` (JSON, ``image_generation`` tool), and
``GET /files/{name}`` (the ``url`` results of DALL-E). Streams are framed as
OpenAI frames them (``event: <type>``, ``data: <json>``, blank line) and
written in seeded random-size pieces, one ``write`` per piece, so that every
event boundary is crossed somewhere. Images are real PNG, JPEG or WebP files
made with Pillow.

It checks the ``Authorization: Bearer`` (or ``api-key``) header, parses the
JSON or multipart request and records it, and plays a :class:`Script` per
request when a test queued one: an HTTP error, a connection reset after N
events, a stall, a stream that ends early, an error event, or a verbatim body.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
from aiohttp import BodyPartReader, web

from imagestream import testing

_MIMES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


def make_image(fmt: str = "png", variant: int = 0, width: int = 64, height: int = 48) -> bytes:
    """A real image file (``png``, ``jpeg`` or ``webp``), distinct per ``variant``; cached."""
    return testing.make_image(fmt, variant, width, height)


def b64_image(fmt: str = "png", variant: int = 0, width: int = 64, height: int = 48) -> str:
    """:func:`make_image`, base64-encoded."""
    return base64.b64encode(make_image(fmt, variant, width, height)).decode("ascii")


def sse(events: Iterable[tuple[str, Any]], *, done: bool = False) -> bytes:
    """SSE bytes of ``(event type, data)`` pairs; data that is not ``str`` is JSON-encoded."""
    out = []
    for name, data in events:
        text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        out.append(f"event: {name}\ndata: {text}\n\n")
    if done:
        out.append("data: [DONE]\n\n")
    return "".join(out).encode("utf-8")


def _response_usage() -> dict[str, Any]:
    return {
        "input_tokens": 2941,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 49,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 2990,
    }


@attrs.define
class Script:
    """What the server does with one API request (tests queue them in order).

    Attributes:
        status: HTTP status; not 2xx means an error response with ``body``.
        body: Error body (a dict is sent as JSON) or a verbatim success body.
        headers: Extra response headers (``Retry-After``, ...).
        events: Events to stream instead of the generated ones.
        content_type: Content type of a verbatim ``body``.
        reset_after: Abort the connection after this many events.
        stall_after: Stop writing after this many events, until the client leaves.
        end_after: End the body cleanly after this many events (no completion).
        cut_inside: With ``end_after``/``reset_after``: also send half of the next event.
        done: Append ``data: [DONE]`` after the events.
        raw: A verbatim ``text/event-stream`` body, written in pieces like generated ones.
    """

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = attrs.Factory(dict)
    events: list[tuple[str, Any]] | None = None
    content_type: str = "application/json"
    reset_after: int | None = None
    stall_after: int | None = None
    end_after: int | None = None
    cut_inside: bool = False
    done: bool = False
    raw: bytes | None = None


@attrs.define
class Recorded:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any = None
    form: dict[str, list[str]] = attrs.Factory(dict)
    files: list[tuple[str, str | None, str | None, bytes]] = attrs.Factory(list)


class OpenAIServer:
    """The fake OpenAI server. Start it with :meth:`start`; stop it with :meth:`stop`.

    Args:
        key: The API key it accepts.
        seed: Seed of the piece sizes.
        max_piece: Largest piece written at once.
    """

    def __init__(
        self, key: str = "sk-test-server-key", *, seed: int = 1234, max_piece: int = 4096
    ) -> None:
        self.key = key
        self.rng = random.Random(seed)
        self.max_piece = max_piece
        self.scripts: deque[Script] = deque()
        self.requests: list[Recorded] = []
        self.disconnects = 0
        self.files: dict[str, tuple[bytes, str]] = {}
        self.text = "Here is the picture you asked for."
        self.revised_prompt = "A detailed painting of the requested scene."
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self.origin = ""

    # -- lifecycle ---------------------------------------------------------

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(client_max_size=256 * 2**20)
        app.router.add_post("/v1/images/generations", self._generations)
        app.router.add_post("/v1/images/edits", self._edits)
        app.router.add_post("/v1/responses", self._responses)
        app.router.add_get("/files/{name}", self._file)
        return app

    async def start(self) -> str:
        """Bind 127.0.0.1 on a free port; return the base URL (``.../v1``)."""
        # Handler cancellation tells a stalled handler that its client left.
        self._runner = web.AppRunner(
            self.app(), access_log=None, shutdown_timeout=0.5, handler_cancellation=True
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.origin = f"http://127.0.0.1:{port}"
        self.base_url = f"{self.origin}/v1"
        return self.base_url

    async def stop(self) -> None:
        """Close every connection and the listening socket."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def open_connections(self) -> int:
        """Connections currently open on the server side."""
        server = self._runner.server if self._runner is not None else None
        return len(server.connections) if server is not None else 0

    def script(self, *scripts: Script) -> None:
        """Queue what the next requests get."""
        self.scripts.extend(scripts)

    # -- request parsing ---------------------------------------------------

    def _authorised(self, request: web.Request) -> bool:
        auth = request.headers.get("Authorization", "")
        return auth == f"Bearer {self.key}" or request.headers.get("api-key") == self.key

    def _unauthorised(self, request: web.Request) -> web.Response:
        given = request.headers.get("Authorization", "").removeprefix(
            "Bearer "
        ) or request.headers.get("api-key", "")
        # Quotes the whole key on purpose, as a careless gateway would: the
        # client must mask it.
        body = {
            "error": {
                "message": f"Incorrect API key provided: {given}. Check your key.",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        }
        return web.json_response(body, status=401, headers={"x-request-id": "req_auth"})

    async def _record_json(self, request: web.Request) -> Recorded:
        body = await request.json()
        record = Recorded(request.method, request.path, dict(request.headers), json=body)
        self.requests.append(record)
        return record

    async def _record_form(self, request: web.Request) -> Recorded:
        record = Recorded(request.method, request.path, dict(request.headers))
        reader = await request.multipart()
        async for part in reader:
            assert isinstance(part, BodyPartReader) and part.name is not None
            data = bytes(await part.read())
            if part.filename is not None:
                record.files.append(
                    (part.name, part.filename, part.headers.get("Content-Type"), data)
                )
            else:
                record.form.setdefault(part.name, []).append(data.decode("utf-8"))
        self.requests.append(record)
        return record

    # -- handlers ----------------------------------------------------------

    async def _generations(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            return self._unauthorised(request)
        record = await self._record_json(request)
        return await self._images(request, dict(record.json), "image_generation")

    async def _edits(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            return self._unauthorised(request)
        record = await self._record_form(request)
        params: dict[str, Any] = {name: values[-1] for name, values in record.form.items()}
        for name in ("n", "partial_images", "output_compression"):
            if name in params:
                params[name] = int(params[name])
        params["stream"] = params.get("stream") == "true"
        if not any(name in ("image", "image[]") for name, *_ in record.files):
            return web.json_response(
                {
                    "error": {
                        "message": "Missing required parameter: 'image'.",
                        "type": "invalid_request_error",
                        "param": "image",
                        "code": "missing_required_parameter",
                    }
                },
                status=400,
            )
        return await self._images(request, params, "image_edit")

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            return self._unauthorised(request)
        record = await self._record_json(request)
        script = self.scripts.popleft() if self.scripts else Script()
        if script.status >= 300 or (script.body is not None and script.events is None):
            return self._verbatim(script)
        if script.raw is not None:
            return await self._stream(request, script, [], done=False)
        body = record.json
        tools = body.get("tools") or [{}]
        tool = tools[0]
        if body.get("stream"):
            return await self._stream(
                request, script, self.responses_events(body, tool), done=script.done
            )
        return web.json_response(self.responses_body(body, tool))

    async def _file(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self.files:
            return web.Response(status=404, text="no such file")
        data, mime = self.files[name]
        return web.Response(body=data, content_type=mime)

    async def _images(
        self, request: web.Request, params: dict[str, Any], kind: str
    ) -> web.StreamResponse:
        script = self.scripts.popleft() if self.scripts else Script()
        if script.status >= 300 or (script.body is not None and script.events is None):
            return self._verbatim(script)
        if script.raw is not None:
            return await self._stream(request, script, [], done=False)
        if params.get("stream"):
            return await self._stream(
                request, script, self.images_events(params, kind), done=script.done
            )
        return web.json_response(self.images_body(params))

    def _verbatim(self, script: Script) -> web.Response:
        headers = {"x-request-id": "req_scripted", **script.headers}
        if isinstance(script.body, (dict, list)):
            return web.json_response(script.body, status=script.status, headers=headers)
        body = script.body if isinstance(script.body, bytes) else str(script.body or "").encode()
        return web.Response(
            body=body, status=script.status, headers=headers, content_type=script.content_type
        )

    # -- generated content -------------------------------------------------

    def images_events(self, params: Mapping[str, Any], kind: str) -> list[tuple[str, Any]]:
        """The events of a streamed Images API call, as real traffic has them."""
        fmt = params.get("output_format") or "png"
        size = params.get("size") or "1024x1024"
        size = "1024x1024" if size == "auto" else size
        quality = params.get("quality") or "medium"
        background = params.get("background") or "opaque"
        partials = int(params.get("partial_images") or 0)
        events: list[tuple[str, Any]] = []
        seq = 0
        for image in range(int(params.get("n") or 1)):
            for index in range(partials):
                events.append(
                    (
                        f"{kind}.partial_image",
                        {
                            "created_at": int(time.time()),
                            "type": f"{kind}.partial_image",
                            "b64_json": b64_image(fmt, index + 1),
                            "background": background,
                            "output_format": fmt,
                            "partial_image_index": index,
                            "quality": quality,
                            "sequence_number": seq,
                            "size": size,
                        },
                    )
                )
                seq += 1
            events.append(
                (
                    f"{kind}.completed",
                    {
                        "created_at": int(time.time()),
                        "type": f"{kind}.completed",
                        "b64_json": b64_image(fmt, 10 + image),
                        "background": background,
                        "output_format": fmt,
                        "quality": quality,
                        "sequence_number": seq,
                        "size": size,
                        "usage": {
                            "input_tokens": 16,
                            "input_tokens_details": {"image_tokens": 0, "text_tokens": 16},
                            "output_tokens": 1056,
                            "total_tokens": 1072,
                        },
                    },
                )
            )
            seq += 1
        return events

    def images_body(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """A whole ``ImagesResponse``."""
        model = str(params.get("model") or "")
        fmt = params.get("output_format") or "png"
        data = []
        for image in range(int(params.get("n") or 1)):
            if params.get("response_format") == "url":
                name = f"img{len(self.files)}.png"
                self.files[name] = (make_image("png", 20 + image), "image/png")
                item: dict[str, Any] = {"url": f"{self.origin}/files/{name}"}
            else:
                item = {"b64_json": b64_image(fmt, 20 + image)}
            if model == "dall-e-3":
                item["revised_prompt"] = self.revised_prompt
            data.append(item)
        body: dict[str, Any] = {"created": int(time.time()), "data": data}
        if model.startswith("gpt-image"):
            body.update(
                background="opaque",
                output_format=fmt,
                quality=params.get("quality") or "medium",
                size=params.get("size") or "1024x1024",
                usage={
                    "input_tokens": 12,
                    "input_tokens_details": {"image_tokens": 0, "text_tokens": 12},
                    "output_tokens": 272,
                    "total_tokens": 284,
                },
            )
        return body

    def _response_object(
        self, body: Mapping[str, Any], status: str, output: list[Any], usage: Any
    ) -> dict[str, Any]:
        return {
            "id": "resp_test",
            "object": "response",
            "created_at": int(time.time()),
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "max_output_tokens": None,
            "max_tool_calls": None,
            "model": f"{body.get('model')}-2025-08-07",
            "output": output,
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "store": True,
            "temperature": 1.0,
            "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools", []),
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": usage,
            "user": None,
            "metadata": {},
        }

    def _image_item(self, tool: Mapping[str, Any], status: str = "completed") -> dict[str, Any]:
        fmt = tool.get("output_format") or "png"
        return {
            "id": "ig_test",
            "type": "image_generation_call",
            "status": status,
            "background": "opaque",
            "output_format": fmt,
            "quality": tool.get("quality") or "medium",
            "result": b64_image(fmt, 30),
            "revised_prompt": self.revised_prompt,
            "size": tool.get("size") or "1024x1024",
        }

    def _message_item(self) -> dict[str, Any]:
        return {
            "id": "msg_test",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [
                {"type": "output_text", "annotations": [], "logprobs": [], "text": self.text}
            ],
        }

    def responses_body(self, body: Mapping[str, Any], tool: Mapping[str, Any]) -> dict[str, Any]:
        """A whole ``Response`` with an image and a message."""
        return self._response_object(
            body, "completed", [self._image_item(tool), self._message_item()], _response_usage()
        )

    def responses_events(
        self, body: Mapping[str, Any], tool: Mapping[str, Any]
    ) -> list[tuple[str, Any]]:
        """The events of a streamed Responses API call with one image, as recorded traffic has them."""
        fmt = tool.get("output_format") or "png"
        size = tool.get("size") or "1024x1024"
        quality = tool.get("quality") or "medium"
        item = self._image_item(tool)
        message = self._message_item()
        raw: list[dict[str, Any]] = [
            {
                "type": "response.created",
                "response": self._response_object(body, "in_progress", [], None),
            },
            {
                "type": "response.in_progress",
                "response": self._response_object(body, "in_progress", [], None),
            },
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "item": {"id": "ig_test", "type": "image_generation_call", "status": "in_progress"},
            },
            {
                "type": "response.image_generation_call.in_progress",
                "output_index": 0,
                "item_id": "ig_test",
            },
            {
                "type": "response.image_generation_call.generating",
                "output_index": 0,
                "item_id": "ig_test",
            },
        ]
        for index in range(int(tool.get("partial_images") or 0)):
            raw.append(
                {
                    "type": "response.image_generation_call.partial_image",
                    "output_index": 0,
                    "item_id": "ig_test",
                    "partial_image_index": index,
                    "partial_image_b64": b64_image(fmt, index + 1),
                    "size": size,
                    "quality": quality,
                    "background": "opaque",
                    "output_format": fmt,
                }
            )
        raw += [
            {
                "type": "response.image_generation_call.completed",
                "output_index": 0,
                "item_id": "ig_test",
            },
            {"type": "response.output_item.done", "output_index": 0, "item": item},
            {
                "type": "response.output_item.added",
                "output_index": 1,
                "item": {**message, "status": "in_progress", "content": []},
            },
            {
                "type": "response.content_part.added",
                "item_id": "msg_test",
                "output_index": 1,
                "content_index": 0,
                "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": ""},
            },
        ]
        words = self.text.split(" ")
        for number, word in enumerate(words):
            raw.append(
                {
                    "type": "response.output_text.delta",
                    "item_id": "msg_test",
                    "output_index": 1,
                    "content_index": 0,
                    "delta": word if number == 0 else " " + word,
                    "logprobs": [],
                }
            )
        raw += [
            {
                "type": "response.output_text.done",
                "item_id": "msg_test",
                "output_index": 1,
                "content_index": 0,
                "text": self.text,
                "logprobs": [],
            },
            {
                "type": "response.content_part.done",
                "item_id": "msg_test",
                "output_index": 1,
                "content_index": 0,
                "part": message["content"][0],
            },
            {"type": "response.output_item.done", "output_index": 1, "item": message},
            {
                "type": "response.completed",
                "response": self._response_object(
                    body, "completed", [item, message], _response_usage()
                ),
            },
        ]
        for seq, event in enumerate(raw):
            event["sequence_number"] = seq
        return [(event["type"], event) for event in raw]

    # -- streaming ---------------------------------------------------------

    async def _stream(
        self, request: web.Request, script: Script, events: list[tuple[str, Any]], *, done: bool
    ) -> web.StreamResponse:
        if script.events is not None:
            events = script.events
        stop = next(
            (
                x
                for x in (script.reset_after, script.stall_after, script.end_after)
                if x is not None
            ),
            None,
        )
        body = sse(events[:stop] if stop is not None else events, done=done and stop is None)
        if script.raw is not None:
            body = script.raw
        if stop is not None and script.cut_inside and stop < len(events):
            following = sse(events[stop : stop + 1])
            body += following[: len(following) // 2]
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "x-request-id": "req_stream",
                **script.headers,
            }
        )
        await response.prepare(request)
        try:
            await self._write(response, body)
            if script.reset_after is not None:
                assert request.transport is not None
                request.transport.abort()
                return response
            if script.stall_after is not None:
                await asyncio.Event().wait()  # until the client leaves and the handler is cancelled
            await response.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            self.disconnects += 1
            raise
        return response

    async def _write(self, response: web.StreamResponse, body: bytes) -> None:
        view = memoryview(body)
        position = 0
        while position < len(view):
            size = self.rng.randint(1, self.max_piece)
            await response.write(view[position : position + size].tobytes())
            position += size
