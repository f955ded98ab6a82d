"""Reading a job: one JSON request per line, checked whole before anything runs.

A line is an object with an ``id``, a ``prompt`` and any of the request
fields in :data:`FIELDS`; what a line leaves out comes from the defaults
(the command line's ``-p``, ``-m``, ``--size``, ...). Every problem of every
line is collected and reported together, with line numbers, so a job with
three typos is fixed in one edit, not three runs.

Each request gets a *hash* of its normalised form (the fields as they will
be sent, defaults applied, provider resolved, keys sorted): the manifest
compares it with the one recorded for the same id to tell a changed line
from one already done.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from imagestream import ConfigurationError
from imagestream.provider import did_you_mean

__all__ = [
    "FIELDS",
    "MAX_ID_CHARS",
    "BatchRequest",
    "JobError",
    "JobLine",
    "Problem",
    "file_names",
    "load_job",
    "parse_job",
    "prepare_requests",
    "request_hash",
    "safe_stem",
]

FIELDS: dict[str, str] = {
    "provider": "text",
    "model": "text",
    "size": "text",
    "steps": "integer",
    "seed": "integer",
    "n": "integer",
    "options": "object",
    "negative_prompt": "text",
    "quality": "text",
    "output_format": "text",
}
"""Request fields a line (or the command line's defaults) may set, besides ``id`` and ``prompt``."""

MAX_ID_CHARS = 200
"""Longest id accepted."""

MAX_STEM_BYTES = 150
"""Longest file stem made from an id, in UTF-8 bytes (room for ``-N.webp`` and the temporary's name)."""

MAX_N = 100
"""Most images one line may ask for."""

SHOWN_PROBLEMS = 20
"""Problems listed in a :class:`JobError`'s message; the rest are counted."""


@attrs.frozen
class Problem:
    """What is wrong with one line."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class JobError(ConfigurationError):
    """The job cannot run as it is: every bad line, with its number.

    Attributes:
        problems: Each problem found, in line order.
    """

    def __init__(
        self,
        path: Path | str,
        problems: Iterable[Problem],
        *,
        hint: str | None = None,
        what: str = "bad line",
    ) -> None:
        self.problems = sorted(problems, key=lambda problem: problem.line)
        shown = [f"  {problem}" for problem in self.problems[:SHOWN_PROBLEMS]]
        more = len(self.problems) - SHOWN_PROBLEMS
        if more > 0:
            shown.append(f"  ... and {more} more")
        count = len(self.problems)
        message = f"{path}: {count} {what}{'s' if count != 1 else ''}, nothing was run\n" + (
            "\n".join(shown)
        )
        super().__init__(message, hint=hint or "fix the lines and run the same command again")


@attrs.frozen
class JobLine:
    """One parsed line, before defaults and the provider are applied.

    Attributes:
        line: Its line number (1-based).
        id: The request id, as text.
        prompt: What to draw.
        fields: The other fields the line set (see :data:`FIELDS`).
    """

    line: int
    id: str
    prompt: str
    fields: Mapping[str, Any]


@attrs.frozen
class BatchRequest:
    """One request of the job, ready to run.

    Attributes:
        id: The id from the job.
        line: Its line number.
        stem: The file stem its images are named after (the id, made safe).
        provider: The provider's name.
        params: Request fields for :func:`imagestream.stream` (``prompt``
            included; ``options`` merged from the defaults and the line).
        hash: SHA-256 of the normalised request (see :func:`request_hash`).
    """

    id: str
    line: int
    stem: str
    provider: str
    params: Mapping[str, Any]
    hash: str

    @property
    def n(self) -> int:
        """How many images the request asks for."""
        return int(self.params.get("n") or 1)

    @property
    def model(self) -> str | None:
        """The model it names, if any."""
        value = self.params.get("model")
        return str(value) if value is not None else None


def safe_stem(request_id: str) -> str:
    """A file stem for ``request_id``: letters, digits, ``-``, ``_`` and ``.`` kept, the rest ``_``.

    It never starts with ``.`` or ``-`` (no hidden files, no options) and is
    at most :data:`MAX_STEM_BYTES` UTF-8 bytes long. Two ids may give the same
    stem; :func:`parse_job` refuses such a pair.
    """
    text = unicodedata.normalize("NFC", request_id)
    stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)
    if not stem or stem[0] in ".-":
        stem = "_" + stem
    while len(stem.encode("utf-8")) > MAX_STEM_BYTES:
        stem = stem[:-1]
    return stem


def file_names(stem: str, n: int) -> list[str]:
    """The names (without extension) of a request's images: ``stem``, or ``stem-1`` ... ``stem-n``."""
    return [stem] if n == 1 else [f"{stem}-{index}" for index in range(1, n + 1)]


def _read_id(value: object) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    return None


def _check_field(name: str, value: object) -> str | None:
    """Why ``value`` cannot be field ``name``, or ``None`` when it can."""
    kind = FIELDS[name]
    if value is None:
        return None
    if kind == "text" and not isinstance(value, str):
        return f"{name} must be text, not {json.dumps(value)}"
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{name} must be a whole number, not {json.dumps(value)}"
        if name == "n" and not 1 <= value <= MAX_N:
            return f"n must be between 1 and {MAX_N}, not {value}"
        if name == "steps" and value < 1:
            return f"steps must be at least 1, not {value}"
    if kind == "object" and not isinstance(value, dict):
        return f"{name} must be an object, not {json.dumps(value)}"
    return None


def parse_job(lines: Iterable[str], path: Path | str = "<job>") -> list[JobLine]:
    """Parse the lines of a job, or raise :class:`JobError` listing every bad one.

    Blank lines are skipped. A line is bad when it is not JSON, not an
    object, has no usable ``id`` or ``prompt``, names an unknown field or
    gives a field the wrong type, repeats an earlier id, or has an id whose
    file names would be the same as an earlier one's (``a b`` and ``a_b``;
    ``Cat`` and ``cat``, which a case-insensitive file system confuses;
    ``cat`` with ``n: 2`` and ``cat-1``).
    """
    problems: list[Problem] = []
    parsed: list[JobLine] = []
    first_line: dict[str, int] = {}
    names_taken: dict[str, tuple[int, str]] = {}
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        try:
            value = json.loads(text)
        except ValueError as exc:
            problems.append(Problem(number, f"not JSON ({exc})"))
            continue
        if not isinstance(value, dict):
            problems.append(Problem(number, f"expected a JSON object, not {type(value).__name__}"))
            continue
        found = _check_line(number, value, problems)
        if found is None:
            continue
        if found.id in first_line:
            problems.append(
                Problem(number, f"duplicate id {found.id!r} (first on line {first_line[found.id]})")
            )
            continue
        first_line[found.id] = number
        stem = safe_stem(found.id)
        names = file_names(stem, int(found.fields.get("n") or 1))
        clash = next(
            (names_taken[name.casefold()] for name in names if name.casefold() in names_taken), None
        )
        if clash is not None:
            other_line, other_id = clash
            problems.append(
                Problem(
                    number,
                    f"id {found.id!r} gives the same file names as id {other_id!r} "
                    f"on line {other_line}",
                )
            )
            continue
        for name in names:
            names_taken[name.casefold()] = (number, found.id)
        parsed.append(found)
    if problems:
        raise JobError(path, problems)
    return parsed


def _check_line(number: int, value: Mapping[str, Any], problems: list[Problem]) -> JobLine | None:
    before = len(problems)
    request_id = _read_id(value.get("id"))
    if "id" not in value:
        problems.append(Problem(number, "no id"))
    elif request_id is None or not request_id.strip():
        problems.append(
            Problem(number, f"id must be non-empty text or a number, not {json.dumps(value['id'])}")
        )
    elif len(request_id) > MAX_ID_CHARS:
        problems.append(
            Problem(number, f"id is {len(request_id)} characters long (at most {MAX_ID_CHARS})")
        )
    elif any(unicodedata.category(ch) == "Cc" for ch in request_id):
        problems.append(Problem(number, f"id {request_id!r} holds a control character"))
    prompt = value.get("prompt")
    if "prompt" not in value:
        problems.append(Problem(number, "no prompt"))
    elif not isinstance(prompt, str) or not prompt.strip():
        problems.append(Problem(number, f"prompt must be non-empty text, not {json.dumps(prompt)}"))
    fields: dict[str, Any] = {}
    for name, field in value.items():
        if name in ("id", "prompt"):
            continue
        if name not in FIELDS:
            guess = did_you_mean(name, [*FIELDS, "id", "prompt"])
            suggestion = f" (did you mean {guess!r}?)" if guess else ""
            problems.append(Problem(number, f"unknown field {name!r}{suggestion}"))
            continue
        reason = _check_field(name, field)
        if reason is not None:
            problems.append(Problem(number, reason))
        elif field is not None:
            fields[name] = field
    if len(problems) > before:
        return None
    assert request_id is not None and isinstance(prompt, str)
    return JobLine(number, request_id, prompt, fields)


def load_job(path: Path | str) -> list[JobLine]:
    """:func:`parse_job` of a file (UTF-8).

    Raises:
        ConfigurationError: The file cannot be read, or holds no request.
        JobError: Bad lines.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read the job {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigurationError(f"the job {path} is not UTF-8 text: {exc}") from exc
    lines = parse_job(text.splitlines(), path)
    if not lines:
        raise ConfigurationError(
            f"the job {path} holds no request",
            hint='one JSON object per line: {"id": "cat", "prompt": "a cat"}',
        )
    return lines


def request_hash(provider: str, params: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the request as it will run: canonical JSON, keys sorted."""
    normalised = {"provider": provider, **{k: v for k, v in params.items() if v is not None}}
    text = json.dumps(normalised, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def prepare_requests(
    lines: Iterable[JobLine],
    defaults: Mapping[str, Any],
    resolve_provider: Callable[[str | None, str | None], str],
    path: Path | str = "<job>",
) -> list[BatchRequest]:
    """Apply the defaults to each line, resolve its provider and hash it.

    ``resolve_provider(provider, model)`` returns the provider's name (the
    default one, or the one that lists ``model``) or raises an
    :class:`~imagestream.ImagestreamError`, reported for that line.

    Raises:
        JobError: Lines whose provider cannot be found.
    """
    problems: list[Problem] = []
    prepared: list[BatchRequest] = []
    default_options = dict(defaults.get("options") or {})
    for line in lines:
        params: dict[str, Any] = {
            name: value for name, value in defaults.items() if name in FIELDS and value is not None
        }
        params.update(line.fields)
        options = {**default_options, **dict(line.fields.get("options") or {})}
        if options:
            params["options"] = options
        else:
            params.pop("options", None)
        params["prompt"] = line.prompt
        wanted = params.pop("provider", None)
        try:
            provider = resolve_provider(wanted, params.get("model"))
        except ConfigurationError as exc:
            problems.append(Problem(line.line, exc.message))
            continue
        except Exception as exc:  # UnknownProviderError is a PluginError
            message = getattr(exc, "message", None) or str(exc)
            problems.append(Problem(line.line, message))
            continue
        prepared.append(
            BatchRequest(
                id=line.id,
                line=line.line,
                stem=safe_stem(line.id),
                provider=provider,
                params=params,
                hash=request_hash(provider, params),
            )
        )
    if problems:
        raise JobError(path, problems)
    return prepared
