"""Time-bucketed rings of counts: a window is the sum of its buckets.

The ring keeps two windows' worth of buckets (the current window and the previous one, for
drift) plus the bucket being filled. Each named array has a leading bucket axis; integer
counts are kept as int32 per bucket (a bucket is short) and summed in 64-bit; float arrays
keep the dtype asked for.
"""

from __future__ import annotations

import numpy as np


class BucketRing:
    def __init__(self, bucket_seconds: float, window_seconds: float, shapes: dict[str, tuple]):
        self.bucket_seconds = bucket_seconds
        self.per_window = max(1, round(window_seconds / bucket_seconds))
        self.size = 2 * self.per_window + 1
        self.ids = np.full(self.size, -1, np.int64)
        self.arrays: dict[str, np.ndarray] = {}
        for name, (shape, dtype) in shapes.items():
            small = np.int32 if np.dtype(dtype).kind in "iu" else dtype
            self.arrays[name] = np.zeros((self.size, *shape), small)

    def bucket_of(self, timestamps: np.ndarray) -> np.ndarray:
        return np.floor(timestamps / self.bucket_seconds).astype(np.int64)

    def place(
        self, timestamps: np.ndarray, now: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Bucket ids for records at wall-clock ``now``, and (too old, future) masks.

        Records up to one bucket ahead (clock skew) go into the current bucket; records
        further ahead, or older than the ring, are not windowed (the caller counts them).
        """
        current = int(np.floor(now / self.bucket_seconds))
        ids = self.bucket_of(timestamps)
        too_old = ids < current - 2 * self.per_window
        future = ids > current + 1
        return np.minimum(ids, current), too_old, future

    def slot(self, bucket_id: int) -> int:
        i = bucket_id % self.size
        if self.ids[i] != bucket_id:
            for arr in self.arrays.values():
                arr[i] = 0
            self.ids[i] = bucket_id
        return i

    def add(self, bucket_id: int, name: str, values: np.ndarray) -> None:
        self.arrays[name][self.slot(bucket_id)] += values.astype(self.arrays[name].dtype)

    def window(self, name: str, now: float, back: int = 0) -> np.ndarray:
        """Sum over the window ending at ``now`` (``back``=1: the window before it)."""
        current = int(np.floor(now / self.bucket_seconds)) - back * self.per_window
        lo, hi = current - self.per_window, current
        mask = (self.ids > lo) & (self.ids <= hi)
        arr = self.arrays[name]
        wide = np.int64 if arr.dtype.kind in "iu" else np.float64
        return arr[mask].sum(axis=0, dtype=wide)

    def clear_row(self, name: str, index: int) -> None:
        """Zero one row of an array in every bucket (a freed version slot)."""
        self.arrays[name][:, index] = 0
