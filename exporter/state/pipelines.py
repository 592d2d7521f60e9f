"""Per-pipeline run history from the run log, and resource use sampled from the host."""

from __future__ import annotations

from collections import Counter, OrderedDict, deque

import numpy as np

from exporter.config import Pipeline
from exporter.stats.plan import RunCost

# Run durations: a minute to a day.
DURATION_BUCKETS = (60.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0)
MAX_RUNNING = 1000  # open runs tracked per pipeline (a crashed run never closes)
MAX_FINISHED_IDS = 10_000  # finished run ids remembered, so a repeated record counts once
MAX_HISTORY = 100  # finished runs' costs kept for quota plans (plan_runs <= this is used)


class PipelineState:
    def __init__(self, pipeline: Pipeline):
        self.pipeline = pipeline
        self.runs = Counter()  # succeeded / failed
        self.histogram = np.zeros(len(DURATION_BUCKETS) + 1, np.int64)
        self.duration_sum = 0.0
        self.last_success = 0.0
        self.last_duration: float | None = None
        self.last_peak_memory: float | None = None
        self.resources = Counter()  # cpu_seconds / gpu_seconds of finished runs
        # The last finished runs' costs, for quota plans (bounded).
        self.history: deque[RunCost] = deque(maxlen=MAX_HISTORY)
        self.running: OrderedDict[str, float | None] = OrderedDict()  # run id -> start
        self.finished: OrderedDict[str, None] = OrderedDict()
        # Host sampling (psutil / NVML), replaced on every sample.
        self.cpu_seconds = 0.0  # counter: CPU time of matched processes, accumulated
        self.memory_bytes = 0.0
        self.gpu_memory_bytes = 0.0
        self.gpu_utilization = 0.0  # SM busy of its processes, summed over GPUs (1 = one GPU)
        self.gpu_seconds = 0.0  # counter: GPU-busy seconds, integrated from utilisation
        self.processes = 0

    def apply(self, record, start: float | None, end: float | None) -> dict | None:
        """Apply one run record; returns the finished run's resource use, if it finished."""
        run_id = str(record.run_id)
        if record.status == "running":
            if run_id not in self.finished:
                self.running[run_id] = start
                self.running.move_to_end(run_id)
                while len(self.running) > MAX_RUNNING:
                    self.running.popitem(last=False)
            return None
        if run_id in self.finished:
            return None  # a duplicate record of a finished run
        self.finished[run_id] = None
        while len(self.finished) > MAX_FINISHED_IDS:
            self.finished.popitem(last=False)
        start = start if start is not None else self.running.get(run_id)
        self.running.pop(run_id, None)
        self.runs[record.status] += 1
        if start is not None and end is not None and end >= start:
            duration = end - start
            self.histogram[np.searchsorted(DURATION_BUCKETS, duration, side="left")] += 1
            self.duration_sum += duration
            self.last_duration = duration
        if record.status == "succeeded":
            self.last_success = max(self.last_success, end if end is not None else start or 0.0)
        if record.peak_memory_bytes is not None:
            self.last_peak_memory = record.peak_memory_bytes
        self.history.append(
            RunCost(start, end, record.cpu_seconds, record.gpu_seconds, record.peak_memory_bytes)
        )
        used = {}
        for resource in ("cpu_seconds", "gpu_seconds"):
            value = getattr(record, resource)
            if value is not None and value >= 0:
                self.resources[resource] += value
                used[resource] = value
        return {"time": end if end is not None else start, **used}

    def oldest_running_start(self) -> float | None:
        starts = [s for s in self.running.values() if s is not None]
        return min(starts) if starts else None
