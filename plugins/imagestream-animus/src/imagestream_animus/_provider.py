"""``AnimusProvider``: Animus image generation through either of its two endpoints.

The model picks the endpoint:

``generation`` (the default)
    ``POST /generation/create`` answers with a ``generation_id``; ``GET
    /generation/status/{id}`` is polled (every ``poll_interval`` seconds at
    first, then 1.5 times longer each poll up to ``max_poll_interval``) and
    each change of its ``progress`` (0-100) or ``status`` is a
    :class:`~imagestream.Progress` chunk. When the status says it is done,
    each of its ``result_urls`` is downloaded into an
    :class:`~imagestream.ImageFinal`. Progress without pictures: Animus sends
    no previews.

``generate-image``
    ``POST /generate/image`` with ``{prompt}`` (or ``{prompt, input_image}``)
    answers, once the image is made, with ``{"output": ["https://…png"]}``:
    no progress, one download. This is the endpoint animus-client calls.

Polling stops as soon as the run is closed or cancelled: the wait between
two polls is the only place it can be, and nothing is sent after it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

import attrs

from imagestream import (
    APITimeoutError,
    Chunk,
    ConfigurationError,
    ImageFinal,
    Progress,
    Provider,
    RetryPolicy,
    UnexpectedResponseError,
    Usage,
    ValidationError,
)
from imagestream.provider import Options, Prepared, read_choice, read_integer, redact

from ._api import AnimusAPI
from ._auth import DEFAULT_AUTH, AnimusAuth, Credentials
from ._config import DEFAULT_API_VERSION, KEY_ENV, PROVIDER, api_base, auth_url_for
from ._download import DEFAULT_MAX_IMAGE_BYTES, download_image
from ._errors import failed_generation, message_of, scrub
from ._meta import DEFAULT_MODEL, DESCRIPTION, GENERATE_IMAGE, GENERATION, MODELS

if TYPE_CHECKING:
    from imagestream import ImageRequest, RunContext
    from imagestream.provider import OptionSpec

__all__ = [
    "CREATE_RETRY",
    "DONE_STATES",
    "FAILED_STATES",
    "OPTIONS",
    "AnimusProvider",
    "Settings",
    "read_status",
]

CREATE_RETRY: Final = RetryPolicy(statuses=frozenset({408, 429, 502, 503, 504}))
"""Retried before a generation is accepted: not 500 nor 409, after which it may have run (and cost credits)."""

DONE_STATES: Final = frozenset(
    {"completed", "complete", "succeeded", "success", "successful", "done", "finished", "ready"}
)
"""``status`` values that mean the results are there (the documentation lists none: these are the usual words)."""

FAILED_STATES: Final = frozenset(
    {
        "failed",
        "failure",
        "error",
        "errored",
        "cancelled",
        "canceled",
        "rejected",
        "expired",
        "timeout",
        "timed_out",
    }
)
"""``status`` values that mean it will never finish."""

_GENERATION_OPTIONS: Final[Mapping[str, OptionSpec]] = {
    "guidance_scale": {
        "type": "number",
        "description": "how closely to follow the prompt (generation)",
        "min": 0,
        "max": 50,
    },
    "strength": {
        "type": "number",
        "description": "blend weight of an image edit, 0-1 (generation)",
        "min": 0,
        "max": 1,
    },
    "character_id": {"type": "text", "description": "a character for a LoRA render (generation)"},
    "use_face_lora": {
        "type": "flag",
        "description": "apply the character's face LoRA (generation)",
    },
    "use_body_lora": {
        "type": "flag",
        "description": "apply the character's body LoRA (generation)",
    },
    "face_swap": {"type": "flag", "description": "the face-swap pass (generation)"},
    "source_image_url": {"type": "text", "description": "a public image URL to edit (generation)"},
    "group_id": {
        "type": "text",
        "description": "attach the result to this media group (generation)",
    },
    "group_title": {"type": "text", "description": "title of a new media group (generation)"},
    "generation_type": {
        "type": "text",
        "description": "override the inferred generation type (generation)",
    },
}

OPTIONS: Final[Mapping[str, OptionSpec]] = {
    "api_version": {
        "type": "text",
        "description": "API version when base_url is not given",
        "default": DEFAULT_API_VERSION,
    },
    "auth_url": {
        "type": "text",
        "description": "where the key is exchanged (default: /auth/generate-token at the API's host)",
    },
    "token": {
        "type": "text",
        "description": f"a bearer token sent as it is, instead of exchanging {KEY_ENV}",
    },
    "poll_interval": {
        "type": "number",
        "description": "seconds before the first status poll",
        "default": 1.0,
        "min": 0.01,
        "max": 60,
    },
    "max_poll_interval": {
        "type": "number",
        "description": "longest wait between two polls",
        "default": 5.0,
        "min": 0.01,
        "max": 300,
    },
    "poll_timeout": {
        "type": "number",
        "description": "give up polling after this many seconds",
        "default": 600.0,
        "min": 0.01,
        "max": 86400,
    },
    "max_image_bytes": {
        "type": "integer",
        "description": "largest image downloaded",
        "default": DEFAULT_MAX_IMAGE_BYTES,
        "min": 1,
    },
    "input_image": {"type": "text", "description": "a public image URL to modify (generate-image)"},
    **_GENERATION_OPTIONS,
}
"""The options (``-o NAME VALUE``) the provider takes."""

_FLAGS: Final = ("use_face_lora", "use_body_lora", "face_swap")
_TEXTS: Final = ("character_id", "group_id", "group_title", "generation_type")
MAX_SIDE: Final = 4096
MAX_IMAGES: Final = 8


@attrs.frozen(repr=False)
class Settings:
    """What :meth:`AnimusProvider.validate` read, for :meth:`~AnimusProvider.stream`."""

    endpoint: str
    body: Mapping[str, Any]
    base: str
    credentials: Credentials
    poll_interval: float
    max_poll_interval: float
    poll_timeout: float
    max_image_bytes: int
    seed: int | None = None

    def __repr__(self) -> str:
        return f"Settings({self.endpoint!r}, base={self.base!r}, {self.credentials!r})"


def _url_option(options: Options, name: str) -> str | None:
    value = options.text(name)
    if value is not None and not value.lower().startswith(("http://", "https://")):
        raise options.unreadable(
            f"{name} must be a public http(s) URL (Animus fetches it), not {value!r}",
            hint="upload the image somewhere Animus can reach, and pass its URL",
        )
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if number == number else None  # NaN is no number


def read_status(data: Any) -> tuple[str, float | None, str | None, str | None, list[str]]:
    """``(state, fraction, status, error, urls)`` of a ``/generation/status`` answer.

    ``state`` is ``"done"``, ``"failed"`` or ``"running"``; ``fraction`` is
    ``progress`` (0-100) as 0-1, clamped, or ``None`` when absent.
    """
    if not isinstance(data, Mapping):
        raise UnexpectedResponseError(
            f"the generation's status is {type(data).__name__}, not an object", provider=PROVIDER
        )
    raw = data.get("status")
    status = str(raw).strip() if raw is not None else None
    progress = _number(data.get("progress"))
    fraction = None if progress is None else min(1.0, max(0.0, progress / 100))
    raw_urls = data.get("result_urls")
    if isinstance(raw_urls, str):
        raw_urls = [raw_urls]
    urls = (
        [url for url in raw_urls if isinstance(url, str) and url.strip()]
        if isinstance(raw_urls, list)
        else []
    )
    # An error object ({"message": ...}, FastAPI's {"detail": ...}) says it as well as a string.
    error = message_of(data.get("error"))
    error_text = error if error and error.strip() else None
    lowered = (status or "").lower()
    if lowered in DONE_STATES:
        state = "done"
    elif lowered in FAILED_STATES or (error_text and not urls):
        state = "failed"
    elif not lowered and urls and (fraction is None or fraction >= 1.0):
        state = "done"
    else:
        state = "running"
    return state, fraction, status, error_text, urls


def _generation_ids(data: Any) -> list[str]:
    if not isinstance(data, Mapping):
        return []
    single = data.get("generation_id")
    if isinstance(single, str | int) and not isinstance(single, bool) and str(single):
        return [str(single)]
    # num_images > 1 is "submitted as a batch": the batch endpoint's answer
    # lists one generation per image.
    results = data.get("results")
    if isinstance(results, list):
        return [
            str(item["generation_id"])
            for item in results
            if isinstance(item, Mapping) and item.get("generation_id") and not item.get("error")
        ]
    return []


def _output_urls(data: Any) -> list[str]:
    if not isinstance(data, Mapping):
        return []
    for name in ("output", "outputs", "result_urls"):
        value = data.get(name)
        if isinstance(value, str) and value.strip():
            return [value]
        if isinstance(value, list):
            urls = [url for url in value if isinstance(url, str) and url.strip()]
            if urls:
                return urls
    return []


def _usage(data: Any) -> Usage | None:
    if not isinstance(data, Mapping):
        return None
    raw = {
        name: data[name]
        for name in ("credits_deducted", "remaining_balance")
        if data.get(name) is not None
    }
    return Usage(raw=raw) if raw else None


class AnimusProvider(Provider):
    """Animus image generation: progress polled from ``/generation``, or one ``/generate/image`` call.

    Args:
        auth: The token cache (default: the one the Animus chat model shares).
        retry: The retry policy of the request that starts a generation
            (default :data:`CREATE_RETRY`); polls and downloads use the HTTP client's.
    """

    name = PROVIDER
    description = DESCRIPTION
    models = MODELS
    default_model = DEFAULT_MODEL
    options = OPTIONS
    key_env = KEY_ENV

    def __init__(self, *, auth: AnimusAuth | None = None, retry: RetryPolicy | None = None) -> None:
        self.auth = auth or DEFAULT_AUTH
        self.retry = retry or CREATE_RETRY

    # -- before anything is sent ---------------------------------------------

    def validate(self, request: ImageRequest) -> Prepared:
        """Refuse what the endpoint would refuse; resolve the server and the credentials."""
        options = Options(request.options, provider=PROVIDER, known=OPTIONS)
        endpoint = read_choice(
            request.model or GENERATION, "model", (GENERATION, GENERATE_IMAGE), provider=PROVIDER
        )
        if request.output_format:
            raise ConfigurationError(
                f"{PROVIDER}: the server picks the image format; output_format cannot be chosen",
                hint="leave --format out; 'imagestream generate --output x.webp' converts afterwards",
            )
        if request.partial_images:
            raise ValidationError(
                f"{PROVIDER}: Animus sends no partial images (it reports progress instead)"
            )
        if request.quality:
            raise ValidationError(f"{PROVIDER}: Animus takes no quality setting")
        if endpoint == GENERATION:
            body, seed = self._generation_body(request, options)
        else:
            body, seed = self._generate_image_body(request, options), None
        base = api_base(request.base_url, options.text("api_version"))
        credentials = Credentials.resolve(
            auth_url=auth_url_for(base, _url_option(options, "auth_url")),
            key=request.api_key,
            token=options.text("token"),
        )
        interval = options.number("poll_interval", 1.0, low=0.01, high=60)
        settings = Settings(
            endpoint=endpoint,
            body=body,
            base=base,
            credentials=credentials,
            poll_interval=interval,
            max_poll_interval=max(
                interval, options.number("max_poll_interval", 5.0, low=0.01, high=300)
            ),
            poll_timeout=options.number("poll_timeout", 600.0, low=0.01, high=86400),
            max_image_bytes=options.integer("max_image_bytes", DEFAULT_MAX_IMAGE_BYTES, low=1),
            seed=seed,
        )
        return Prepared(attrs.evolve(request, model=endpoint), settings)

    def _generation_body(
        self, request: ImageRequest, options: Options
    ) -> tuple[dict[str, Any], int | None]:
        body: dict[str, Any] = {"prompt": request.prompt}
        if request.negative_prompt:
            body["negative_prompt"] = request.negative_prompt
        seed = None
        if request.seed is not None:
            seed = body["seed"] = read_integer(
                request.seed, "seed", provider=PROVIDER, low=0, high=2**32 - 1
            )
        if request.steps is not None:
            body["num_inference_steps"] = read_integer(
                request.steps, "steps", provider=PROVIDER, low=1, high=150
            )
        if (dimensions := request.dimensions) is not None:
            body["width"] = read_integer(
                dimensions[0], "width", provider=PROVIDER, low=64, high=MAX_SIDE
            )
            body["height"] = read_integer(
                dimensions[1], "height", provider=PROVIDER, low=64, high=MAX_SIDE
            )
        n = read_integer(request.n, "n", provider=PROVIDER, low=1, high=MAX_IMAGES)
        if n > 1:
            body["num_images"] = n
        if (guidance := options.number("guidance_scale", low=0, high=50)) is not None:
            body["guidance_scale"] = guidance
        if (strength := options.number("strength", low=0, high=1)) is not None:
            body["strength"] = strength
        for name in _FLAGS:
            if (flag := options.flag(name)) is not None:
                body[name] = flag
        for name in _TEXTS:
            if (text := options.text(name)) is not None:
                body[name] = text
        if (source := _url_option(options, "source_image_url")) is not None:
            body["source_image_url"] = source
        if options.raw("input_image") is not None:
            raise options.refuse(
                "input_image is the generate-image endpoint's; the generation endpoint takes source_image_url",
                hint="-o source_image_url URL, or -m generate-image",
            )
        return body, seed

    def _generate_image_body(self, request: ImageRequest, options: Options) -> dict[str, Any]:
        unsupported = [
            name
            for name, given in (
                ("n", request.n != 1),
                ("size", request.size is not None and request.size.strip().lower() != "auto"),
                ("steps", request.steps is not None),
                ("seed", request.seed is not None),
                ("negative_prompt", bool(request.negative_prompt)),
                *((name, options.raw(name) is not None) for name in _GENERATION_OPTIONS),
            )
            if given
        ]
        if unsupported:
            raise ValidationError(
                f"{PROVIDER}: the generate-image endpoint takes only a prompt (and input_image), "
                f"not {', '.join(unsupported)}",
                hint="use the generation endpoint (the default model) for these",
            )
        body: dict[str, Any] = {"prompt": request.prompt}
        if (image := _url_option(options, "input_image")) is not None:
            body["input_image"] = image
        return body

    # -- streaming --------------------------------------------------------------

    async def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Chunk]:
        """Progress while Animus works (generation endpoint), then each image."""
        settings = context.prepared_as(Settings) or self.validate(request).settings
        api = AnimusAPI(
            context.http,
            settings.credentials,
            base=settings.base,
            auth=self.auth,
            stall_timeout=request.timeout,
        )
        context.logger.debug("animus: %s at %s", settings.endpoint, redact(settings.base))
        chunks = (
            self._generation(api, settings)
            if settings.endpoint == GENERATION
            else self._generate_image(api, settings)
        )
        async for chunk in chunks:
            yield chunk

    async def _generate_image(self, api: AnimusAPI, settings: Settings) -> AsyncIterator[Chunk]:
        yield Progress(message="generating", extra={"endpoint": GENERATE_IMAGE})
        data = await api.json(
            "POST",
            "/generate/image",
            what="the image's answer",
            json_body=dict(settings.body),
            retry=self.retry,
        )
        urls = _output_urls(data)
        if not urls:
            fields = sorted(data) if isinstance(data, Mapping) else type(data).__name__
            raise UnexpectedResponseError(
                f"/generate/image answered without an image URL (fields: {fields})",
                provider=PROVIDER,
            )
        for sample, url in enumerate(urls):
            yield await self._final(api, url, sample, settings)

    async def _generation(self, api: AnimusAPI, settings: Settings) -> AsyncIterator[Chunk]:
        import asyncio

        created = await api.json(
            "POST",
            "/generation/create",
            what="the generation's creation answer",
            json_body=dict(settings.body),
            retry=self.retry,
        )
        ids = _generation_ids(created)
        if not ids:
            fields = sorted(created) if isinstance(created, Mapping) else type(created).__name__
            raise UnexpectedResponseError(
                f"/generation/create answered without a generation_id (fields: {fields})",
                provider=PROVIDER,
            )
        usage = _usage(created)
        # The last (progress, status) told per generation: only changes become chunks.
        seen: dict[str, tuple[float | None, str | None]] = {}
        first = created.get("status") if isinstance(created, Mapping) else None
        estimate = created.get("estimated_time") if isinstance(created, Mapping) else None
        for sample, generation_id in enumerate(ids):
            extra: dict[str, Any] = {"generation_id": generation_id}
            if _number(estimate) is not None:
                extra["estimated_time"] = estimate
            seen[generation_id] = (0.0, str(first or "submitted"))
            yield Progress(
                fraction=0.0, message=str(first or "submitted"), sample=sample, extra=extra
            )

        loop = asyncio.get_running_loop()
        give_up = loop.time() + settings.poll_timeout
        interval = settings.poll_interval
        pending: dict[int, str] = dict(enumerate(ids))
        next_sample = len(ids)
        while pending:
            remaining = give_up - loop.time()
            if remaining <= 0:
                raise APITimeoutError(
                    f"generation {', '.join(pending.values())} not finished after {settings.poll_timeout:g}s of polling",
                    provider=PROVIDER,
                    hint="pass -o poll_timeout SECONDS to wait longer",
                )
            # Cancellation and closing land here (or in a request): nothing is polled after.
            await asyncio.sleep(min(interval, remaining))
            interval = min(interval * 1.5, settings.max_poll_interval)
            for sample, generation_id in list(pending.items()):
                status = await api.json(
                    "GET",
                    f"/generation/status/{quote(generation_id, safe='')}",
                    what="the generation's status",
                )
                state, fraction, said, error, urls = read_status(status)
                if seen.get(generation_id) != (fraction, said):
                    seen[generation_id] = (fraction, said)
                    yield Progress(
                        fraction=fraction,
                        message=said,
                        sample=sample,
                        extra={"generation_id": generation_id},
                    )
                if state == "failed":
                    raise failed_generation(error or said, generation_id, api.secrets)
                if state != "done":
                    continue
                if not urls:
                    raise UnexpectedResponseError(
                        f"generation {generation_id} is {said or 'done'} but has no result_urls",
                        provider=PROVIDER,
                    )
                del pending[sample]
                for number, url in enumerate(urls):
                    # More images than generations: the extra ones get the next free numbers.
                    index = sample
                    if number:
                        index, next_sample = next_sample, next_sample + 1
                    yield await self._final(api, url, index, settings, generation_id=generation_id)
        if usage is not None:
            yield usage

    async def _final(
        self,
        api: AnimusAPI,
        url: str,
        sample: int,
        settings: Settings,
        *,
        generation_id: str | None = None,
    ) -> ImageFinal:
        image = await download_image(api, url, limit=settings.max_image_bytes)
        size = image.size
        extra: dict[str, Any] = {"url": scrub(url, api.secrets)}
        if generation_id is not None:
            extra["generation_id"] = generation_id
        return ImageFinal(
            image,
            sample=sample,
            mime_type=image.mime_type,
            width=size[0] if size else None,
            height=size[1] if size else None,
            seed=settings.seed,
            extra=extra,
        )
