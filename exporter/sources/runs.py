"""Pipeline run-log lines -> run records, counting unusable lines. Pure: bytes in, records out.

A line: ``{"pipeline": "train-fraud", "kind": "training", "run_id": "r1", "status":
"running|succeeded|failed", "start": ..., "end": ..., "cpu_seconds": ..., "gpu_seconds": ...,
"peak_memory_bytes": ...}``; times are RFC 3339 strings or epoch seconds.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import msgspec

from exporter.sources.jsonlines import classify, decode_lines
from exporter.sources.timestamps import parse_one
from exporter.state.batches import InvalidSample

STATUSES = ("running", "succeeded", "failed")


class RunRecord(msgspec.Struct, gc=False):
    pipeline: str
    run_id: str | int
    status: str
    kind: str | None = None
    start: str | float | None = None
    end: str | float | None = None
    cpu_seconds: float | None = None
    gpu_seconds: float | None = None
    peak_memory_bytes: float | None = None


@dataclass
class RunBatch:
    lines: int = 0
    records: list = field(default_factory=list)
    invalid: Counter = field(default_factory=Counter)
    sample: InvalidSample = field(default_factory=InvalidSample)


def _time(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        t = parse_one(value)
        return None if t != t else t  # NaN: unparsable
    return float(value)


class RunLogParser:
    def __init__(self, pipelines: list[str]):
        self.pipelines = set(pipelines)
        self._one = msgspec.json.Decoder(RunRecord)

    def parse(self, data: bytes, oversized: int = 0) -> RunBatch:
        batch = RunBatch(lines=data.count(b"\n") + oversized)
        if oversized:
            batch.invalid["too_long"] += oversized
        records = decode_lines(
            data, self._one, lambda line, exc: batch.sample.keep(line, classify(batch.invalid, exc))
        )
        for rec in records:
            if rec.status not in STATUSES:
                batch.invalid["wrong_type"] += 1
                continue
            if rec.pipeline not in self.pipelines:
                batch.invalid["unknown_pipeline"] += 1
                continue
            start, end = _time(rec.start), _time(rec.end)
            if (rec.start is not None and start is None) or (rec.end is not None and end is None):
                batch.invalid["bad_timestamp"] += 1
                continue
            batch.records.append((rec, start, end))
        return batch
