"""Reading a job: every bad line reported with its number, ids made into safe file names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagestream import ConfigurationError
from imagestream_batch import JobError, load_job, parse_job, safe_stem
from imagestream_batch._job import file_names, prepare_requests, request_hash


def lines(*values: object) -> list[str]:
    return [value if isinstance(value, str) else json.dumps(value) for value in values]


def problems(error: pytest.ExceptionInfo[JobError]) -> list[str]:
    return [str(problem) for problem in error.value.problems]


def test_every_bad_line_is_reported_with_its_number() -> None:
    job = lines(
        {"id": "ok", "prompt": "a red circle"},
        "{not json",
        [1, 2],
        {"prompt": "no id"},
        {"id": "no-prompt"},
        {"id": "blank", "prompt": "  "},
        {"id": True, "prompt": "a bool id"},
        {"id": "typo", "prompt": "p", "stpes": 3},
        {"id": "types", "prompt": "p", "steps": "many", "n": 0, "options": [1]},
        {"id": "ok", "prompt": "again"},
        "",
        {"id": "fine", "prompt": "p", "seed": None},
    )
    with pytest.raises(JobError) as caught:
        parse_job(job, "job.jsonl")

    assert problems(caught) == [
        "line 2: not JSON (Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1))",
        "line 3: expected a JSON object, not list",
        "line 4: no id",
        "line 5: no prompt",
        'line 6: prompt must be non-empty text, not "  "',
        "line 7: id must be non-empty text or a number, not true",
        "line 8: unknown field 'stpes' (did you mean 'steps'?)",
        'line 9: steps must be a whole number, not "many"',
        "line 9: n must be between 1 and 100, not 0",
        "line 9: options must be an object, not [1]",
        "line 10: duplicate id 'ok' (first on line 1)",
    ]
    message = caught.value.message
    assert message.startswith("job.jsonl: 11 bad lines, nothing was run")
    assert isinstance(caught.value, ConfigurationError)


def test_a_long_list_of_problems_is_cut_short() -> None:
    with pytest.raises(JobError) as caught:
        parse_job(lines(*[{"id": str(i)} for i in range(30)]))
    assert len(caught.value.problems) == 30
    assert caught.value.message.endswith("... and 10 more")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"id": "a b"}, {"id": "a_b"}),
        ({"id": "Cat"}, {"id": "cat"}),  # one file on a case-insensitive file system
        ({"id": "cat", "n": 2}, {"id": "cat-1"}),
        ({"id": 7}, {"id": "7"}),
    ],
)
def test_ids_whose_files_would_clash_are_refused(
    first: dict[str, object], second: dict[str, object]
) -> None:
    with pytest.raises(JobError) as caught:
        parse_job(lines({**first, "prompt": "p"}, {**second, "prompt": "q"}))
    (problem,) = problems(caught)
    assert problem.startswith("line 2: ")
    assert "line 1" in problem


@pytest.mark.parametrize(
    ("request_id", "stem"),
    [
        ("cat-3", "cat-3"),
        ("../../etc/passwd", "_.._.._etc_passwd"),
        ("-rf", "_-rf"),
        (".hidden", "_.hidden"),
        ("a/b\\c:d*e?f", "a_b_c_d_e_f"),
        ("猫 1", "猫_1"),
    ],
)
def test_ids_become_safe_file_stems(request_id: str, stem: str) -> None:
    assert safe_stem(request_id) == stem


def test_long_ids_are_cut_to_a_file_name_and_control_characters_refused() -> None:
    assert len(safe_stem("é" * 200).encode("utf-8")) <= 150
    with pytest.raises(JobError, match="control character"):
        parse_job(lines({"id": "a\nb", "prompt": "p"}))
    with pytest.raises(JobError, match="at most 200"):
        parse_job(lines({"id": "x" * 201, "prompt": "p"}))


def test_file_names() -> None:
    assert file_names("cat", 1) == ["cat"]
    assert file_names("cat", 3) == ["cat-1", "cat-2", "cat-3"]


def test_defaults_fill_in_and_change_the_hash() -> None:
    parsed = parse_job(
        lines(
            {"id": "a", "prompt": "p", "options": {"x": 1}},
            {"id": "b", "prompt": "p", "size": "8x8", "options": {"y": 2}},
        )
    )

    def resolve(provider: str | None, model: str | None) -> str:
        return provider or "tiny"

    first = prepare_requests(parsed, {"size": "4x4", "options": {"y": 1}}, resolve)
    assert dict(first[0].params) == {"size": "4x4", "options": {"y": 1, "x": 1}, "prompt": "p"}
    assert dict(first[1].params) == {"size": "8x8", "options": {"y": 2}, "prompt": "p"}
    again = prepare_requests(parsed, {"options": {"y": 1}, "size": "4x4"}, resolve)
    assert [r.hash for r in again] == [r.hash for r in first]
    changed = prepare_requests(parsed, {"size": "16x16", "options": {"y": 1}}, resolve)
    # The default changes what line a runs, not line b (which sets its own size).
    assert changed[0].hash != first[0].hash
    assert changed[1].hash == first[1].hash
    assert request_hash("tiny", {"prompt": "p", "seed": None}) == request_hash(
        "tiny", {"prompt": "p"}
    )


def test_a_line_whose_provider_is_unknown_is_reported() -> None:
    parsed = parse_job(
        lines({"id": "a", "prompt": "p"}, {"id": "b", "prompt": "p", "provider": "x"})
    )

    def resolve(provider: str | None, model: str | None) -> str:
        if provider == "x":
            raise ConfigurationError("unknown provider 'x'")
        return "tiny"

    with pytest.raises(JobError) as caught:
        prepare_requests(parsed, {}, resolve)
    assert problems(caught) == ["line 2: unknown provider 'x'"]


def test_an_empty_or_missing_job_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_job(tmp_path / "missing.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="holds no request"):
        load_job(tmp_path / "empty.jsonl")
