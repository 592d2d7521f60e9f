"""A multiclass model's class probabilities per version slot, per time bucket, reduced to
what the one-vs-rest quality estimate needs (stats/estimate.estimate_multiclass).

Each row's score of each class is binned on the reference's bins of that class's score and
calibrated there (the map learned once from the reference), then the row's calibrated
probabilities are normalised to sum to one (as NannyML's CBPE does). Kept per class: rows
and expected rows of the class per score bin (its ROC AUC), the sums of
``estimate.CLASS_SUMS`` (its confusion matrix, accuracy), and the products of pairs of
classes' probabilities (the band). All are sums: buckets, windows
and exporters with the same reference merge by addition.

Memory per time bucket: version slots × classes × (8 × bins + 24 + 16 × classes) bytes
(rows int32, expected float32, sums and moments float64); 6 slots, 3 classes, 101 bins:
15 KB, so 1.8 MB for a 1 h / 1 min window (the ring keeps two windows) and for 24 h /
5 min (held in 30 min buckets, windows.MAX_PROFILE_BUCKETS). Allocated only
once a row with scores arrives.
"""

from __future__ import annotations

import numpy as np

from exporter.state.profiles import ColumnSpecs, bin_matrix
from exporter.state.windows import BucketClock, BucketRing
from exporter.stats import estimate


class ClassScoreWindow:
    """Zero: a new window; update: ``add``; merge: ``merge`` or the ``window`` sums."""

    def __init__(
        self, clock: BucketClock, specs: ColumnSpecs, calibrated: np.ndarray, n_slots: int
    ):
        self.specs = specs  # one numeric spec per class, in the order of ``classes``
        self.calibrated = np.clip(np.nan_to_num(calibrated, nan=0.0), 0.0, 1.0)
        self.classes, self.bins = self.calibrated.shape
        k, b = self.classes, self.bins
        self.ring = BucketRing(
            clock,
            {
                "rows": ((n_slots, k, b), np.int64),
                "expected": ((n_slots, k, b), np.float32),
                "sums": ((n_slots, k, len(estimate.CLASS_SUMS)), np.float64),
                "moments": ((n_slots, 2, k, k), np.float64),
            },
            profile=True,
        )
        self.n_slots = n_slots

    def add(self, bucket: int, slots: np.ndarray, scores: np.ndarray, predicted: np.ndarray):
        """Rows of ``scores`` (rows, classes; a row with a NaN is skipped) whose predicted
        class is ``predicted`` (index into the classes; -1: the highest score)."""
        ok = ~np.isnan(scores).any(axis=1)
        if not ok.any():
            return
        scores, slots, predicted = scores[ok], slots[ok], predicted[ok]
        k, b = self.classes, self.bins
        bins = bin_matrix(self.specs, scores)
        c = self.calibrated[np.arange(k), bins]
        total = c.sum(axis=1, keepdims=True)
        c = np.divide(c, total, out=np.full_like(c, 1.0 / k), where=total > 0)
        predicted = np.where(predicted >= 0, predicted, scores.argmax(axis=1))
        is_pred = predicted[:, None] == np.arange(k)
        cells = (slots[:, None] * k + np.arange(k)) * b + bins  # (slot, class, bin), flat
        size = self.n_slots * k * b
        shape = (self.n_slots, k, b)
        self.ring.add(bucket, "rows", np.bincount(cells.ravel(), minlength=size).reshape(shape))
        expected = np.bincount(cells.ravel(), weights=c.ravel(), minlength=size)
        self.ring.add(bucket, "expected", expected.reshape(shape))
        pair = (slots[:, None] * k + np.arange(k)).ravel()  # (slot, class), flat
        flags, flat_c = is_pred.ravel(), c.ravel()
        sums = np.stack(
            [
                np.bincount(pair, weights=flags.astype(float), minlength=self.n_slots * k),
                np.bincount(pair, weights=np.where(flags, flat_c, 0.0), minlength=self.n_slots * k),
                np.bincount(pair, weights=np.where(flags, 0.0, flat_c), minlength=self.n_slots * k),
            ],
            axis=1,
        )
        self.ring.add(bucket, "sums", sums.reshape(self.n_slots, k, -1))
        moments = np.zeros((self.n_slots, 2, k, k))
        own = np.where(is_pred, c, 0.0)  # each row's predicted class's c, in its column
        for slot in np.unique(slots):
            rows = slots == slot
            moments[slot, 0] = c[rows].T @ c[rows]
            moments[slot, 1] = own[rows].T @ c[rows]
        self.ring.add(bucket, "moments", moments)

    def window(self, now: float, slot: int) -> tuple[np.ndarray, ...]:
        """One version slot's (sums, rows per bin, expected rows per bin, moments) over the
        window: ``estimate.estimate_multiclass``'s arguments."""
        return tuple(
            self.ring.window(name, now)[slot] for name in ("sums", "rows", "expected", "moments")
        )

    def estimate(self, now: float, slot: int, minimum: int = 0) -> dict[str, tuple[float, float]]:
        """The slot's estimate over the window; none below ``minimum`` rows with scores."""
        found = self.window(now, slot)
        if found[1][0].sum() < minimum:
            return {}
        return estimate.estimate_multiclass(*found)

    def clear_slot(self, slot: int) -> None:
        for name in self.ring.arrays:
            self.ring.clear_row(name, slot)

    def merge(self, other: ClassScoreWindow) -> None:
        self.ring.merge(other.ring)
