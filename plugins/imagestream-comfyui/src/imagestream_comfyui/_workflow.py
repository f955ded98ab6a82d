"""Workflows: the built-in text-to-image graph, and a user's own file with placeholders.

A workflow in ComfyUI's *API format* (what "Save (API Format)" writes) is a
JSON object from node id to ``{"class_type": ..., "inputs": {...}}``; an
input is a value or a link ``[node_id, output_index]``.

In a workflow file, an input whose text is a placeholder such as
``"{{prompt}}"`` gets the request's value. A placeholder that is the whole
text gets the value with its type (``"{{steps}}"`` becomes the number 20); one
inside other text is replaced by the value's text (``"masterpiece, {{prompt}}"``).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from imagestream import ConfigurationError

__all__ = [
    "PLACEHOLDERS",
    "default_workflow",
    "fill_placeholders",
    "load_workflow",
    "placeholders_in",
]

PROVIDER = "comfyui"

PLACEHOLDERS: Mapping[str, str] = {
    "prompt": "the prompt",
    "negative_prompt": "the negative prompt (empty when none)",
    "seed": "the seed (a number)",
    "steps": "sampler steps (a number)",
    "cfg": "classifier-free guidance scale (a number)",
    "sampler": "the sampler's name (euler, dpmpp_2m, ...)",
    "scheduler": "the scheduler's name (normal, karras, ...)",
    "denoise": "how much of the latent is redrawn, 0 to 1 (a number)",
    "width": "image width in pixels (a number)",
    "height": "image height in pixels (a number)",
    "batch_size": "images per run: the request's n (a number)",
    "checkpoint": "the checkpoint file: -m, else the server's first",
    "filename_prefix": "the prefix of the files the server saves",
}
"""Every placeholder a workflow file may use, with what it becomes; ``values`` adds more."""

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def default_workflow() -> dict[str, Any]:
    """The built-in text-to-image workflow, with every setting a placeholder.

    Load a checkpoint, encode the prompt and the negative prompt, sample an
    empty latent of the requested size, decode it and save it: ComfyUI's
    own default graph, with readable node ids.
    """
    return {
        "checkpoint": {
            "class_type": "CheckpointLoaderSimple",
            "inputs": {"ckpt_name": "{{checkpoint}}"},
        },
        "positive": {
            "class_type": "CLIPTextEncode",
            "inputs": {"text": "{{prompt}}", "clip": ["checkpoint", 1]},
        },
        "negative": {
            "class_type": "CLIPTextEncode",
            "inputs": {"text": "{{negative_prompt}}", "clip": ["checkpoint", 1]},
        },
        "latent": {
            "class_type": "EmptyLatentImage",
            "inputs": {
                "width": "{{width}}",
                "height": "{{height}}",
                "batch_size": "{{batch_size}}",
            },
        },
        "sampler": {
            "class_type": "KSampler",
            "inputs": {
                "seed": "{{seed}}",
                "steps": "{{steps}}",
                "cfg": "{{cfg}}",
                "sampler_name": "{{sampler}}",
                "scheduler": "{{scheduler}}",
                "denoise": "{{denoise}}",
                "model": ["checkpoint", 0],
                "positive": ["positive", 0],
                "negative": ["negative", 0],
                "latent_image": ["latent", 0],
            },
        },
        "decode": {
            "class_type": "VAEDecode",
            "inputs": {"samples": ["sampler", 0], "vae": ["checkpoint", 2]},
        },
        "save": {
            "class_type": "SaveImage",
            "inputs": {"images": ["decode", 0], "filename_prefix": "{{filename_prefix}}"},
        },
    }


def load_workflow(value: object) -> dict[str, Any]:
    """A workflow from a path or a mapping, checked to be in the API format.

    Raises:
        ConfigurationError: The file is missing or not JSON, or the workflow
            is not an API-format graph (the UI's format is named as such).
    """
    if isinstance(value, Mapping):
        workflow: Any = copy.deepcopy(dict(value))
        where = "the workflow"
    elif isinstance(value, str | Path):
        path = Path(value).expanduser()
        where = f"the workflow file {str(path)!r}"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise _unreadable(f"{where} does not exist", "give the path of a JSON file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise _unreadable(f"cannot read {where}: {exc}") from None
        try:
            workflow = json.loads(text)
        except ValueError as exc:
            raise _unreadable(f"{where} is not JSON ({exc})") from None
    else:
        raise _unreadable(f"workflow must be a file path or a mapping, not {type(value).__name__}")
    _check_api_format(workflow, where)
    return dict(workflow)


def _check_api_format(workflow: object, where: str) -> None:
    export = (
        "in ComfyUI, export it with 'Save (API Format)' (Workflow menu, or the dev mode option)"
    )
    if not isinstance(workflow, Mapping) or not workflow:
        raise _unreadable(f"{where} is not a JSON object of nodes", export)
    if "nodes" in workflow and "links" in workflow:
        raise _unreadable(f"{where} is in the UI's format, not the API format", export)
    for node_id, node in workflow.items():
        if not isinstance(node, Mapping) or not isinstance(node.get("class_type"), str):
            raise _unreadable(f"{where}: node {node_id!r} has no class_type", export)
        if not isinstance(node.get("inputs", {}), Mapping):
            raise _unreadable(
                f"{where}: node {node_id!r} has inputs that are not an object", export
            )


def placeholders_in(workflow: Mapping[str, Any]) -> set[str]:
    """The names of every placeholder the workflow's inputs use."""
    found: set[str] = set()

    def visit(value: object) -> None:
        if isinstance(value, str):
            found.update(match[1] for match in _PLACEHOLDER.finditer(value))
        elif isinstance(value, Mapping):
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)

    for node in workflow.values():
        visit(node.get("inputs", {}))
    return found


def fill_placeholders(workflow: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``workflow`` with every placeholder replaced by its value.

    Raises:
        ConfigurationError: A placeholder has no value.
    """
    missing = sorted(placeholders_in(workflow) - set(values))
    if missing:
        names = ", ".join("{{" + name + "}}" for name in missing)
        raise _unreadable(
            f"the workflow uses {names}, which has no value",
            "known placeholders: "
            + ", ".join(PLACEHOLDERS)
            + "; give others with -o values '{\"NAME\": VALUE}'",
        )

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            whole = _PLACEHOLDER.fullmatch(value.strip())
            if whole:
                return values[whole[1]]
            return _PLACEHOLDER.sub(lambda match: _text(values[match[1]]), value)
        if isinstance(value, Mapping):
            return {key: fill(item) for key, item in value.items()}
        if isinstance(value, list):
            return [fill(item) for item in value]
        return value

    return {
        node_id: {**node, "inputs": fill(node.get("inputs", {}))}
        for node_id, node in workflow.items()
    }


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _unreadable(message: str, hint: str | None = None) -> ConfigurationError:
    return ConfigurationError(f"{PROVIDER}: {message}", hint=hint)
