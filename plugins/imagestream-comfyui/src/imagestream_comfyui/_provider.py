"""``ComfyUIProvider``: a workflow queued on a running ComfyUI, watched over its WebSocket.

A run:

1. opens ``GET /ws?clientId=<a fresh id>`` and announces that it reads
   previews with a metadata header (servers that do not know the
   announcement ignore it), so nothing the run causes is missed;
2. fills the workflow's placeholders (the checkpoint, when none is named,
   is the server's first, from ``GET /object_info/CheckpointLoaderSimple``)
   and queues it with ``POST /prompt {"prompt": workflow, "client_id": id}``;
3. turns the WebSocket's messages for its prompt into chunks: a ``progress``
   into a :class:`~imagestream.Progress`, a preview into an
   :class:`~imagestream.ImagePreview` with the latest step and total, each
   saved image of an ``executed`` message, fetched with ``GET /view``, into an
   :class:`~imagestream.ImageFinal`;
4. ends at ``execution_success`` (or ``executing`` with no node). A run that
   ends without a saved image reads ``GET /history/<prompt_id>``: an older
   server sends nothing for a workflow it answered wholly from its cache.

A run left early (the consumer stopped, a cancellation, an error) takes its
prompt off the queue (``POST /queue {"delete": [id]}``) or interrupts it
(``POST /interrupt {"prompt_id": id}``), then closes the WebSocket.
"""

from __future__ import annotations

import contextlib
import random
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from imagestream import (
    APIConnectionError,
    Chunk,
    ImageData,
    ImageFinal,
    ModelInfo,
    Provider,
    RetryPolicy,
    StreamDecodeError,
    UnexpectedResponseError,
)
from imagestream.provider import (
    Options,
    Prepared,
    read_choice,
    read_integer,
    read_json,
)

from ._errors import (
    PROVIDER,
    checkpoint_missing,
    no_checkpoints,
    node_error,
    parse_error,
    unreachable,
)
from ._events import ImageRef, RunTranslator
from ._meta import DESCRIPTION, NAME
from ._server import endpoint, remember_checkpoints, resolve_base_url, server_models
from ._workflow import (
    PLACEHOLDERS,
    default_workflow,
    fill_placeholders,
    load_workflow,
    placeholders_in,
)

if TYPE_CHECKING:
    from imagestream import ImageRequest, RunContext

__all__ = ["OPTIONS", "ComfyUIProvider", "Settings"]

DEFAULT_SIZE = (512, 512)
DEFAULT_STEPS = 20
MAX_SIDE = 16384
MAX_SEED = 2**64 - 1
NO_RETRY = RetryPolicy(max_retries=0)
"""A local server that refuses a connection will not accept it a second later either."""
CANCEL_TIMEOUT = 5.0
STALL_TIMEOUT = 1800.0
"""Seconds ComfyUI may stay silent on the WebSocket (loading a large checkpoint says
nothing for minutes); a dead connection is found sooner, by its unanswered pings."""
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif", "application/octet-stream")


OPTIONS: Mapping[str, Any] = {
    "negative_prompt": {
        "type": "text",
        "description": "what not to draw (the same as negative_prompt=)",
    },
    "workflow": {
        "type": "text",
        "description": "an API-format workflow file with {{placeholders}} (default: text to image)",
    },
    "checkpoint": {
        "type": "text",
        "description": "the checkpoint file, as -m (default: the server's first)",
    },
    "cfg": {
        "type": "number",
        "default": 8.0,
        "min": 0.0,
        "max": 100.0,
        "description": "guidance scale",
    },
    "sampler": {
        "type": "text",
        "default": "euler",
        "description": "sampler name (euler, dpmpp_2m, ...)",
    },
    "scheduler": {
        "type": "text",
        "default": "normal",
        "description": "scheduler name (normal, karras, ...)",
    },
    "denoise": {
        "type": "number",
        "default": 1.0,
        "min": 0.0,
        "max": 1.0,
        "description": "share of the latent redrawn",
    },
    "filename_prefix": {
        "type": "text",
        "default": "imagestream",
        "description": "prefix of the files ComfyUI saves",
    },
    "values": {
        "type": "mapping",
        "description": 'values of your own placeholders: {"NAME": VALUE}',
    },
}
"""What ``-o`` takes (``imagestream models -p comfyui --options``)."""


@attrs.frozen
class Settings:
    """A request as :meth:`ComfyUIProvider.validate` read it.

    Attributes:
        base_url: The server.
        workflow: The workflow, placeholders not yet filled.
        values: The placeholders' values, but for ``checkpoint`` when the
            server's first is to be used.
        checkpoint: The checkpoint asked for, if any.
        steps: The step count asked for (the total shown until the server's
            progress says otherwise).
        seed: The seed, when the workflow takes it from the request.
        keep_previews: ``partial_images``: how many previews to keep.
    """

    base_url: str
    workflow: Mapping[str, Any]
    values: Mapping[str, Any]
    checkpoint: str | None
    steps: int | None
    seed: int | None
    keep_previews: int | None


class ComfyUIProvider(Provider):
    """ComfyUI on your machine (or your network): any API-format workflow, live previews."""

    name = NAME
    description = DESCRIPTION
    options: ClassVar[Mapping[str, Any]] = OPTIONS

    # -- what the server has -------------------------------------------------

    @property
    def models(self) -> Sequence[ModelInfo]:  # type: ignore[override]
        """The server's checkpoints, when it answers (``COMFYUI_BASE_URL``, else the default).

        Read with a short blocking request outside an event loop (for
        ``imagestream providers``); inside one, only what a run or an
        earlier listing found. An unreachable server lists nothing.
        """
        return server_models()

    @property
    def streams_previews(self) -> bool:
        """Always: previews come at each sampler step (when the server's preview method is on)."""
        return True

    # -- before anything is sent ---------------------------------------------

    def settings(self, request: ImageRequest) -> Settings:
        """Read and check ``request``: what :meth:`validate` hands to :meth:`stream`."""
        options = Options(request.options, provider=PROVIDER, known=self.options)
        if request.quality is not None:
            raise options.unreadable(
                "ComfyUI has no quality levels",
                hint="choose the steps, the sampler and the checkpoint",
            )
        if request.output_format is not None:
            read_choice(request.output_format, "output_format", ("png",), provider=PROVIDER)
        raw_workflow = options.raw("workflow")
        workflow = default_workflow() if raw_workflow is None else load_workflow(raw_workflow)
        width, height = request.dimensions or DEFAULT_SIZE
        for side, value in (("width", width), ("height", height)):
            read_integer(value, side, provider=PROVIDER, low=16, high=MAX_SIDE)
            if value % 8:
                raise options.refuse(f"{side} must be a multiple of 8, not {value}")
        n = read_integer(request.n, "n", provider=PROVIDER, low=1, high=64)
        steps = read_integer(
            request.steps if request.steps is not None else DEFAULT_STEPS,
            "steps",
            provider=PROVIDER,
            low=1,
            high=10000,
        )
        seed = request.seed if request.seed is not None else random.randrange(2**32)
        read_integer(seed, "seed", provider=PROVIDER, low=0, high=MAX_SEED)
        checkpoint = options.text("checkpoint")
        if checkpoint is not None and request.model is not None and checkpoint != request.model:
            raise options.refuse(
                f"-m {request.model!r} and -o checkpoint {checkpoint!r} disagree",
                hint="give one of them",
            )
        checkpoint = request.model or checkpoint
        values: dict[str, Any] = {
            "prompt": request.prompt,
            "negative_prompt": options.text_field("negative_prompt", request.negative_prompt) or "",
            "seed": seed,
            "steps": steps,
            "cfg": options.number("cfg", 8.0, low=0.0, high=100.0),
            "sampler": options.text("sampler", "euler"),
            "scheduler": options.text("scheduler", "normal"),
            "denoise": options.number("denoise", 1.0, low=0.0, high=1.0),
            "width": width,
            "height": height,
            "batch_size": n,
            "filename_prefix": options.text("filename_prefix", "imagestream"),
        }
        if checkpoint is not None:
            values["checkpoint"] = checkpoint
        own = options.mapping("values") or {}
        for name, value in own.items():
            if name in PLACEHOLDERS and name != "checkpoint":
                raise options.refuse(
                    f"values may not set {{{{{name}}}}}",
                    hint="it comes from the request: use its own flag or option",
                )
            values[name] = value
        used = placeholders_in(workflow)
        unknown = sorted(used - set(values) - {"checkpoint"})
        if unknown:
            # Fails here, before anything is sent: a typo in a placeholder.
            fill_placeholders(workflow, {**values, "checkpoint": ""})
        keep = request.partial_images
        if keep is not None:
            read_integer(keep, "partial_images", provider=PROVIDER, low=0, high=10000)
        return Settings(
            base_url=resolve_base_url(request.base_url),
            workflow=workflow,
            values=values,
            checkpoint=checkpoint,
            steps=steps if "steps" in used else None,
            seed=seed if "seed" in used else None,
            keep_previews=keep,
        )

    def validate(self, request: ImageRequest) -> Prepared:
        """Check the request before anything is sent; fill in size, steps, seed and the server."""
        settings = self.settings(request)
        values = settings.values
        request = attrs.evolve(
            request,
            model=settings.checkpoint,
            size=f"{values['width']}x{values['height']}",
            steps=settings.steps if settings.steps is not None else request.steps,
            seed=settings.seed if settings.seed is not None else request.seed,
            base_url=settings.base_url,
        )
        return Prepared(request, settings)

    # -- a run -----------------------------------------------------------------

    async def stream(self, request: ImageRequest, context: RunContext) -> AsyncIterator[Chunk]:
        """Queue the workflow and stream its progress, previews and saved images."""
        from imagestream.provider import open_websocket

        settings = context.prepared_as(Settings) or self.settings(request)
        base_url = settings.base_url
        client_id = uuid.uuid4().hex
        ws_url = endpoint(base_url, "/ws", clientId=client_id)
        try:
            stall = request.timeout if request.timeout is not None else STALL_TIMEOUT
            async with open_websocket(
                context, ws_url, provider=PROVIDER, stall_timeout=stall
            ) as ws:
                # Previews that name their prompt, from servers that know the flag.
                await ws.send_json(
                    {"type": "feature_flags", "data": {"supports_preview_metadata": True}}
                )
                workflow = await self._workflow(context, settings)
                prompt_id = await self._queue(context, base_url, workflow, client_id)
                translator = RunTranslator(
                    prompt_id, total_steps=settings.steps, keep_previews=settings.keep_previews
                )
                finals = 0
                try:
                    async for message in ws:
                        if isinstance(message.data, str):
                            items = translator.text(message.data)
                        else:
                            items = translator.binary(message.data)
                        for item in items:
                            if isinstance(item, ImageRef):
                                yield await self._final(context, base_url, item, finals, settings)
                                finals += 1
                            else:
                                yield item
                        if translator.finished:
                            break
                    if not finals:
                        for ref in await self._history(context, base_url, prompt_id):
                            yield await self._final(context, base_url, ref, finals, settings)
                            finals += 1
                finally:
                    if not translator.ended:
                        await self._cancel(context, base_url, prompt_id)
        except APIConnectionError as exc:
            raise unreachable(exc, base_url) from exc

    async def _workflow(self, context: RunContext, settings: Settings) -> dict[str, Any]:
        """The workflow with every placeholder filled, the checkpoint checked against the server's."""
        values = dict(settings.values)
        if "checkpoint" in placeholders_in(settings.workflow):
            available = await self._checkpoints(context, settings.base_url)
            if settings.checkpoint is None:
                if not available:
                    raise no_checkpoints(listed=available is not None)
                values["checkpoint"] = available[0]
            elif available is not None and settings.checkpoint not in available:
                raise checkpoint_missing(settings.checkpoint, available)
        return fill_placeholders(settings.workflow, values)

    async def _checkpoints(self, context: RunContext, base_url: str) -> tuple[str, ...] | None:
        """The server's checkpoints; ``None`` when it does not say (not the usual node)."""
        from ._server import checkpoint_names

        url = endpoint(base_url, "/object_info/CheckpointLoaderSimple")
        response = await context.http.send(
            "GET", url, provider=PROVIDER, parse_error=parse_error, retry=NO_RETRY
        )
        try:
            info = await read_json(context, response, provider=PROVIDER)
        except (UnexpectedResponseError, StreamDecodeError):
            return None
        names = checkpoint_names(info)
        if not names and not (isinstance(info, Mapping) and info):
            return None
        remember_checkpoints(base_url, names)
        return names

    async def _queue(
        self, context: RunContext, base_url: str, workflow: Mapping[str, Any], client_id: str
    ) -> str:
        """``POST /prompt``: the prompt id, or the error naming the node the server refused."""
        response = await context.http.send(
            "POST",
            endpoint(base_url, "/prompt"),
            provider=PROVIDER,
            json_body={"prompt": workflow, "client_id": client_id},
            parse_error=parse_error,
            retry=NO_RETRY,
        )
        answer = await read_json(context, response, provider=PROVIDER)
        if not isinstance(answer, Mapping):
            raise UnexpectedResponseError(
                f"POST /prompt answered {type(answer).__name__}, not an object",
                provider=PROVIDER,
                status=200,
            )
        node_errors = answer.get("node_errors")
        prompt_id = answer.get("prompt_id")
        if not isinstance(prompt_id, str) or not prompt_id:
            if isinstance(node_errors, Mapping) and node_errors:
                raise node_error(node_errors, 200)
            raise UnexpectedResponseError(
                "POST /prompt answered without a prompt_id",
                provider=PROVIDER,
                status=200,
                hint="is this a ComfyUI server? check base_url",
            )
        if isinstance(node_errors, Mapping) and node_errors:
            # The server runs the outputs it could validate and skips the others.
            context.logger.warning("%s", node_error(node_errors, 200).message)
        context.logger.debug("%s: queued prompt %s", PROVIDER, prompt_id)
        return prompt_id

    async def _final(
        self, context: RunContext, base_url: str, ref: ImageRef, sample: int, settings: Settings
    ) -> ImageFinal:
        """Fetch a saved image with ``GET /view``."""
        url = endpoint(
            base_url, "/view", filename=ref.filename, subfolder=ref.subfolder, type=ref.type
        )
        response = await context.http.send("GET", url, provider=PROVIDER, parse_error=parse_error)
        from imagestream.provider import check_content_type

        try:
            await check_content_type(context, response, IMAGE_TYPES, provider=PROVIDER)
            data = await context.http.read_body(response, provider=PROVIDER)
        finally:
            response.close()
        image = ImageData.from_bytes(data)
        extra = {"filename": ref.filename, "subfolder": ref.subfolder, "type": ref.type}
        if ref.node_id is not None:
            extra["node"] = ref.node_id
        return ImageFinal(
            image, sample=sample, mime_type=image.mime_type, seed=settings.seed, extra=extra
        )

    async def _history(self, context: RunContext, base_url: str, prompt_id: str) -> list[ImageRef]:
        """The images ``GET /history/<prompt_id>`` lists (saved ones, else previewed ones)."""
        from ._events import image_refs

        response = await context.http.send(
            "GET",
            endpoint(base_url, f"/history/{prompt_id}"),
            provider=PROVIDER,
            parse_error=parse_error,
        )
        answer = await read_json(context, response, provider=PROVIDER)
        entry = answer.get(prompt_id) if isinstance(answer, Mapping) else None
        outputs = entry.get("outputs") if isinstance(entry, Mapping) else None
        refs: list[ImageRef] = []
        if isinstance(outputs, Mapping):
            for node_id, output in outputs.items():
                refs.extend(image_refs(output, str(node_id)))
        saved = [ref for ref in refs if ref.type == "output"]
        return saved or refs

    async def _cancel(self, context: RunContext, base_url: str, prompt_id: str) -> None:
        """Take the prompt off the queue, or interrupt it if it runs; never raises."""
        for path, body in (
            ("/queue", {"delete": [prompt_id]}),
            ("/interrupt", {"prompt_id": prompt_id}),
        ):
            with contextlib.suppress(Exception):
                response = await context.http.send(
                    "POST",
                    endpoint(base_url, path),
                    provider=PROVIDER,
                    json_body=body,
                    retry=NO_RETRY,
                    stall_timeout=CANCEL_TIMEOUT,
                )
                response.close()
        context.logger.debug("%s: cancelled prompt %s", PROVIDER, prompt_id)
