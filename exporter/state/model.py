"""Everything kept per model: serving counters, windows of profiles, data-quality counts,
the label join, and the latest skew/drift/quality results computed from them."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from exporter.config import Model
from exporter.state.compare import column_compare, column_scores, profile_compare
from exporter.state.join import JoinBuffer
from exporter.state.profiles import (
    MALFORMED,
    MISSING,
    STATUSES,
    VALID,
    CategoricalSpec,
    ColumnSpecs,
    NumericSpec,
    Profile,
    bin_categorical,
    bin_numeric,
    canonical_category,
    numeric_status,
    status_counts,
)
from exporter.state.reference import ColumnProfile, ReferenceProfile
from exporter.state.serving import ServingCounters
from exporter.state.versions import VersionSlots
from exporter.state.windows import BucketRing
from exporter.stats import drift, quality, verdict
from exporter.stats.capacity import replicas_for

POSITIVE_LABELS = frozenset({"1", "true"})
UNIFORM = np.linspace(0.0, 1.0, 1001)


@dataclass
class Results:
    """The latest statistics, computed in the ingest thread and read by scrapes."""

    feature_skew: dict = field(default_factory=dict)  # (feature, method) -> value
    feature_drift: dict = field(default_factory=dict)
    prediction_skew: dict = field(default_factory=dict)  # (version, method) -> value
    prediction_drift: dict = field(default_factory=dict)
    prediction_divergence: dict = field(default_factory=dict)
    label_skew: dict = field(default_factory=dict)  # method -> value
    label_drift: dict = field(default_factory=dict)
    # (kind, name, comparison) -> (p-value, effect); kind feature|prediction|label, name the
    # feature, the version, or "" for labels; comparison skew|drift.
    tests: dict = field(default_factory=dict)
    drifted: set = field(default_factory=set)  # keys of ``tests`` decided drifted
    pvalue_threshold: dict = field(default_factory=dict)  # comparison -> threshold in force
    window_samples: dict = field(default_factory=dict)  # version -> records in the window
    quality: dict = field(default_factory=dict)  # (version, metric) -> value
    capacity: dict = field(default_factory=dict)  # peak_qps, concurrency, replicas
    stable_version: str | None = None  # what canaries are compared with
    computed_at: float = 0.0


def _one_column(part: ColumnProfile | None):
    """(spec, reference counts) of a one-column ColumnProfile, or (None, None)."""
    if part is None:
        return None, None
    specs, prof = part.specs, part.profile
    if specs.numeric:
        spec = specs.numeric[0]
        return spec, drift.NumericCounts(prof.numeric[0, : spec.bins], prof.sums[0, : spec.bins])
    spec = specs.categorical[0]
    return spec, prof.categorical[0, : spec.bins]


class ModelState:
    def __init__(
        self,
        model: Model,
        buckets: tuple[float, ...],
        reference: ReferenceProfile | None = None,
        numeric: list[str] | None = None,
        categorical: list[str] | None = None,
    ):
        self.model = model
        self.reference = reference
        self.slots = VersionSlots(model.max_versions, idle_seconds=model.windows.length)
        self.serving = ServingCounters(buckets, self.slots)
        n_slots = model.max_versions + 1
        if reference is not None:
            self.specs = reference.features.specs
            numeric = [s.name for s in self.specs.numeric]
            categorical = [s.name for s in self.specs.categorical]
        else:
            self.specs = None
        self.numeric = list(numeric or [])
        self.categorical = list(categorical or [])
        self.values = np.zeros((len(self.numeric) + len(self.categorical), len(STATUSES)), np.int64)
        self.prediction_spec, self.prediction_ref = self._prediction_spec(reference)
        self.label_spec, self.label_ref = _one_column(reference.label if reference else None)
        shapes: dict[str, tuple] = {
            "records": ((n_slots,), np.int64),
            "latency": ((2,), np.float64),  # sum of latencies, requests with a latency
        }
        if self.specs is not None:
            shapes["num"] = ((len(self.numeric), self.specs.numeric_width), np.int64)
            # float32 halves the biggest array; W1 from these sums loses ~1e-7 relative.
            shapes["num_sums"] = ((len(self.numeric), self.specs.numeric_width), np.float32)
            shapes["cat"] = ((len(self.categorical), self.specs.categorical_width), np.int64)
        if self.prediction_spec is not None:
            shapes["pred"] = ((n_slots, self.prediction_spec.bins), np.int64)
            shapes["pred_sums"] = ((n_slots, self.prediction_spec.bins), np.float32)
        if self.label_spec is not None:
            shapes["label"] = ((self.label_spec.bins,), np.int64)
            shapes["label_sums"] = ((self.label_spec.bins,), np.float64)
        sums = {
            "binary_classification": quality.BINARY_SUMS,
            "regression": quality.REGRESSION_SUMS,
            "multiclass": quality.MULTICLASS_SUMS,
        }[model.task]
        shapes["quality"] = ((n_slots, len(sums)), np.float64)
        if model.task == "binary_classification":
            shapes["auc"] = ((n_slots, 2, quality.AUC_BINS), np.int64)
        self.ring = BucketRing(model.windows.bucket, model.windows.length, shapes)
        self.dropped = Counter()  # records not windowed: too_old / future
        self.labels = Counter()  # label join results
        self.join = (
            JoinBuffer(model.label_join.max_pending, model.label_join.max_delay, self.labels)
            if model.labels
            else None
        )
        self.results = Results()

    def carry_serving(self, old: ModelState) -> None:
        """Take over ``old``'s serving counters, version slots and label join (same model,
        its reference newly built): requests counted so far stay counted."""
        if old.model.max_versions != self.model.max_versions:
            return
        self.slots, self.serving = old.slots, old.serving
        self.join, self.labels, self.dropped = old.join, old.labels, old.dropped

    def _prediction_spec(self, reference: ReferenceProfile | None):
        spec, counts = _one_column(reference.prediction if reference else None)
        if spec is not None:
            return spec, counts
        task = self.model.task
        if task == "binary_classification":
            # Scores in [0, 1]: fixed fine bins, so prediction drift works without a reference.
            return NumericSpec.from_sample("prediction", UNIFORM, 0.0, 1.0, 0.2887), None
        label_spec, _ = _one_column(reference.label if reference else None)
        # Predictions share the label's domain: bin them on the label's edges.
        return label_spec, None

    # --- ingestion --------------------------------------------------------------------

    def reset_slot(self, slot: int) -> None:
        self.serving.reset_slot(slot)
        for name in ("records", "pred", "pred_sums", "quality", "auc"):
            if name in self.ring.arrays:
                self.ring.clear_row(name, slot)

    def apply(self, rows, slots, batch, num_cols, cat_cols, now: float) -> None:
        """Add records ``rows`` of ``batch`` (versions already mapped to ``slots``)."""
        self.serving.apply(rows, slots, batch, now)
        numeric = batch.numeric[np.ix_(rows, num_cols)] if num_cols else None
        num_bad = (
            batch.numeric_malformed[np.ix_(rows, num_cols)]
            if num_cols and batch.numeric_malformed is not None
            else None
        )
        everything = len(rows) == batch.records
        taken = None if everything else pa.array(rows)
        cat_values = [
            batch.categorical[c] if everything else batch.categorical[c].take(taken)
            for c in cat_cols
        ]
        cat_bad = (
            batch.categorical_malformed[np.ix_(rows, cat_cols)]
            if cat_cols and batch.categorical_malformed is not None
            else None
        )
        codes = self._data_quality(numeric, num_bad, cat_values, cat_bad)
        bucket, too_old, future = self.ring.place(batch.timestamp[rows], now)
        self.dropped["too_old"] += int(too_old.sum())
        self.dropped["future"] += int(future.sum())
        keep = ~(too_old | future)
        raw_predictions = [batch.prediction[r] for r in rows]
        if self.join is not None:
            matched = self.join.add_predictions(
                [batch.request_id[r] for r in rows],
                batch.timestamp[rows],
                [batch.version[r] for r in rows],
                raw_predictions,
                now,
            )
            self.add_matched(matched, now)
        predictions = self._prediction_values(raw_predictions)
        for b in np.unique(bucket[keep]):
            sel = keep & (bucket == b)
            s = slots[sel]
            self.ring.add(b, "records", np.bincount(s, minlength=self.slots.max_versions + 1))
            lat = batch.latency[rows[sel]]
            lat = lat[~np.isnan(lat)]
            self.ring.add(b, "latency", np.array([lat.sum(), lat.size]))
            if self.specs is not None:
                counts, sums = bin_numeric(self.specs, numeric[sel])
                self.ring.add(b, "num", counts)
                self.ring.add(b, "num_sums", sums)
                self.ring.add(b, "cat", bin_categorical(self.specs, codes[sel]))
            if self.prediction_spec is not None:
                self._add_predictions(b, s, predictions[sel])

    def _data_quality(self, numeric, num_bad, cat_values, cat_bad) -> np.ndarray | None:
        """Count each value's status; categorical bin codes (rows, F_cat) if profiled."""
        n_num = len(self.numeric)
        if numeric is not None and numeric.size:
            if self.specs is not None:
                status = numeric_status(self.specs, numeric, self.model.out_of_range_margin)
            else:
                status = np.where(np.isnan(numeric), MISSING, VALID).astype(np.int8)
            if num_bad is not None:
                status[num_bad] = MALFORMED
            self.values[:n_num] += status_counts(status)
        if not cat_values:
            return np.empty((0, 0), np.int64)
        n = len(cat_values[0])
        codes = np.full((n, len(cat_values)), -1, np.int64)
        status = np.empty((n, len(cat_values)), np.int8)
        for j, values in enumerate(cat_values):
            if self.specs is not None:
                codes[:, j], status[:, j] = self.specs.categorical[j].codes_array(values)
            else:
                status[:, j] = np.where(
                    values.is_null().to_numpy(zero_copy_only=False), MISSING, VALID
                )
        if cat_bad is not None:
            status[cat_bad] = MALFORMED
            codes[cat_bad] = -1
        self.values[n_num:] += status_counts(status)
        return codes

    def _prediction_values(self, raw: list) -> np.ndarray:
        spec = self.prediction_spec
        if isinstance(spec, CategoricalSpec):
            return spec.codes([canonical_category(p) for p in raw])[0]
        return np.array([p if isinstance(p, float) else np.nan for p in raw], dtype=float)

    def _add_predictions(self, bucket: int, slots: np.ndarray, values: np.ndarray) -> None:
        spec = self.prediction_spec
        width = spec.bins
        if isinstance(spec, CategoricalSpec):
            ok = values >= 0
            idx = slots[ok] * width + values[ok]
            weights = None
        else:
            ok = ~np.isnan(values)
            idx = slots[ok] * width + np.searchsorted(spec.edges, values[ok], side="right")
            weights = values[ok]
        size = (self.slots.max_versions + 1) * width
        self.ring.add(bucket, "pred", np.bincount(idx, minlength=size).reshape(-1, width))
        if weights is not None:
            sums = np.bincount(idx, weights=weights, minlength=size).reshape(-1, width)
            self.ring.add(bucket, "pred_sums", sums)

    def add_matched(self, matched: list[tuple], now: float) -> None:
        """Pairs from the join buffer: (prediction time, version, prediction, label)."""
        if not matched:
            return
        other = self.slots.other
        ts, versions, preds, labels = zip(*matched, strict=True)
        slots = [self.slots.index.get(v or "unknown", other) for v in versions]
        self.add_labeled(ts, slots, list(preds), list(labels), now)

    def add_labeled(self, timestamps, slots, predictions: list, labels: list, now: float) -> None:
        """Joined (prediction, label) pairs, windowed at the prediction's time."""
        bucket, too_old, future = self.ring.place(np.asarray(timestamps, float), now)
        late = too_old | future
        self.labels["late"] += int(late.sum())
        slots = np.asarray(slots, np.int64)
        canon = [canonical_category(v) if self.model.task != "regression" else v for v in labels]
        for b in np.unique(bucket[~late]):
            sel = np.flatnonzero(~late & (bucket == b))
            self._add_label_profile(b, [canon[i] for i in sel])
            self._add_quality(b, slots[sel], [predictions[i] for i in sel], [canon[i] for i in sel])

    def _add_label_profile(self, bucket: int, labels: list) -> None:
        spec = self.label_spec
        if spec is None:
            return
        if isinstance(spec, CategoricalSpec):
            codes = spec.codes(labels)[0]
            counts = np.bincount(codes[codes >= 0], minlength=spec.bins)
            self.ring.add(bucket, "label", counts)
        else:
            values = np.array([v if isinstance(v, int | float) else np.nan for v in labels], float)
            one = ColumnSpecs((spec,))
            counts, sums = bin_numeric(one, values[:, None])
            self.ring.add(bucket, "label", counts[0, : spec.bins])
            self.ring.add(bucket, "label_sums", sums[0, : spec.bins])

    def _add_quality(self, bucket: int, slots: np.ndarray, predictions: list, labels: list):
        task = self.model.task
        width = self.ring.arrays["quality"].shape[-1]
        sums = np.zeros((self.slots.max_versions + 1, width))
        if task == "binary_classification":
            scores = np.array([p if isinstance(p, float) else np.nan for p in predictions])
            positive = np.array([lab in POSITIVE_LABELS for lab in labels])
            ok = ~np.isnan(scores)
            hist = np.zeros((self.slots.max_versions + 1, 2, quality.AUC_BINS), np.int64)
            for s in np.unique(slots[ok]):
                sel = ok & (slots == s)
                sums[s] = quality.binary_sums(
                    scores[sel], positive[sel], self.model.decision_threshold
                )
                hist[s] = quality.score_histograms(scores[sel], positive[sel])
            self.ring.add(bucket, "auc", hist)
        elif task == "regression":
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

    # --- statistics ---------------------------------------------------------------------

    def thresholds(self) -> dict[str, float]:
        out = {name: m.default_threshold for name, m in drift.METHODS.items()}
        out.update(self.model.thresholds)
        return out

    def compute(self, now: float | None = None) -> Results:
        """Skew, drift, divergence and quality over the current window; stored and returned."""
        now = time.time() if now is None else now
        if self.join is not None:
            self.join.expire(now)
        r = Results(computed_at=now)
        ring, minimum = self.ring, self.model.min_samples
        records = ring.window("records", now)
        for slot, version in self.slots.labels():
            if records[slot] or version != "other":
                r.window_samples[version] = int(records[slot])
        if self.specs is not None:
            cur = self._window_profile(now, 0)
            prev = self._window_profile(now, 1)
            base = self.reference.features.profile
            r.feature_skew, skew_tests = profile_compare(
                self.specs, base, cur, minimum, reference=True
            )
            r.feature_drift, drift_tests = profile_compare(
                self.specs, prev, cur, minimum, reference=False
            )
            for comparison, tests in (("skew", skew_tests), ("drift", drift_tests)):
                for feature, t in tests.items():
                    r.tests[("feature", feature, comparison)] = t
        if self.prediction_spec is not None:
            self._prediction_scores(now, minimum, r)
        if self.label_spec is not None:
            cur, prev = self._label_counts(now, 0), self._label_counts(now, 1)
            r.label_skew, r.label_drift = self._compare(
                "label", "", self.label_spec, self.label_ref, prev, cur, minimum, r
            )
        self._verdicts(r)
        self._quality(now, r)
        self._capacity(now, r)
        self.results = r
        return r

    @staticmethod
    def _compare(kind, name, spec, reference, previous, current, minimum, r: Results):
        """One column's skew and drift distances, returned; its tests go into ``r.tests``."""
        out = []
        for comparison, base in (("skew", reference), ("drift", previous)):
            scores, test = column_compare(
                spec, base, current, minimum, reference=comparison == "skew"
            )
            if test is not None:
                r.tests[(kind, name, comparison)] = test
            out.append(scores)
        return out

    def _verdicts(self, r: Results) -> None:
        """Decide which columns drifted, per comparison, at the model's false-alarm rate."""
        v = self.model.drift
        for comparison in ("skew", "drift"):
            keys = [k for k in r.tests if k[2] == comparison]
            if not keys:
                continue
            pvalues = np.array([r.tests[k][0] for k in keys])
            drifted, threshold = verdict.decide(pvalues, v.false_alarm_rate, v.correction)
            r.pvalue_threshold[comparison] = threshold
            for key, flagged in zip(keys, drifted, strict=True):
                if flagged and r.tests[key][1] >= v.min_effect:
                    r.drifted.add(key)

    def _window_profile(self, now: float, back: int) -> Profile:
        ring = self.ring
        return Profile(
            ring.window("num", now, back),
            ring.window("num_sums", now, back),
            ring.window("cat", now, back),
        )

    def _prediction_counts(self, now: float, back: int, slot: int):
        spec = self.prediction_spec
        counts = self.ring.window("pred", now, back)[slot]
        if isinstance(spec, CategoricalSpec):
            return counts
        return drift.NumericCounts(counts, self.ring.window("pred_sums", now, back)[slot])

    def _prediction_scores(self, now: float, minimum: int, r: Results) -> None:
        spec = self.prediction_spec
        records = self.ring.window("records", now)
        labels = self.slots.labels()
        tracked = [(s, v) for s, v in labels if v != "other"]
        for slot, version in tracked:
            cur = self._prediction_counts(now, 0, slot)
            prev = self._prediction_counts(now, 1, slot)
            skew, window_drift = self._compare(
                "prediction", version, spec, self.prediction_ref, prev, cur, minimum, r
            )
            for method, value in skew.items():
                r.prediction_skew[(version, method)] = value
            for method, value in window_drift.items():
                r.prediction_drift[(version, method)] = value
        stable = self.model.canary.stable_version
        by_name = dict((v, s) for s, v in tracked)
        if stable not in by_name:
            # No configured stable version seen: the one with the most traffic is stable.
            stable = max(tracked, key=lambda sv: records[sv[0]], default=(None, None))[1]
        if stable is None:
            return
        r.stable_version = stable
        base = self._prediction_counts(now, 0, by_name[stable])
        for slot, version in tracked:
            if version == stable:
                continue
            cur = self._prediction_counts(now, 0, slot)
            for method, value in column_scores(spec, base, cur, minimum).items():
                r.prediction_divergence[(version, method)] = value

    def _label_counts(self, now: float, back: int):
        counts = self.ring.window("label", now, back)
        if isinstance(self.label_spec, CategoricalSpec):
            return counts
        return drift.NumericCounts(counts, self.ring.window("label_sums", now, back))

    def _capacity(self, now: float, r: Results) -> None:
        """Little's law over the window: the busiest bucket's rate x the mean latency."""
        ring = self.ring
        current = int(np.floor(now / ring.bucket_seconds))
        live = (ring.ids > current - ring.per_window) & (ring.ids <= current)
        if not live.any():
            return
        per_bucket = ring.arrays["records"][live].sum(axis=1)
        lat_sum, lat_n = ring.window("latency", now)
        if lat_n == 0:
            return
        peak = float(per_bucket.max()) / ring.bucket_seconds
        concurrency = peak * lat_sum / lat_n
        cap = self.model.capacity
        r.capacity = {
            "peak_qps": peak,
            "concurrency": concurrency,
            "replicas": replicas_for(
                concurrency, cap.replica_concurrency, cap.target_utilization, cap.headroom
            ),
        }

    def _quality(self, now: float, r: Results) -> None:
        sums = self.ring.window("quality", now)
        auc = self.ring.window("auc", now) if "auc" in self.ring.arrays else None
        for slot, version in self.slots.labels():
            n = sums[slot][0]
            if n < self.model.min_samples:
                continue
            if self.model.task == "binary_classification":
                metrics = quality.binary_metrics(sums[slot], auc[slot])
            elif self.model.task == "regression":
                metrics = quality.regression_metrics(sums[slot])
            else:
                metrics = quality.multiclass_metrics(sums[slot])
            for metric, value in metrics.items():
                r.quality[(version, metric)] = value
