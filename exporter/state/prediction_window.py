"""A model's predictions per version slot, binned on the reference's prediction bins (or
fixed bins for scores), per time bucket: what prediction skew, drift and canary divergence
are computed from."""

from __future__ import annotations

import numpy as np

from exporter.state.profiles import CategoricalSpec, NumericSpec, canonical_category
from exporter.state.windows import SPARSE_RATIO, BucketClock, BucketRing
from exporter.stats import drift


class PredictionWindow:
    """Zero: a new window; update: ``values`` then ``add``; merge: ``merge`` or ``counts``."""

    def __init__(self, clock: BucketClock, spec: NumericSpec | CategoricalSpec, n_slots: int):
        self.spec = spec
        self.n_slots = n_slots
        shapes = {"pred": ((n_slots, spec.bins), np.int64)}
        if isinstance(spec, NumericSpec):
            shapes["pred_sums"] = ((n_slots, spec.bins), np.float32)
        self.ring = BucketRing(clock, shapes, profile=True)
        # Since start, per version slot: bin counts and the value sum (Fleet's counters).
        self.total = np.zeros((n_slots, spec.bins), np.int64)
        self.total_sum = np.zeros(n_slots)

    def values(self, raw: list) -> np.ndarray:
        """Predictions as bin codes (categorical) or floats (NaN: not a number)."""
        if isinstance(self.spec, CategoricalSpec):
            return self.spec.codes([canonical_category(p) for p in raw])[0]
        if raw.count(None) == len(raw):  # a log without predictions: no list to build
            return np.full(len(raw), np.nan)
        return np.array([p if isinstance(p, float) else np.nan for p in raw], dtype=float)

    def add(self, buckets: np.ndarray, slots: np.ndarray, values: np.ndarray, grouped=None) -> None:
        """Predictions with their time buckets and version slots (``values``' codes or
        floats); binned once, whatever the buckets they span. ``grouped``:
        ``np.unique(buckets, return_inverse=True)``, if the caller has it."""
        spec, width = self.spec, self.spec.bins
        if not len(buckets):
            return
        ids, groups = grouped or np.unique(buckets, return_inverse=True)
        n, size = len(ids), self.n_slots * width
        if isinstance(spec, CategoricalSpec):
            ok = values >= 0
            idx = slots[ok] * width + values[ok]
        else:
            ok = ~np.isnan(values)
            idx = slots[ok] * width + np.searchsorted(spec.edges, values[ok], side="right")
        if not len(idx):
            return  # no prediction to bin: the ring is left as it is (no write, no change)
        has_sums = self.ring.declared("pred_sums")
        if len(idx) * SPARSE_RATIO < n * size:
            # A few records over many buckets (a backfill read with many models): each
            # record's cell, not every bucket's slots x bins (as FeatureWindow.add).
            within = idx.copy()
            idx += groups[ok] * size
            cells = {"pred": (idx, None)}
            if has_sums:
                cells["pred_sums"] = (idx, values[ok])
                self.total_sum += np.bincount(slots[ok], values[ok], self.n_slots)
            self.ring.add_cells(ids, cells)
            self.total += np.bincount(within, minlength=size).reshape(self.n_slots, width)
            return
        idx += groups[ok] * size
        shape = (n, self.n_slots, width)
        counts = np.bincount(idx, minlength=n * size).reshape(shape)
        added = {"pred": counts}
        if has_sums:
            sums = np.bincount(idx, weights=values[ok], minlength=n * size).reshape(shape)
            self.total_sum += sums.sum(axis=(0, 2))
            added["pred_sums"] = sums
        self.ring.add_buckets(ids, added)
        self.total += counts.sum(axis=0)

    def clear_slot(self, slot: int) -> None:
        for name in self.ring.arrays:
            self.ring.clear_row(name, slot)
        self.total[slot] = 0
        self.total_sum[slot] = 0.0

    def merge(self, other: PredictionWindow) -> None:
        self.ring.merge(other.ring)
        self.total += other.total
        self.total_sum += other.total_sum

    def totals(self) -> tuple[np.ndarray, np.ndarray]:
        """Since start, per version slot: bin counts and the sum of the values."""
        return self.total, self.total_sum

    def counts(self, now: float, back: int, slot: int):
        """One version slot's window: bin counts, or NumericCounts for numbers."""
        counts = self.ring.window("pred", now, back)[slot]
        if isinstance(self.spec, CategoricalSpec):
            return counts
        return drift.NumericCounts(counts, self.ring.window("pred_sums", now, back)[slot])
