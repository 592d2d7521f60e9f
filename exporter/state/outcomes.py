"""A model's outcomes: joined labels, binned for label skew and drift, and the sums that
quality metrics are computed from, per version slot and time bucket."""

from __future__ import annotations

import numpy as np

from exporter.state.profiles import (
    CategoricalSpec,
    ColumnSpecs,
    NumericSpec,
    bin_numeric,
    canonical_category,
)
from exporter.state.windows import BucketClock, BucketRing
from exporter.stats import drift, quality

POSITIVE_LABELS = frozenset({"1", "true"})
_SUMS = {
    "binary_classification": quality.BINARY_SUMS,
    "regression": quality.REGRESSION_SUMS,
    "multiclass": quality.MULTICLASS_SUMS,
}


class OutcomeWindow:
    """Zero: a new window; update: ``add``; merge: ``merge`` or the window readers."""

    def __init__(
        self,
        clock: BucketClock,
        task: str,
        label_spec: NumericSpec | CategoricalSpec | None,
        n_slots: int,
        decision_threshold: float,
        labelled: bool = True,
    ):
        """``labelled``: the model has label files; without, nothing is ever joined and no
        window is allocated (an AUC ring alone is 0.9 MB a model at 24 h / 5 min)."""
        self.task, self.label_spec, self.n_slots = task, label_spec, n_slots
        self.decision_threshold = decision_threshold
        shapes: dict[str, tuple] = {}
        if labelled:
            shapes["quality"] = ((n_slots, len(_SUMS[task])), np.float64)
        if labelled and task == "binary_classification":
            shapes["auc"] = ((n_slots, 2, quality.AUC_BINS), np.int64)
        if labelled and label_spec is not None:
            shapes["label"] = ((label_spec.bins,), np.int64)
            if isinstance(label_spec, NumericSpec):
                shapes["label_sums"] = ((label_spec.bins,), np.float64)
        self.ring = BucketRing(clock, shapes, profile=True)
        # Since start: joined labels' bin counts and value sum (Fleet's counters).
        self.label_total = np.zeros(label_spec.bins if label_spec else 0, np.int64)
        self.label_total_sum = 0.0

    def add(self, bucket: int, slots: np.ndarray, predictions: list, labels: list) -> None:
        """One bucket's joined pairs: version slots, raw predictions, canonical labels."""
        self._add_labels(bucket, labels)
        self._add_quality(bucket, slots, predictions, labels)

    def _add_labels(self, bucket: int, labels: list) -> None:
        spec = self.label_spec
        if spec is None:
            return
        if isinstance(spec, CategoricalSpec):
            codes = spec.codes(labels)[0]
            counts = np.bincount(codes[codes >= 0], minlength=spec.bins)
            self.ring.add(bucket, "label", counts)
            self.label_total += counts
        else:
            values = np.array([v if isinstance(v, int | float) else np.nan for v in labels], float)
            counts, sums = bin_numeric(ColumnSpecs((spec,)), values[:, None])
            self.ring.add(bucket, "label", counts[0, : spec.bins])
            self.ring.add(bucket, "label_sums", sums[0, : spec.bins])
            self.label_total += counts[0, : spec.bins]
            self.label_total_sum += float(sums.sum())

    def _add_quality(self, bucket: int, slots: np.ndarray, predictions: list, labels: list):
        sums = np.zeros((self.n_slots, len(_SUMS[self.task])))
        if self.task == "binary_classification":
            scores = np.array([p if isinstance(p, float) else np.nan for p in predictions])
            positive = np.array([lab in POSITIVE_LABELS for lab in labels])
            ok = ~np.isnan(scores)
            hist = np.zeros((self.n_slots, 2, quality.AUC_BINS), np.int64)
            for s in np.unique(slots[ok]):
                sel = ok & (slots == s)
                sums[s] = quality.binary_sums(scores[sel], positive[sel], self.decision_threshold)
                hist[s] = quality.score_histograms(scores[sel], positive[sel])
            self.ring.add(bucket, "auc", hist)
        elif self.task == "regression":
            preds = np.array([p if isinstance(p, float) else np.nan for p in predictions])
            truth = np.array([v if isinstance(v, int | float) else np.nan for v in labels], float)
            ok = ~np.isnan(preds) & ~np.isnan(truth)
            for s in np.unique(slots[ok]):
                sel = ok & (slots == s)
                sums[s] = quality.regression_sums(preds[sel], truth[sel])
        else:
            canon = [canonical_category(p) for p in predictions]
            for s in np.unique(slots):
                sel = np.flatnonzero(slots == s)
                correct = sum(canon[i] is not None and canon[i] == labels[i] for i in sel)
                sums[s] = (len(sel), correct)
        self.ring.add(bucket, "quality", sums)

    def clear_slot(self, slot: int) -> None:
        for name in ("quality", "auc"):
            if name in self.ring.arrays:
                self.ring.clear_row(name, slot)

    def merge(self, other: OutcomeWindow) -> None:
        self.ring.merge(other.ring)
        self.label_total += other.label_total
        self.label_total_sum += other.label_total_sum

    def label_totals(self) -> tuple[np.ndarray, float]:
        """Since start: joined labels' bin counts and the sum of numeric labels."""
        return self.label_total, self.label_total_sum

    def label_counts(self, now: float, back: int = 0):
        if not self.ring.declared("label"):  # no labels configured: an empty window
            counts = np.zeros(self.label_spec.bins, np.int64)
            if isinstance(self.label_spec, CategoricalSpec):
                return counts
            return drift.NumericCounts(counts, np.zeros(self.label_spec.bins))
        counts = self.ring.window("label", now, back)
        if isinstance(self.label_spec, CategoricalSpec):
            return counts
        return drift.NumericCounts(counts, self.ring.window("label_sums", now, back))

    def metrics(self, now: float, min_samples: int) -> dict[int, dict[str, float]]:
        """Quality metrics of each version slot's window with at least ``min_samples``
        joined pairs."""
        if not self.ring.declared("quality"):
            return {}
        sums = self.ring.window("quality", now)
        auc = self.ring.window("auc", now) if self.ring.declared("auc") else None
        out = {}
        for slot in np.flatnonzero(sums[:, 0] >= min_samples):
            if self.task == "binary_classification":
                out[int(slot)] = quality.binary_metrics(sums[slot], auc[slot])
            elif self.task == "regression":
                out[int(slot)] = quality.regression_metrics(sums[slot])
            else:
                out[int(slot)] = quality.multiclass_metrics(sums[slot])
        return out
