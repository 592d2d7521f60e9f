"""Write the pipeline run log from a pipeline, so nobody hand-writes JSON.

    from exporter.runlog import record_run

    with record_run("/var/log/pipelines/runs.jsonl", "train-fraud", kind="training") as run:
        train()
        run.gpu_seconds = 3600.0  # optional: what the process cannot measure itself

It appends a ``running`` record at the start and a ``succeeded`` or ``failed`` one at the
end (``failed`` when the block raises; the exception propagates), with the process's own
and its waited-for children's CPU time and peak RSS. Each record is one ``write`` of a
whole line on an O_APPEND file, so concurrent pipelines sharing a log do not interleave.
"""

from __future__ import annotations

import json
import os
import resource
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class Run:
    pipeline: str
    kind: str
    run_id: str
    start: float
    gpu_seconds: float | None = None


def _append(path: str, record: dict) -> None:
    line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _peak_rss_bytes() -> int:
    # ru_maxrss is in KiB on Linux.
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) * 1024


@contextmanager
def record_run(path: str, pipeline: str, kind: str = "training", run_id: str | None = None):
    run = Run(pipeline, kind, run_id or uuid.uuid4().hex[:12], time.time())
    cpu0 = _cpu_seconds()
    base = {"pipeline": pipeline, "kind": kind, "run_id": run.run_id}
    _append(path, {**base, "status": "running", "start": run.start})
    status = "failed"
    try:
        yield run
        status = "succeeded"
    finally:
        record = {
            **base,
            "status": status,
            "start": run.start,
            "end": time.time(),
            "cpu_seconds": round(_cpu_seconds() - cpu0, 3),
            "peak_memory_bytes": _peak_rss_bytes(),
        }
        if run.gpu_seconds is not None:
            record["gpu_seconds"] = run.gpu_seconds
        _append(path, record)
