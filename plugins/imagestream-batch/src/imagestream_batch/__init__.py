"""imagestream batch: thousands of prompts from a JSONL job, resumable, rate-limit aware.

::

    from imagestream_batch import run_batch

    summary = run_batch("prompts.jsonl", size="256x256", concurrency=16)
    print(summary.done, summary.failed, summary.results)

The same job on a Ray cluster::

    summary = run_batch("prompts.jsonl", engine="ray", address="auto", workers=8)

Names are imported on first use: the command line imports this package
whenever it lists its commands, and that must stay cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagestream.provider import lazy_exports

from ._version import __version__

if TYPE_CHECKING:
    from ._engines import Engine, LocalEngine, WorkerLost
    from ._execute import ExecutorSettings, Failure, MadeImage, Outcome, Task
    from ._job import BatchRequest, JobError, Problem, load_job, parse_job, safe_stem
    from ._manifest import Manifest
    from ._ray import RayEngine
    from ._runner import BatchStats, BatchSummary, arun_batch, default_out_dir, run_batch

_LAZY = {
    "Engine": "._engines",
    "LocalEngine": "._engines",
    "WorkerLost": "._engines",
    "ExecutorSettings": "._execute",
    "Failure": "._execute",
    "MadeImage": "._execute",
    "Outcome": "._execute",
    "Task": "._execute",
    "BatchRequest": "._job",
    "JobError": "._job",
    "Problem": "._job",
    "load_job": "._job",
    "parse_job": "._job",
    "safe_stem": "._job",
    "Manifest": "._manifest",
    "RayEngine": "._ray",
    "BatchStats": "._runner",
    "BatchSummary": "._runner",
    "arun_batch": "._runner",
    "default_out_dir": "._runner",
    "run_batch": "._runner",
}

__all__ = [
    "BatchRequest",
    "BatchStats",
    "BatchSummary",
    "Engine",
    "ExecutorSettings",
    "Failure",
    "JobError",
    "LocalEngine",
    "MadeImage",
    "Manifest",
    "Outcome",
    "Problem",
    "RayEngine",
    "Task",
    "WorkerLost",
    "__version__",
    "arun_batch",
    "default_out_dir",
    "load_job",
    "parse_job",
    "run_batch",
    "safe_stem",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
