"""``A1111Provider``: the AUTOMATIC1111 web UI (and Forge), its previews polled while it works.

A run:

1. reads ``GET /sdapi/v1/progress`` once, to know the job the server is
   running already, if any (someone else's), and that the server answers;
2. names the checkpoint, when one is asked for, by its title from
   ``GET /sdapi/v1/sd-models`` (a name the server does not have is refused
   here: the server itself would quietly load another one);
3. sends ``POST /sdapi/v1/txt2img`` (``img2img`` with an input image), which
   answers only when the images are done, and meanwhile polls
   ``GET /sdapi/v1/progress?skip_current_image=false`` every
   ``poll_interval`` seconds: a new ``current_image`` becomes an
   :class:`~imagestream.ImagePreview`, else the step count a
   :class:`~imagestream.Progress`;
4. turns the answer's images into :class:`~imagestream.ImageFinal` s, each with
   the seed the answer's ``info`` gives it (the grid the server puts first for
   a batch is left out).

A run left early sends ``POST /sdapi/v1/interrupt`` if its job is the one
running. The server runs one job at a time and its progress is the running
job's, so runs against one server wait their turn in the pipeline
(``max_concurrency = 1``).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import attrs

from imagestream import (
    APIConnectionError,
    APITimeoutError,
    Chunk,
    ImageData,
    ImageFinal,
    ModelInfo,
    Provider,
    ProviderError,
    RetryPolicy,
    Secret,
    StreamDecodeError,
    UnexpectedResponseError,
)
from imagestream.provider import (
    JSON_TYPES,
    ErrorParser,
    InputImage,
    Options,
    Prepared,
    check_content_type,
    find_key,
    load_input_image,
    read_choice,
    read_integer,
    read_json,
)

from ._errors import PROVIDER, checkpoint_missing, error_parser, unreachable
from ._meta import DESCRIPTION, MAX_CONCURRENCY, NAME
from ._progress import ProgressTracker, job_of
from ._server import (
    AUTH_ENV,
    Checkpoint,
    basic_auth,
    checkpoints_from,
    endpoint,
    remember_checkpoints,
    resolve_base_url,
    server_models,
)

if TYPE_CHECKING:
    from imagestream import ImageRequest, RunContext

__all__ = ["OPTIONS", "A1111Provider", "Settings"]

DEFAULT_SIZE = (512, 512)
DEFAULT_STEPS = 20
NO_RETRY = RetryPolicy(max_retries=0)
POLL_TIMEOUT = 10.0
"""Seconds one progress request may take."""
GENERATION_TIMEOUT = 24 * 3600.0
"""The generation request answers only at the end: its liveness is the polling's."""
INTERRUPT_TIMEOUT = 5.0
MAX_ANSWER_BYTES = 512 * 2**20
"""The largest generation answer read (base64 images, a batch of them)."""

# Body fields the request itself sets: ``params`` may not override them.
OWN_FIELDS = frozenset(
    {
        "prompt",
        "negative_prompt",
        "steps",
        "width",
        "height",
        "cfg_scale",
        "seed",
        "batch_size",
        "n_iter",
        "sampler_name",
        "scheduler",
        "init_images",
        "mask",
        "denoising_strength",
        "override_settings",
        "send_images",
    }
)


OPTIONS: Mapping[str, Any] = {
    "negative_prompt": {"type": "text", "description": "what not to draw (the same as negative_prompt=)"},
    "cfg_scale": {"type": "number", "default": 7.0, "min": 0.0, "max": 100.0, "description": "guidance scale"},
    "sampler": {"type": "text", "description": "sampler name (Euler a, DPM++ 2M, ...; default: the server's)"},
    "scheduler": {"type": "text", "description": "scheduler (Automatic, Karras, ...; newer servers)"},
    "n_iter": {"type": "integer", "default": 1, "min": 1, "max": 100, "description": "batches in a row (n is the batch size)"},
    "image": {"type": "input", "description": "a picture to start from: img2img"},
    "mask": {"type": "input", "description": "inpainting mask for img2img (white: redrawn)"},
    "denoising_strength": {"type": "number", "default": 0.75, "min": 0.0, "max": 1.0, "description": "img2img: how much is redrawn"},
    "override_settings": {"type": "mapping", "description": "server settings for this run only (CLIP_stop_at_last_layers, ...)"},
    "params": {"type": "mapping", "description": "more fields of the request body, sent as given (enable_hr, hr_scale, ...)"},
    "poll_interval": {"type": "number", "default": 0.5, "min": 0.01, "max": 10.0, "description": "seconds between two progress requests"},
    "previews": {"type": "flag", "default": True, "description": "ask for the current picture at each poll"},
}  # fmt: skip
"""What ``-o`` takes (``imagestream models -p a1111 --options``)."""


@attrs.frozen
class Settings:
    """A request as :meth:`A1111Provider.validate` read it.

    Attributes:
        base_url: The server.
        credentials: ``user:password`` for ``--api-auth``, if any.
        mode: ``"txt2img"`` or ``"img2img"``.
        body: The request body, but for the checkpoint.
        checkpoint: The checkpoint asked for, if any.
        poll_interval: Seconds between two progress requests.
        previews: Whether to ask for the current picture.
        steps: The step count asked for.
        batch_size: Images per job.
    """

    base_url: str
    credentials: Secret | None
    mode: str
    body: Mapping[str, Any]
    checkpoint: str | None
    poll_interval: float
    previews: bool
    steps: int
    batch_size: int


class A1111Provider(Provider):
    """The AUTOMATIC1111 Stable Diffusion web UI, or Forge, started with ``--api``."""

    name = NAME
    description = DESCRIPTION
    # One job at a time on the server, and its progress is the running job's:
    # runs against one server (and one login) take turns.
    max_concurrency = MAX_CONCURRENCY
    options: ClassVar[Mapping[str, Any]] = OPTIONS

    # -- what the server has -------------------------------------------------

    @property
    def models(self) -> Sequence[ModelInfo]:  # type: ignore[override]
        """The server's checkpoints, when it answers (``A1111_BASE_URL``, else the default).

        Read with a short blocking request outside an event loop (for
        ``imagestream providers``); inside one, only what a run or an
        earlier listing found. An unreachable server lists nothing.
        """
        return server_models()

    @property
    def streams_previews(self) -> bool:
        """Always: the current picture is polled while the server works (live previews on)."""
        return True

    def concurrency_key(self, request: ImageRequest) -> str | None:
        """Per server: the web UI runs one job at a time, whoever sends it."""
        return resolve_base_url(request.base_url)

    # -- before anything is sent ---------------------------------------------

    def settings(self, request: ImageRequest) -> Settings:
        """Read and check ``request``: what :meth:`validate` hands to :meth:`stream`."""
        options = Options(request.options, provider=PROVIDER, known=self.options)
        if request.quality is not None:
            raise options.unreadable(
                "the web UI has no quality levels", hint="choose the steps and the sampler"
            )
        if request.output_format is not None:
            read_choice(request.output_format, "output_format", ("png",), provider=PROVIDER)
        if request.partial_images is not None:
            raise options.unreadable(
                "the web UI has no partial_images",
                hint="its previews come with its live preview setting; -o previews false turns them off",
            )
        width, height = request.dimensions or DEFAULT_SIZE
        for side, value in (("width", width), ("height", height)):
            read_integer(value, side, provider=PROVIDER, low=64, high=8192)
            if value % 8:
                raise options.refuse(f"{side} must be a multiple of 8, not {value}")
        n = read_integer(request.n, "n", provider=PROVIDER, low=1, high=64)
        steps = read_integer(
            request.steps if request.steps is not None else DEFAULT_STEPS,
            "steps",
            provider=PROVIDER,
            low=1,
            high=1000,
        )
        seed = -1 if request.seed is None else request.seed
        read_integer(seed, "seed", provider=PROVIDER, low=-1, high=2**32 - 1)
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "negative_prompt": options.text_field("negative_prompt", request.negative_prompt) or "",
            "steps": steps,
            "width": width,
            "height": height,
            "cfg_scale": options.number("cfg_scale", 7.0, low=0.0, high=100.0),
            "seed": seed,
            "batch_size": n,
            "n_iter": options.integer("n_iter", 1, low=1, high=100),
            "send_images": True,
            "save_images": False,
        }
        sampler = options.text("sampler")
        if sampler is not None:
            body["sampler_name"] = sampler
        scheduler = options.text("scheduler")
        if scheduler is not None:
            body["scheduler"] = scheduler
        override = dict(options.mapping("override_settings") or {})
        if "sd_model_checkpoint" in override:
            raise options.refuse("name the checkpoint with -m, not override_settings")
        if override:
            body["override_settings"] = override
        mode = "txt2img"
        image = options.raw("image")
        if image is not None:
            mode = "img2img"
            body["init_images"] = [_input(image, "image")]
            body["denoising_strength"] = options.number(
                "denoising_strength", 0.75, low=0.0, high=1.0
            )
            mask = options.raw("mask")
            if mask is not None:
                body["mask"] = _input(mask, "mask")
        else:
            for name in ("mask", "denoising_strength"):
                if options.raw(name) is not None:
                    raise options.refuse(
                        f"{name} is for img2img",
                        hint="give the picture to start from: -o image PATH",
                    )
        extra = dict(options.mapping("params") or {})
        taken = sorted(set(extra) & OWN_FIELDS)
        if taken:
            raise options.refuse(
                f"params may not set {', '.join(taken)}",
                hint="they come from the request: use its own flags and options",
            )
        body.update(extra)
        return Settings(
            base_url=resolve_base_url(request.base_url),
            credentials=find_key(request.api_key, (AUTH_ENV,), provider=PROVIDER),
            mode=mode,
            body=body,
            checkpoint=request.model,
            poll_interval=options.number("poll_interval", 0.5, low=0.01, high=10.0),
            previews=options.flag("previews", True),
            steps=steps,
            batch_size=n,
        )

    def validate(self, request: ImageRequest) -> Prepared:
        """Check the request before anything is sent; fill in size, steps and the server."""
        settings = self.settings(request)
        body = settings.body
        request = attrs.evolve(
            request,
            size=f"{body['width']}x{body['height']}",
            steps=settings.steps,
            base_url=settings.base_url,
        )
        return Prepared(request, settings)

    # -- a run -----------------------------------------------------------------

    async def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Chunk]:
        """Send the generation, poll its progress while it runs, then yield its images."""
        import asyncio

        settings = context.prepared_as(Settings) or self.settings(request)
        headers = self._headers(settings)
        stall = request.timeout if request.timeout is not None else context.http.stall_timeout
        reached = False  # the server has answered: a connection lost later is not "is it running?"
        try:
            busy, stamp = job_of(await self._poll(context, settings, headers, picture=False))
            reached = True
            body = dict(settings.body)
            if settings.checkpoint is not None:
                title = await self._checkpoint_title(context, settings, headers)
                body["override_settings"] = {
                    **body.get("override_settings", {}),
                    "sd_model_checkpoint": title,
                }
                body["override_settings_restore_afterwards"] = True
            tracker = ProgressTracker(
                foreign_job=stamp if busy else None,
                batch_size=settings.batch_size,
                previews=settings.previews,
                steps=settings.steps,
            )
            generation = asyncio.ensure_future(
                self._generate(context, settings, headers, body, stall)
            )
            poll: asyncio.Future[Any] | None = None
            try:
                answered = time.monotonic()
                while not generation.done():
                    poll = asyncio.ensure_future(
                        self._poll(context, settings, headers, picture=settings.previews)
                    )
                    left = max(0.0, stall - (time.monotonic() - answered))
                    await asyncio.wait(
                        {generation, poll}, timeout=left, return_when=asyncio.FIRST_COMPLETED
                    )
                    if not generation.done() and not poll.done():
                        raise _unanswered(stall)
                    if not poll.done():
                        # The images are in: a progress answer still on its way is stale.
                        break
                    try:
                        answer = poll.result()
                    except (ProviderError, StreamDecodeError) as exc:
                        # One failed poll is no reason to give up a generation.
                        context.logger.debug("%s: a progress request failed: %s", PROVIDER, exc)
                        if time.monotonic() - answered > stall:
                            raise _unanswered(stall) from exc
                    else:
                        # An answer taken while the job ran: news, even if the images are in too.
                        answered = time.monotonic()
                        for chunk in tracker.feed(answer):
                            yield chunk
                    if generation.done():
                        break
                    await asyncio.wait({generation}, timeout=settings.poll_interval)
                answer = generation.result()
            finally:
                # However the run ends (an error, a cancellation, a consumer that
                # stops), a progress request on its way is given up with it.
                if poll is not None and not poll.done():
                    poll.cancel()
                    with contextlib.suppress(BaseException):
                        await poll
                if not generation.done():
                    generation.cancel()
                    with contextlib.suppress(BaseException):
                        await generation
                    # Interrupt the running job only when it is this run's.
                    if tracker.ours_seen or tracker.foreign_job is None:
                        await self._interrupt(context, settings, headers)
            for final in self._finals(answer, settings):
                yield final
        except APIConnectionError as exc:
            if reached:
                raise
            raise unreachable(exc, settings.base_url) from exc

    def _parse_error(self, settings: Settings) -> ErrorParser:
        """The error parser, ``user:password`` masked in whatever the server quotes."""
        login = settings.credentials.get() if settings.credentials is not None else ""
        return error_parser((login, login.partition(":")[2]))

    def _headers(self, settings: Settings) -> dict[str, str]:
        if settings.credentials is None or "@" in urlsplit(settings.base_url).netloc:
            return {}  # user:password@ in the URL wins: it is sent as basic authentication
        return {"Authorization": basic_auth(settings.credentials.get())}

    async def _poll(
        self, context: RunContext, settings: Settings, headers: Mapping[str, str], *, picture: bool
    ) -> Any:
        skip = "false" if picture else "true"
        response = await context.http.send(
            "GET",
            endpoint(settings.base_url, "/sdapi/v1/progress", skip_current_image=skip),
            provider=PROVIDER,
            headers=headers,
            parse_error=self._parse_error(settings),
            retry=NO_RETRY,
            stall_timeout=POLL_TIMEOUT,
        )
        return await read_json(context, response, provider=PROVIDER)

    async def _checkpoint_title(
        self, context: RunContext, settings: Settings, headers: Mapping[str, str]
    ) -> str:
        """The title of the checkpoint asked for, from the server's list."""
        wanted = settings.checkpoint
        assert wanted is not None
        response = await context.http.send(
            "GET",
            endpoint(settings.base_url, "/sdapi/v1/sd-models"),
            provider=PROVIDER,
            headers=headers,
            parse_error=self._parse_error(settings),
            retry=NO_RETRY,
        )
        found = checkpoints_from(await read_json(context, response, provider=PROVIDER))
        remember_checkpoints(settings.base_url, found)
        match = _match(wanted, found)
        if match is None:
            raise checkpoint_missing(wanted, [item.model_name for item in found])
        return match.title

    async def _generate(
        self,
        context: RunContext,
        settings: Settings,
        headers: Mapping[str, str],
        body: Mapping[str, Any],
        stall: float,
    ) -> Any:
        import asyncio

        response = await context.http.send(
            "POST",
            endpoint(settings.base_url, f"/sdapi/v1/{settings.mode}"),
            provider=PROVIDER,
            headers=headers,
            json_body=body,
            parse_error=self._parse_error(settings),
            retry=NO_RETRY,  # a generation is not sent twice
            stall_timeout=GENERATION_TIMEOUT,
        )
        # The answer starts when the images are done: then its body comes at
        # once, and a silence in it is a stall like any other.
        try:
            await check_content_type(context, response, JSON_TYPES, provider=PROVIDER)
            pieces = context.http.iter_body(response, provider=PROVIDER)
            data = bytearray()
            async with contextlib.aclosing(pieces):
                while True:
                    try:
                        async with asyncio.timeout(stall):
                            data += await anext(pieces)
                    except StopAsyncIteration:
                        break
                    except TimeoutError:
                        raise APITimeoutError(
                            f"the {settings.mode} answer stalled: no data for {stall:g}s "
                            f"after {len(data)} bytes",
                            provider=PROVIDER,
                            hint="raise the stall timeout (timeout=) if the server is just slow",
                        ) from None
                    if len(data) > MAX_ANSWER_BYTES:
                        raise ProviderError(
                            f"the {settings.mode} answer is larger than {MAX_ANSWER_BYTES} bytes",
                            provider=PROVIDER,
                            status=response.status,
                        )
        finally:
            response.close()
        try:
            return json.loads(data)
        except ValueError as exc:
            raise StreamDecodeError(
                f"{PROVIDER}: the {settings.mode} answer is not JSON ({exc})"
            ) from None

    async def _interrupt(
        self, context: RunContext, settings: Settings, headers: Mapping[str, str]
    ) -> None:
        with contextlib.suppress(Exception):
            response = await context.http.send(
                "POST",
                endpoint(settings.base_url, "/sdapi/v1/interrupt"),
                provider=PROVIDER,
                headers=headers,
                retry=NO_RETRY,
                stall_timeout=INTERRUPT_TIMEOUT,
            )
            response.close()
            context.logger.debug("%s: interrupted the running job", PROVIDER)

    def _finals(self, answer: Any, settings: Settings) -> list[ImageFinal]:
        """The answer's images, each with its seed; the grid of a batch left out."""
        if not isinstance(answer, Mapping) or not isinstance(answer.get("images"), list):
            raise UnexpectedResponseError(
                f"the {settings.mode} answer has no images", provider=PROVIDER, status=200
            )
        images = [item for item in answer["images"] if isinstance(item, str) and item]
        info = _info(answer.get("info"))
        seeds = info.get("all_seeds")
        seeds = [s for s in seeds if isinstance(s, int)] if isinstance(seeds, list) else []
        first = info.get("index_of_first_image")
        first = first if isinstance(first, int) and 0 <= first < len(images) else 0
        expected = settings.batch_size * int(settings.body.get("n_iter", 1))
        # After the grid (when one was made) come the images, then any a script added.
        chosen = images[first : first + max(len(seeds), expected)] if (seeds or first) else images
        finals = []
        for sample, b64 in enumerate(chosen):
            seed = (
                seeds[sample] if sample < len(seeds) else info.get("seed") if sample == 0 else None
            )
            infotexts = info.get("infotexts")
            extra: dict[str, Any] = {}
            if (
                isinstance(infotexts, list)
                and sample < len(infotexts)
                and isinstance(infotexts[sample], str)
            ):
                extra["infotext"] = infotexts[sample]
            image = ImageData.from_base64(b64)
            finals.append(
                ImageFinal(
                    image,
                    sample=sample,
                    seed=seed if isinstance(seed, int) else None,
                    extra=extra,
                )
            )
        return finals


def _unanswered(stall: float) -> APITimeoutError:
    return APITimeoutError(
        f"no answer to the progress requests for {stall:g}s",
        provider=PROVIDER,
        hint="raise the stall timeout (timeout=) if the server is just slow",
    )


def _info(raw: object) -> dict[str, Any]:
    """The answer's ``info``: a JSON text (an object, already parsed, is accepted too)."""
    if isinstance(raw, Mapping):
        return dict(raw)
    if isinstance(raw, str):
        with contextlib.suppress(ValueError):
            parsed = json.loads(raw)
            if isinstance(parsed, dict):
                return parsed
    return {}


def _match(wanted: str, found: Sequence[Checkpoint]) -> Checkpoint | None:
    for item in found:
        if wanted in item.names():
            return item
    lowered = wanted.lower()
    for item in found:
        if lowered in {name.lower() for name in item.names()}:
            return item
    return None


def _input(value: object, name: str) -> str:
    """An input picture as the API takes it: base64, no data: prefix."""
    image: InputImage = load_input_image(value, name, provider=PROVIDER)
    return image.b64
