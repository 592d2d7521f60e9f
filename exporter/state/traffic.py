"""A model's windowed traffic: records per version slot and latency, per time bucket."""

from __future__ import annotations

import numpy as np

from exporter.state.windows import BucketClock, BucketRing
from exporter.stats.capacity import peak_rate


class TrafficWindow:
    """Zero: a new window; update: ``add``; merge: ``merge`` or the window sums."""

    def __init__(self, clock: BucketClock, n_slots: int):
        self.ring = BucketRing(
            clock,
            {
                "records": ((n_slots,), np.int64),
                "latency": ((2,), np.float64),  # sum of latencies, requests with a latency
            },
        )

    def add(
        self, buckets: np.ndarray, slots: np.ndarray, latency: np.ndarray, grouped=None
    ) -> None:
        """Records with their time buckets: version slots and latencies (NaN: none).
        ``grouped``: ``np.unique(buckets, return_inverse=True)``, if the caller has it."""
        if not len(buckets):
            return
        n_slots = self.ring.shape("records")[-1]
        ids, groups = grouped or np.unique(buckets, return_inverse=True)
        n = len(ids)
        records = np.bincount(groups * n_slots + slots, minlength=n * n_slots)
        records = records.reshape(n, n_slots)
        timed = ~np.isnan(latency)
        total = np.bincount(groups[timed], weights=latency[timed], minlength=n)
        timed_count = np.bincount(groups[timed], minlength=n)
        latency_sums = np.stack([total, timed_count], axis=1)
        self.ring.add_buckets(ids, {"records": records, "latency": latency_sums})

    def clear_slot(self, slot: int) -> None:
        self.ring.clear_row("records", slot)

    def merge(self, other: TrafficWindow) -> None:
        self.ring.merge(other.ring)

    def records(self, now: float, back: int = 0) -> np.ndarray:
        """Records per version slot in the window (``back``=1: the one before)."""
        return self.ring.window("records", now, back)

    def mean_latency(self, now: float) -> float | None:
        total, n = self.ring.window("latency", now)
        return float(total / n) if n else None

    def last_bucket_rate(self, now: float) -> float:
        """Requests per second in the last complete bucket."""
        buckets = self.ring.per_bucket("records", now)
        last = buckets.get(self.ring.clock.current(now) - 1)
        return 0.0 if last is None else float(last.sum()) / self.ring.bucket_seconds

    def peak_rate(self, now: float) -> float | None:
        """The window's peak request rate (``stats.capacity.peak_rate``) over its buckets
        from the first that saw a request to the current one; None before any request."""
        ids, totals = self.ring.bucket_totals("records", now)
        seen = ids[totals > 0]
        if not seen.size:
            return None
        first, current = int(seen.min()), self.ring.clock.current(now)
        counts = np.zeros(current - first + 1, np.int64)
        after = ids >= first
        counts[ids[after] - first] = totals[after]
        return peak_rate(counts, self.ring.bucket_seconds)
