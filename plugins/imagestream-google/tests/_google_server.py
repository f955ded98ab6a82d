"""A local aiohttp server that speaks Google's Gemini API and Vertex AI, byte for byte, for tests.

Routes (all ``POST``; anything else is a Google-style 404):

- Gemini API: ``/{v1|v1beta}/models/{model}:{action}``, key in ``x-goog-api-key``;
- Vertex AI: ``/{v1|v1beta1}/projects/{p}/locations/{l}/publishers/{pub}/models/{model}:{action}``,
  ``Authorization: Bearer <token>``;
- Vertex AI express mode: ``/{v1|v1beta1}/publishers/{pub}/models/{model}:{action}``,
  key in ``x-goog-api-key``;

where ``action`` is ``streamGenerateContent`` (``?alt=sse``: server-sent events; without it
a JSON array, as Google answers then), ``generateContent`` (one JSON object) or ``predict``
(Imagen). An API key in the URL (``?key=``) is refused with a 400, which real Google accepts:
imagestream must never put it there.

Bytes are Google's: each event is ``data: <one-line JSON>`` and ``\\r\\n\\r\\n`` (no ``event:``
or ``id:`` lines, no terminator); the JSON has a space after each colon and none after commas
(``{"candidates": [{"content": {"parts": [...],"role": "model"},"index": 0}],...``); whole
answers are ``application/json; charset=UTF-8``; error bodies are the indented
``{"error": {"code", "message", "status", "details"}}`` envelope. On Vertex paths events are
reshaped as Vertex sends them (``role`` before ``parts``, no ``index: 0``, ``createTime``,
``usageMetadata.trafficType``). Every body is written in seeded random-size pieces (1 byte to
``max_piece``), so clients see arbitrary chunk boundaries.

Tests script the answers: :meth:`GoogleServer.enqueue` queues :class:`Scenario` objects, one
per request; with none queued the server generates an answer from the request (text, one
image in the requested format, ``STOP``). Every request is kept as a :class:`Recorded`
(path, query, lower-cased headers, raw and parsed body, the events sent, whether the client
left early).
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import random
import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
from aiohttp import web

from imagestream import testing

KEY = "test-google-api-key"
TOKEN = "ya29.test-access-token"
PROJECT = "test-project"
MODEL = "gemini-2.5-flash-image"
IMAGEN_MODEL = "imagen-4.0-generate-001"
RESPONSE_ID = "pzR8ac7cG_LUz7IP79TA4A8"
CRLF = "\r\n\r\n"
LF = "\n\n"
SSE_TYPE = "text/event-stream"
JSON_TYPE = "application/json; charset=UTF-8"
IMAGE_TOKENS = 1290

# The canonical status name of each HTTP code in Google's error envelope.
STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_MESSAGES = {
    400: "Request contains an invalid argument.",
    401: "Request had invalid authentication credentials. Expected OAuth 2 access token, "
    "login cookie or other valid authentication credential.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    429: "You exceeded your current quota, please check your plan and billing details.",
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "The request timed out. Please try again.",
}

_FORMATS = ("image/png", "image/jpeg", "image/webp")

_GEMINI_PATH = re.compile(r"^/(?P<version>v1|v1beta)/models/(?P<model>[^/:]+):(?P<action>\w+)$")
_VERTEX_PATH = re.compile(
    r"^/(?P<version>v1|v1beta1)/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
    r"/publishers/(?P<publisher>[^/]+)/models/(?P<model>[^/:]+):(?P<action>\w+)$"
)
_EXPRESS_PATH = re.compile(
    r"^/(?P<version>v1|v1beta1)/publishers/(?P<publisher>[^/]+)"
    r"/models/(?P<model>[^/:]+):(?P<action>\w+)$"
)
_ACTIONS = ("streamGenerateContent", "generateContent", "predict")


# -- images -------------------------------------------------------------------


def make_image(
    mime: str = "image/png", variant: int = 0, width: int = 64, height: int = 48
) -> bytes:
    """A real image file (PNG, JPEG or WebP, by MIME type), distinct per ``variant``; cached."""
    return testing.make_image(mime, variant, width, height)


def b64(data: bytes | str) -> str:
    """Standard padded base64 of ``data`` (``str`` is taken as UTF-8), as Google sends it."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return base64.b64encode(raw).decode("ascii")


# -- building answers ------------------------------------------------------------


def dumps(obj: Any) -> str:
    """JSON the way Google's formatter writes it: one line, ``": "`` and ``","``."""
    return json.dumps(obj, separators=(",", ": "), ensure_ascii=False)


def text_part(
    text: str, *, thought: bool = False, signature: bytes | None = None
) -> dict[str, Any]:
    """A ``text`` part; ``thought=True`` marks a thought summary."""
    part: dict[str, Any] = {"text": text}
    if thought:
        part["thought"] = True
    if signature is not None:
        part["thoughtSignature"] = b64(signature)
    return part


def image_part(
    data: bytes, mime: str = "image/png", *, thought: bool = False, signature: bytes | None = None
) -> dict[str, Any]:
    """An ``inlineData`` part holding a whole image; ``thought=True`` marks an interim image."""
    part: dict[str, Any] = {"inlineData": {"mimeType": mime, "data": b64(data)}}
    if thought:
        part["thought"] = True
    if signature is not None:
        part["thoughtSignature"] = b64(signature)
    return part


def usage(
    prompt: int = 9,
    text: int = 0,
    images: int = 0,
    thoughts: int = 0,
    *,
    traffic_type: str | None = None,
) -> dict[str, Any]:
    """A ``usageMetadata`` object: ``images`` count :data:`IMAGE_TOKENS` each, as recorded."""
    candidates = text + images * IMAGE_TOKENS
    out: dict[str, Any] = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt + candidates + thoughts,
    }
    if traffic_type is not None:
        out["trafficType"] = traffic_type
    out["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    if images:
        out["candidatesTokensDetails"] = [
            {"modality": "IMAGE", "tokenCount": images * IMAGE_TOKENS}
        ]
    if thoughts:
        out["thoughtsTokenCount"] = thoughts
    return out


def response(
    *parts: dict[str, Any],
    finish: str | None = None,
    finish_message: str | None = None,
    usage_metadata: dict[str, Any] | None = None,
    index: int = 0,
    model_version: str = MODEL,
    response_id: str = RESPONSE_ID,
    continuation_token: bytes | None = None,
) -> dict[str, Any]:
    """One ``GenerateContentResponse`` with one candidate (no ``content`` when no parts)."""
    candidate: dict[str, Any] = {}
    if parts:
        candidate["content"] = {"parts": list(parts), "role": "model"}
    if finish is not None:
        candidate["finishReason"] = finish
    if finish_message is not None:
        candidate["finishMessage"] = finish_message
    if continuation_token is not None:
        candidate["continuationToken"] = b64(continuation_token)
    candidate["index"] = index
    out: dict[str, Any] = {"candidates": [candidate]}
    if usage_metadata is not None:
        out["usageMetadata"] = usage_metadata
    out["modelVersion"] = model_version
    out["responseId"] = response_id
    return out


def blocked(
    reason: str = "PROHIBITED_CONTENT",
    *,
    prompt: int = 9,
    model_version: str = MODEL,
    response_id: str = RESPONSE_ID,
) -> dict[str, Any]:
    """A blocked prompt: ``promptFeedback.blockReason`` and no candidates."""
    return {
        "promptFeedback": {"blockReason": reason},
        "usageMetadata": {
            "promptTokenCount": prompt,
            "totalTokenCount": prompt,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
        },
        "modelVersion": model_version,
        "responseId": response_id,
    }


def stream_events(
    *items: dict[str, Any] | Sequence[dict[str, Any]],
    finish: str | None = "STOP",
    finish_message: str | None = None,
    empty_final: bool = True,
    prompt: int = 9,
    model_version: str = MODEL,
    response_id: str = RESPONSE_ID,
) -> list[dict[str, Any]]:
    """The events of one stream: one event per item (a part, or a list of parts).

    ``usageMetadata`` is cumulative and repeated in every event, as Google sends it
    (text counts one token per four characters, an image :data:`IMAGE_TOKENS`,
    ``thought`` parts go to ``thoughtsTokenCount``). With ``empty_final`` the finish
    reason comes in an extra event whose only part is ``{"text": ""}``, as recorded;
    otherwise it rides on the last event.
    """
    events: list[dict[str, Any]] = []
    text = images = thoughts = 0
    for number, item in enumerate(items):
        parts = [item] if isinstance(item, Mapping) else list(item)
        for part in parts:
            if "inlineData" in part:
                cost = IMAGE_TOKENS
            else:
                cost = max(1, len(part.get("text", "")) // 4) if part.get("text") else 0
            if part.get("thought"):
                thoughts += cost
            elif "inlineData" in part:
                images += 1
            else:
                text += cost
        last = number == len(items) - 1 and not empty_final
        events.append(
            response(
                *parts,
                finish=finish if last else None,
                finish_message=finish_message if last else None,
                usage_metadata=usage(prompt, text, images, thoughts),
                model_version=model_version,
                response_id=response_id,
            )
        )
    if empty_final and finish is not None:
        events.append(
            response(
                text_part(""),
                finish=finish,
                finish_message=finish_message,
                usage_metadata=usage(prompt, text, images, thoughts),
                model_version=model_version,
                response_id=response_id,
            )
        )
    return events


def merge_events(events: Iterable[Any]) -> dict[str, Any]:
    """The whole ``generateContent`` answer of a stream's events.

    Parts of every event go into one candidate in order (consecutive plain text parts
    joined, empty ones dropped); the last ``finishReason``, ``usageMetadata`` and other
    top-level fields win. Non-dict items (raw bytes, malformed lines) and error objects
    are skipped.
    """
    parts: list[dict[str, Any]] = []
    candidate: dict[str, Any] = {}
    out: dict[str, Any] = {}
    for event in events:
        if not isinstance(event, Mapping) or "error" in event:
            continue
        for key, value in event.items():
            if key != "candidates":
                out[key] = value
        for cand in event.get("candidates", [])[:1]:
            for key, value in cand.items():
                if key != "content":
                    candidate[key] = value
            for part in cand.get("content", {}).get("parts", []):
                if set(part) == {"text"}:
                    if not part["text"]:
                        continue
                    if parts and set(parts[-1]) == {"text"}:
                        parts[-1] = {"text": parts[-1]["text"] + part["text"]}
                        continue
                parts.append(dict(part))
    if candidate or parts:
        # Google's field order: content, finishReason, ..., index last.
        whole: dict[str, Any] = {}
        if parts:
            whole["content"] = {"parts": parts, "role": "model"}
        whole.update((key, value) for key, value in candidate.items() if key != "index")
        if "index" in candidate:
            whole["index"] = candidate["index"]
        ordered: dict[str, Any] = {"candidates": [whole]}
        ordered.update((key, value) for key, value in out.items())
        return ordered
    return out


def google_error(
    code: int = 429,
    message: str | None = None,
    *,
    status: str | None = None,
    retry_delay: str | None = None,
    details: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """Google's error envelope; ``retry_delay`` (``"3.5s"``) adds a ``RetryInfo`` detail."""
    error: dict[str, Any] = {
        "code": code,
        "message": message if message is not None else _MESSAGES.get(code, "Error."),
        "status": status if status is not None else STATUSES.get(code, "UNKNOWN"),
    }
    all_details = list(details)
    if retry_delay is not None:
        all_details.append(
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}
        )
    if all_details:
        error["details"] = all_details
    return {"error": error}


def error_lines(error: Mapping[str, Any]) -> bytes:
    """An error object as Google writes it into a stream without ``data: ``: indented lines.

    The SDK gathers such lines by brace counting; it is how an error is known to arrive
    when it is not an SSE event.
    """
    return (json.dumps(error, indent=2) + "\n").encode("utf-8")


def prediction(
    data: bytes, mime: str = "image/png", *, prompt: str | None = None
) -> dict[str, Any]:
    """One Imagen ``:predict`` prediction holding an image (``prompt``: the enhanced prompt)."""
    out: dict[str, Any] = {"bytesBase64Encoded": b64(data), "mimeType": mime}
    if prompt is not None:
        out["prompt"] = prompt
    return out


def filtered(reason: str = "56562880") -> dict[str, Any]:
    """A prediction that Responsible AI filtered: a reason and no bytes."""
    return {"raiFilteredReason": reason}


def predict_body(*predictions: dict[str, Any]) -> dict[str, Any]:
    """A whole ``:predict`` answer."""
    return {"predictions": list(predictions)}


def html_page(status: int = 200) -> str:
    """An HTML page of the kind a proxy or captive portal answers with."""
    return (
        f"<!DOCTYPE html>\n<html lang=en><meta charset=utf-8><title>Error {status}</title>"
        "<p>That's all we know.</p></html>\n"
    )


def camel_keys(obj: Any) -> Any:
    """``obj`` with every dict key in lowerCamelCase, as Google's JSON parser reads names.

    Google accepts a proto field's original snake_case name as well as its JSON name,
    and google-genai relies on it (``thinkingConfig`` goes out as
    ``{"include_thoughts": true}``); compare request bodies through this. Keys of
    user maps (``labels``) are changed too: keep them out of such comparisons.
    """
    if isinstance(obj, Mapping):
        return {_camel(str(key)): camel_keys(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [camel_keys(value) for value in obj]
    return obj


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def vertex_shape(event: Mapping[str, Any], create_time: str) -> dict[str, Any]:
    """An event reshaped as Vertex AI writes it.

    ``role`` comes before ``parts``, a zero ``index`` is omitted (proto3 JSON),
    ``usageMetadata`` gets ``trafficType: ON_DEMAND`` after ``totalTokenCount``, and
    ``createTime`` goes after ``modelVersion``. Error objects are left alone.
    """
    if "error" in event:
        return dict(event)
    out: dict[str, Any] = {}
    for key, value in event.items():
        if key == "candidates":
            value = [_vertex_candidate(candidate) for candidate in value]
        elif key == "usageMetadata" and "trafficType" not in value:
            usage_out: dict[str, Any] = {}
            for name, count in value.items():
                usage_out[name] = count
                if name == "totalTokenCount":
                    usage_out["trafficType"] = "ON_DEMAND"
            value = usage_out
        out[key] = value
        if key == "modelVersion" and "createTime" not in event:
            out["createTime"] = create_time
    return out


def _vertex_candidate(candidate: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in candidate.items():
        if key == "content":
            value = {"role": value.get("role", "model"), "parts": value.get("parts", [])}
        elif key == "index" and value == 0:
            continue
        out[key] = value
    return out


# -- scenarios and records ----------------------------------------------------------


@attrs.define
class Scenario:
    """What the server answers to one request (tests queue them with :meth:`GoogleServer.enqueue`).

    Attributes:
        events: The answer as stream events. A ``dict`` is one JSON event (reshaped on
            Vertex paths unless ``adapt`` is false; ``{"error": {...}}`` makes a mid-stream
            error event); a ``str`` is sent as the data of one event verbatim (a malformed
            line, say); ``bytes`` are written as they are (no framing). ``generateContent``
            answers :func:`merge_events` of the dict events. Empty: the generated answer
            (``raw=b""`` sends a stream with no event at all).
        status: HTTP status. Not 2xx without ``body``: Google's error envelope for it.
        body: A whole answer for any action: a ``dict``/``list`` is sent as JSON (indented
            when ``status`` is an error, as Google does), ``str``/``bytes`` verbatim.
        content_type: Content type of ``body``/``raw`` (default: JSON, or SSE for ``raw``).
        headers: Extra response headers (``Retry-After``, ...).
        raw: A verbatim stream body (a recording), written in pieces like any other.
        separator: What ends each event: ``"\\r\\n\\r\\n"`` (Google) or ``"\\n\\n"``.
        adapt: Reshape dict events for Vertex paths (:func:`vertex_shape`).
        delay: Seconds to wait before the status line is sent.
        reset_after: Abort the connection after this many events.
        reset_at_byte: Abort the connection after this many bytes of the body.
        end_after: End the body cleanly after this many events (no finish reason).
        stall_after: Stop writing after this many events (0: right after the headers).
        stall_seconds: How long the stall lasts before the rest is sent. ``None``: until
            :meth:`GoogleServer.resume`, the client leaving, or ``max_stall`` (then the
            connection is aborted).

    Faults counted in events apply to ``raw`` bodies too (cut after each separator) and
    to whole JSON answers (one event: ``reset_at_byte`` cuts inside it).
    """

    events: list[Any] = attrs.Factory(list)
    status: int = 200
    body: Any = None
    content_type: str | None = None
    headers: Mapping[str, str] = attrs.Factory(dict)
    raw: bytes | None = None
    separator: str = CRLF
    adapt: bool = True
    delay: float = 0.0
    reset_after: int | None = None
    reset_at_byte: int | None = None
    end_after: int | None = None
    stall_after: int | None = None
    stall_seconds: float | None = None


def error_scenario(
    code: int,
    message: str | None = None,
    *,
    status: str | None = None,
    retry_delay: str | None = None,
    retry_after: str | None = None,
    details: Sequence[dict[str, Any]] = (),
) -> Scenario:
    """An HTTP error answer with Google's envelope (``retry_after``: a ``Retry-After`` header)."""
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    body = google_error(code, message, status=status, retry_delay=retry_delay, details=details)
    return Scenario(status=code, body=body, headers=headers)


@attrs.define
class Recorded:
    """One request the server received, and what it did with it.

    Attributes:
        method: HTTP method.
        path: URL path (decoded).
        query: Query parameters (last value of each name).
        query_string: The raw query string.
        headers: Request headers, names lower-cased.
        body: The raw request body.
        json: The parsed JSON body (``None`` if it was not JSON).
        api: ``"gemini"``, ``"vertex"``, ``"express"`` or ``None`` (unknown path).
        version: API version in the path (``v1``, ``v1beta``, ``v1beta1``).
        model: Model name in the path.
        action: ``streamGenerateContent``, ``generateContent`` or ``predict``.
        project: Vertex project in the path.
        location: Vertex location in the path.
        status: HTTP status answered.
        sent: The JSON objects sent (stream events, or the whole answer).
        pieces: Sizes of the writes the body was sent in.
        completed: The whole body was written and ended.
        client_closed: The client left before the answer was complete.
    """

    method: str
    path: str
    query: dict[str, str]
    query_string: str
    headers: dict[str, str]
    body: bytes
    json: Any = None
    api: str | None = None
    version: str | None = None
    model: str | None = None
    action: str | None = None
    project: str | None = None
    location: str | None = None
    status: int = 0
    sent: list[Any] = attrs.Factory(list)
    pieces: list[int] = attrs.Factory(list)
    completed: bool = False
    client_closed: bool = False

    @property
    def streaming(self) -> bool:
        """Whether this was a ``streamGenerateContent`` call with ``alt=sse``."""
        return self.action == "streamGenerateContent" and self.query.get("alt") == "sse"


# -- the server ---------------------------------------------------------------------


class GoogleServer:
    """The fake Gemini API / Vertex AI server. :meth:`start` it; :meth:`stop` it.

    Args:
        key: The API key accepted (Gemini API and express mode).
        token: The OAuth2 access token accepted (Vertex AI).
        seed: Seed of the piece sizes.
        max_piece: Largest piece written at once.
        max_stall: Longest open-ended stall, in seconds, before the server gives up.
    """

    def __init__(
        self,
        key: str = KEY,
        token: str = TOKEN,
        *,
        seed: int = 1234,
        max_piece: int = 64 * 1024,
        max_stall: float = 30.0,
    ) -> None:
        self.key = key
        self.token = token
        self.rng = random.Random(seed)
        self.max_piece = max_piece
        self.max_stall = max_stall
        self.scenarios: deque[Scenario] = deque()
        self.requests: list[Recorded] = []
        self.text_chunks = ["Here is", " the picture", " you asked for."]
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._resume = asyncio.Event()
        self._client_left = asyncio.Event()

    # -- lifecycle and scripting -----------------------------------------------

    def app(self) -> web.Application:
        """The aiohttp application (one catch-all route; the handler parses the path)."""
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def start(self) -> str:
        """Bind 127.0.0.1 on a free port; return the origin (``http://127.0.0.1:PORT``)."""
        # Handler cancellation tells a stalled handler that its client left.
        self._runner = web.AppRunner(
            self.app(), access_log=None, shutdown_timeout=0.5, handler_cancellation=True
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        """Close every connection and the listening socket."""
        self.resume()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def enqueue(self, *scenarios: Scenario) -> None:
        """Queue what the next requests get, one scenario per request (auth failures excepted)."""
        self.scenarios.extend(scenarios)

    def stream(self, *events: Any, **options: Any) -> Scenario:
        """Queue and return ``Scenario(events=list(events), **options)``."""
        scenario = Scenario(events=list(events), **options)
        self.enqueue(scenario)
        return scenario

    def fail_times(self, times: int, code: int = 500, **error: Any) -> None:
        """Queue ``times`` error answers (:func:`error_scenario`); later requests go on as usual."""
        self.enqueue(*(error_scenario(code, **error) for _ in range(times)))

    def resume(self) -> None:
        """End every open-ended stall now: stalled answers send the rest of their body."""
        self._resume.set()
        self._resume = asyncio.Event()

    @property
    def last(self) -> Recorded:
        """The last request received."""
        return self.requests[-1]

    @property
    def closed_early(self) -> list[Recorded]:
        """The requests whose client left before the answer was complete."""
        return [record for record in self.requests if record.client_closed]

    async def wait_closed(self, seconds: float = 5.0) -> Recorded:
        """Wait until some client has left early; return that request (``TimeoutError`` if none)."""
        async with asyncio.timeout(seconds):
            await self._client_left.wait()
        return self.closed_early[-1]

    @property
    def open_connections(self) -> int:
        """Connections currently open on the server side."""
        server = self._runner.server if self._runner is not None else None
        return len(server.connections) if server is not None else 0

    # -- requests ------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        record = Recorded(
            method=request.method,
            path=request.path,
            query={name: request.query.getall(name)[-1] for name in request.query},
            query_string=request.query_string,
            headers={name.lower(): value for name, value in request.headers.items()},
            body=body,
        )
        self.requests.append(record)
        problem = self._route(request, record) or self._check_auth(record)
        if problem is not None:
            return await self._answer(request, record, problem)
        try:
            record.json = json.loads(body) if body else None
        except ValueError:
            return await self._answer(
                request,
                record,
                error_scenario(
                    400, 'Invalid JSON payload received. Unexpected token.\n{"contents": [\n'
                ),
            )
        scenario = self.scenarios.popleft() if self.scenarios else Scenario()
        return await self._answer(request, record, scenario)

    def _route(self, request: web.Request, record: Recorded) -> Scenario | None:
        for api, pattern in (
            ("gemini", _GEMINI_PATH),
            ("vertex", _VERTEX_PATH),
            ("express", _EXPRESS_PATH),
        ):
            match = pattern.match(request.path)
            if match is not None:
                found = match.groupdict()
                record.api = api
                record.version = found["version"]
                record.model = found["model"]
                record.action = found["action"]
                record.project = found.get("project")
                record.location = found.get("location")
                break
        if record.api is None or record.action not in _ACTIONS:
            return error_scenario(
                404, f"The requested URL {request.path} was not found on this server."
            )
        if request.method != "POST":
            return error_scenario(405, "Method not allowed.", status="INVALID_ARGUMENT")
        return None

    def _check_auth(self, record: Recorded) -> Scenario | None:
        if "key" in record.query:
            return error_scenario(
                400, "Test server: the API key must be sent in x-goog-api-key, not in the URL."
            )
        if record.api == "vertex":
            if record.headers.get("authorization") != f"Bearer {self.token}":
                return error_scenario(401)
            return None
        given = record.headers.get("x-goog-api-key")
        if given is None:
            return error_scenario(
                403,
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API.",
            )
        if given != self.key:
            return error_scenario(
                400,
                "API key not valid. Please pass a valid API key.",
                details=[
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"},
                    }
                ],
            )
        return None

    # -- answers -------------------------------------------------------------------

    async def _answer(
        self, request: web.Request, record: Recorded, scenario: Scenario
    ) -> web.StreamResponse:
        if scenario.delay:
            await asyncio.sleep(scenario.delay)
        record.status = scenario.status
        headers: dict[str, str] = {"Vary": "Origin, X-Origin, Referer", **scenario.headers}
        if scenario.body is not None or scenario.status >= 300:
            body = scenario.body
            if body is None:
                body = google_error(scenario.status)
            if isinstance(body, (dict, list)):
                record.sent = [body]
                indent = 2 if scenario.status >= 300 else None
                data = json.dumps(body, indent=indent, ensure_ascii=False).encode("utf-8")
                headers.setdefault("Content-Type", scenario.content_type or JSON_TYPE)
            else:
                data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
                headers.setdefault("Content-Type", scenario.content_type or JSON_TYPE)
            return await self._send(request, record, scenario, headers, [data])
        if scenario.raw is not None:
            headers.setdefault("Content-Type", scenario.content_type or SSE_TYPE)
            headers.setdefault("Content-Disposition", "attachment")
            return await self._send(request, record, scenario, headers, _split_events(scenario.raw))
        if record.action == "predict":
            answer = self._predict(record.json)
            record.sent = [answer]
            headers["Content-Type"] = JSON_TYPE
            return await self._send(request, record, scenario, headers, [dumps(answer).encode()])
        events = scenario.events or self._generated(record.json)
        if record.action == "generateContent":
            events = [merge_events(events)]
        if record.api != "gemini" and scenario.adapt:
            create_time = _now()
            events = [
                vertex_shape(event, create_time) if isinstance(event, Mapping) else event
                for event in events
            ]
        if record.action == "generateContent":
            answer = events[0]
            record.sent = [answer]
            headers["Content-Type"] = JSON_TYPE
            return await self._send(request, record, scenario, headers, [dumps(answer).encode()])
        record.sent = [event for event in events if isinstance(event, Mapping)]
        if record.query.get("alt") != "sse":
            # Without alt=sse Google streams one JSON array, indented, elements split by ",\r\n".
            whole = ",\r\n".join(json.dumps(event, indent=2) for event in record.sent)
            headers["Content-Type"] = JSON_TYPE
            return await self._send(request, record, scenario, headers, [f"[{whole}]".encode()])
        headers["Content-Type"] = SSE_TYPE
        headers["Content-Disposition"] = "attachment"
        segments = [_frame(event, scenario.separator) for event in events]
        return await self._send(request, record, scenario, headers, segments)

    def _generated(self, body: Any) -> list[dict[str, Any]]:
        """The default stream: text chunks, one image in the requested format, then STOP."""
        config = camel_keys(body or {}).get("generationConfig") or {}
        modalities = config.get("responseModalities") or ["TEXT", "IMAGE"]
        image_config = config.get("imageConfig") or {}
        mime = (
            (image_config.get("imageOutputOptions") or {}).get("mimeType")
            or image_config.get("outputMimeType")
            or "image/png"
        )
        items: list[dict[str, Any]] = []
        if (config.get("thinkingConfig") or {}).get("includeThoughts"):
            items.append(text_part("**Composing**\n\nLaying out the scene.", thought=True))
            items.append(image_part(make_image("image/png", 5), thought=True))
        if "TEXT" in modalities:
            items += [text_part(chunk) for chunk in self.text_chunks]
        if "IMAGE" in modalities:
            items.append(image_part(make_image(mime if mime in _FORMATS else "image/png", 1), mime))
        return stream_events(*items)

    def _predict(self, body: Any) -> dict[str, Any]:
        """The default Imagen answer: ``sampleCount`` images in the requested format."""
        parameters = camel_keys(body or {}).get("parameters") or {}
        count = int(parameters.get("sampleCount") or 1)
        mime = (parameters.get("outputOptions") or {}).get("mimeType") or "image/png"
        return predict_body(*(prediction(make_image(mime, 10 + n), mime) for n in range(count)))

    # -- writing -------------------------------------------------------------------

    async def _send(
        self,
        request: web.Request,
        record: Recorded,
        scenario: Scenario,
        headers: dict[str, str],
        segments: list[bytes],
    ) -> web.StreamResponse:
        """Write ``segments`` (events, or one whole body) with the scenario's faults."""
        body = b"".join(segments)
        cut: int | None = None
        fault: str | None = None
        for name, count in (
            ("reset", scenario.reset_after),
            ("end", scenario.end_after),
            ("stall", scenario.stall_after),
        ):
            if count is not None:
                cut, fault = sum(len(segment) for segment in segments[:count]), name
                break
        if scenario.reset_at_byte is not None:
            cut, fault = scenario.reset_at_byte, "reset"
        answer = web.StreamResponse(status=scenario.status)
        answer.headers.update(headers)
        await answer.prepare(request)
        try:
            await self._write(answer, record, body if cut is None else body[:cut])
            if fault == "reset":
                await self._abort(request)
                return answer
            if fault == "end":
                await answer.write_eof()
                record.completed = True
                return answer
            if fault == "stall":
                if not await self._stall(scenario.stall_seconds):
                    await self._abort(request)
                    return answer
                await self._write(answer, record, body[cut:])
            await answer.write_eof()
            record.completed = True
        except (ConnectionError, asyncio.CancelledError):
            record.client_closed = True
            self._client_left.set()
            raise
        return answer

    async def _stall(self, seconds: float | None) -> bool:
        """Wait; return whether to go on (false: an open-ended stall reached ``max_stall``)."""
        try:
            async with asyncio.timeout(seconds if seconds is not None else self.max_stall):
                await self._resume.wait()
        except TimeoutError:
            return seconds is not None
        return True

    async def _abort(self, request: web.Request) -> None:
        """Drop the connection once what was written has left (a reset, not a clean end)."""
        transport = request.transport
        if transport is None:
            return
        async with asyncio.timeout(2):
            # The transport has no "drained" event to wait on: poll its buffer.
            while transport.get_write_buffer_size() > 0 and not transport.is_closing():  # noqa: ASYNC110
                await asyncio.sleep(0.001)
        transport.abort()

    async def _write(self, answer: web.StreamResponse, record: Recorded, data: bytes) -> None:
        """Write ``data`` in seeded random pieces: a quarter of 1-16 bytes, a quarter up to 512."""
        view = memoryview(data)
        position = 0
        while position < len(view):
            draw = self.rng.random()
            if draw < 0.25:
                size = self.rng.randint(1, 16)
            elif draw < 0.5:
                size = self.rng.randint(1, min(512, self.max_piece))
            else:
                size = self.rng.randint(1, self.max_piece)
            piece = view[position : position + size].tobytes()
            await answer.write(piece)
            record.pieces.append(len(piece))
            position += size


def _frame(event: Any, separator: str) -> bytes:
    if isinstance(event, bytes):
        return event
    data = event if isinstance(event, str) else dumps(event)
    return f"data: {data}{separator}".encode()


def _split_events(raw: bytes) -> list[bytes]:
    """A verbatim stream body cut after each event separator (for counted faults)."""
    parts = re.split(rb"(?<=\r\n\r\n)|(?<=\n\n)", raw)
    return [part for part in parts if part]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
