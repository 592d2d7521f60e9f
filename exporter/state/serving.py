"""Serving counters per model and version slot, updated a batch at a time with numpy."""

from __future__ import annotations

import time

import numpy as np

from exporter.state.batches import ParsedBatch
from exporter.state.versions import VersionSlots

SUCCESS, ERROR = 0, 1


class ServingCounters:
    """Requests, latency histogram and last request time for one model's versions."""

    def __init__(self, buckets: tuple[float, ...], slots: VersionSlots):
        self.buckets = np.asarray(buckets, dtype=float)
        self.slots = slots
        n = slots.max_versions + 1
        self.requests = np.zeros((n, 2), np.int64)
        # Non-cumulative counts per bucket; the last column is (largest bucket, +Inf).
        self.histogram = np.zeros((n, len(buckets) + 1), np.int64)
        self.latency_sum = np.zeros(n)
        self.latency_count = np.zeros(n, np.int64)
        self.last_timestamp = np.zeros(n)

    def reset_slot(self, slot: int) -> None:
        for arr in (self.requests, self.histogram, self.latency_sum, self.latency_count):
            arr[slot] = 0
        self.last_timestamp[slot] = 0

    def merge(self, other: ServingCounters) -> None:
        """Add another shard's counters (same buckets and version slots)."""
        for mine, theirs in (
            (self.requests, other.requests),
            (self.histogram, other.histogram),
            (self.latency_sum, other.latency_sum),
            (self.latency_count, other.latency_count),
        ):
            mine += theirs
        np.maximum(self.last_timestamp, other.last_timestamp, out=self.last_timestamp)

    def apply(self, rows: np.ndarray, slot: np.ndarray, batch: ParsedBatch, now: float) -> None:
        """Add the records ``rows`` of ``batch``, already mapped to version ``slot``s."""
        n = self.requests.shape[0]
        error = batch.error[rows].astype(np.int64)
        self.requests += np.bincount(slot * 2 + error, minlength=n * 2).reshape(n, 2)
        latency = batch.latency[rows]
        has = ~np.isnan(latency)
        if has.any():
            s, lat = slot[has], latency[has]
            width = len(self.buckets) + 1
            bucket = np.searchsorted(self.buckets, lat, side="left")  # le is inclusive
            self.histogram += np.bincount(s * width + bucket, minlength=n * width).reshape(n, width)
            self.latency_sum += np.bincount(s, weights=lat, minlength=n)
            self.latency_count += np.bincount(s, minlength=n)
        # Future timestamps (clock skew upstream) are clamped to now.
        ts = np.minimum(batch.timestamp[rows], now)
        np.maximum.at(self.last_timestamp, slot, ts)


def slots_for(slots: VersionSlots, versions: list[str], now: float | None = None) -> np.ndarray:
    """Slot index of each record's version (new versions claim slots in first-seen order)."""
    now = time.time() if now is None else now
    lookup = {v: slots.slot(v, now) for v in dict.fromkeys(versions)}
    return np.fromiter(map(lookup.__getitem__, versions), np.int64, len(versions))
