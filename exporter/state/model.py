"""Everything kept per model, and the statistics computed from it.

A model's state is made of typed parts, each with its own zero (constructor), update
(``add``) and merge (``merge``; a window's buckets summed by its readers), after the
mergeable-profile pattern of whylogs:

- ``serving``: cumulative request counters and the latency histogram (state/serving.py);
- ``traffic``: windowed records per version and latency, for rates and capacity;
- ``features``: data-quality status counts and the windowed binned feature profile;
- ``predictions``: windowed binned predictions per version;
- ``outcomes``: windowed joined labels and the quality sums per version.

This module routes a parsed batch to the parts and computes ``Results`` from their windows;
nothing outside a part reads its arrays."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from exporter.config import Model
from exporter.state.class_scores import ClassScoreWindow
from exporter.state.compare import column_compare, profile_compare
from exporter.state.feature_window import FeatureWindow
from exporter.state.join import JoinBuffer
from exporter.state.outcomes import OutcomeWindow
from exporter.state.prediction_window import PredictionWindow
from exporter.state.profiles import ColumnSpecs, NumericSpec, canonical_category
from exporter.state.reference import ColumnProfile, ReferenceProfile
from exporter.state.serving import ServingCounters
from exporter.state.traffic import TrafficWindow
from exporter.state.versions import VersionSlots
from exporter.state.windows import BucketClock
from exporter.stats import drift, estimate, verdict
from exporter.stats.capacity import replicas_for

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
    # feature, the version, or "" for labels; comparison skew|drift, or stable: a canary
    # version's predictions against the stable version's, same window.
    tests: dict = field(default_factory=dict)
    drifted: set = field(default_factory=set)  # keys of ``tests`` decided drifted
    pvalue_threshold: dict = field(default_factory=dict)  # comparison -> threshold in force
    window_samples: dict = field(default_factory=dict)  # version -> records in the window
    quality: dict = field(default_factory=dict)  # (version, metric) -> value
    # Before labels: (version, metric) -> (estimate, 95 % half-width); and realized minus
    # estimated where both exist (stats/estimate.py).
    quality_estimated: dict = field(default_factory=dict)
    quality_estimate_error: dict = field(default_factory=dict)
    capacity: dict = field(default_factory=dict)  # peak_qps, concurrency, replicas
    stable_version: str | None = None  # what canaries are compared with
    computed_at: float = 0.0


def _bin_centers(edges: np.ndarray) -> np.ndarray:
    """A representative value per fine bin (the open end bins take their one edge)."""
    edges = np.asarray(edges, float)
    inner = (edges[:-1] + edges[1:]) / 2.0
    return np.concatenate([[edges[0]], inner, [edges[-1]]])


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
        specs = reference.features.specs if reference is not None else None
        if specs is not None:
            numeric = [s.name for s in specs.numeric]
            categorical = [s.name for s in specs.categorical]
        self.clock = BucketClock(model.windows.bucket, model.windows.length)
        self.traffic = TrafficWindow(self.clock, n_slots)
        self.features = FeatureWindow(
            self.clock,
            specs,
            list(numeric or []),
            list(categorical or []),
            model.out_of_range_margin,
        )
        prediction_spec, self.prediction_ref = self._prediction_spec(reference)
        self.predictions = (
            PredictionWindow(self.clock, prediction_spec, n_slots)
            if prediction_spec is not None
            else None
        )
        label_spec, self.label_ref = _one_column(reference.label if reference else None)
        # P(positive) per prediction bin, learned once from the reference's scores and labels.
        self.calibrated = None
        if (
            reference is not None
            and reference.calibration is not None
            and self.prediction_ref is not None
            and len(reference.calibration) == len(self.prediction_ref.counts)
        ):
            self.calibrated = estimate.calibration_map(
                self.prediction_ref.counts, reference.calibration
            )
        # Multiclass: the classes' probabilities, calibrated on the reference, per window.
        self.class_scores = self._class_score_window(reference, n_slots)
        self.class_index = {name: k for k, name in enumerate(model.classes)}
        self.outcomes = OutcomeWindow(
            self.clock,
            model.task,
            label_spec,
            n_slots,
            model.decision_threshold,
            labelled=bool(model.labels),
        )
        self.dropped = Counter()  # records not windowed: too_old / future
        self.labels = Counter()  # label join results
        self.join = (
            JoinBuffer(model.label_join.max_pending, model.label_join.max_delay, self.labels)
            if model.labels
            else None
        )
        self.results = Results()
        self._computed_for: tuple | None = None  # what self.results were computed from

    @property
    def specs(self) -> ColumnSpecs | None:
        return self.features.specs

    @property
    def numeric(self) -> list[str]:
        return self.features.numeric

    @property
    def categorical(self) -> list[str]:
        return self.features.categorical

    def carry_serving(self, old: ModelState) -> None:
        """Take over ``old``'s serving counters, version slots and label join (same model,
        its reference newly built): requests counted so far stay counted."""
        if old.model.max_versions != self.model.max_versions:
            return
        self.slots, self.serving = old.slots, old.serving
        self.join, self.labels, self.dropped = old.join, old.labels, old.dropped

    def _class_score_window(self, reference, n_slots: int) -> ClassScoreWindow | None:
        classes = self.model.classes
        if (
            self.model.task != "multiclass"
            or not classes
            or reference is None
            or reference.scores is None
            or reference.class_calibration is None
            or len(reference.scores.specs.numeric) != len(classes)
        ):
            return None
        specs, prof = reference.scores.specs, reference.scores.profile
        width = specs.numeric_width
        calibrated = np.stack(
            [
                estimate.calibration_map(prof.numeric[k, :width], reference.class_calibration[k])
                for k in range(len(classes))
            ]
        )
        return ClassScoreWindow(self.clock, specs, calibrated, n_slots)

    def _class_scores(self, raw: list, predictions: list) -> tuple[np.ndarray, np.ndarray]:
        """(rows, classes) probabilities (a NaN row: none, or not one per class) and the
        predicted class's index (-1: not a class; the highest score stands in)."""
        classes, k = self.model.classes, len(self.model.classes)
        out = np.full((len(raw), k), np.nan)
        for i, scores in enumerate(raw):
            if type(scores) is list:
                if len(scores) == k:
                    out[i] = scores
            elif type(scores) is dict:
                out[i] = [scores.get(c, np.nan) for c in classes]
        index = self.class_index
        predicted = np.fromiter(
            (index.get(canonical_category(p), -1) for p in predictions), np.int64, len(raw)
        )
        return out, predicted

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

    def merge(self, other: ModelState) -> None:
        """Add ``other``'s counters, windows and counts (same model and reference, same
        version slots): the state one exporter would hold had it seen both streams. The
        label join's pending predictions are not merged (a label joins where its prediction
        was read)."""
        self.serving.merge(other.serving)
        self.dropped.update(other.dropped)
        self.labels.update(other.labels)
        self.traffic.merge(other.traffic)
        self.features.merge(other.features)
        if self.predictions is not None:
            self.predictions.merge(other.predictions)
        if self.class_scores is not None:
            self.class_scores.merge(other.class_scores)
        self.outcomes.merge(other.outcomes)

    # --- ingestion --------------------------------------------------------------------

    def reset_slot(self, slot: int) -> None:
        self.serving.reset_slot(slot)
        self.traffic.clear_slot(slot)
        if self.predictions is not None:
            self.predictions.clear_slot(slot)
        if self.class_scores is not None:
            self.class_scores.clear_slot(slot)
        self.outcomes.clear_slot(slot)

    def apply(self, rows, slots, batch, num_cols, cat_cols, now: float, block=None) -> None:
        """Add records ``rows`` of ``batch`` (versions already mapped to ``slots``); their
        features are ``block`` (this model's own, from the parser) or the batch's union
        columns ``num_cols``/``cat_cols``."""
        self.serving.apply(rows, slots, batch, now)
        if block is not None:
            numeric, num_bad, cat_values, cat_bad = block
        else:
            numeric, num_bad, cat_values, cat_bad = self._union_columns(
                rows, batch, num_cols, cat_cols
            )
        codes = self.features.count_statuses(numeric, num_bad, cat_values, cat_bad)
        bucket, too_old, future = self.clock.place(batch.timestamp[rows], now)
        self.dropped["too_old"] += int(too_old.sum())
        self.dropped["future"] += int(future.sum())
        keep = ~(too_old | future)
        raw_predictions = batch.pick(batch.prediction, rows)
        if self.join is not None:
            matched = self.join.add_predictions(
                batch.pick(batch.request_id, rows),
                batch.timestamp[rows],
                batch.pick(batch.version, rows),
                raw_predictions,
                now,
            )
            self.add_matched(matched, now)
        predictions = self.predictions.values(raw_predictions) if self.predictions else None
        scores = None
        if self.class_scores is not None and batch.scores is not None:
            scores, predicted = self._class_scores(batch.pick(batch.scores, rows), raw_predictions)
        # Each part bins the batch's rows once for every bucket they fall in (a batch of a
        # live log spans a few buckets; a step per bucket was most of a line's cost at
        # 100 models: bench/growth.py).
        if keep.all():
            kept, b, s, lat = slice(None), bucket, slots, batch.latency[rows]
        else:
            kept = np.flatnonzero(keep)
            b, s, lat = bucket[kept], slots[kept], batch.latency[rows[kept]]
        # The three windows group the rows by bucket alike: once for all.
        grouped = np.unique(b, return_inverse=True) if len(b) else None
        self.traffic.add(b, s, lat, grouped)
        self.features.add(b, numeric[kept], codes[kept] if codes.size else codes, grouped)
        if self.predictions is not None:
            self.predictions.add(b, s, predictions[kept], grouped)
        if scores is not None and grouped is not None:
            scores, predicted = scores[kept], predicted[kept]
            ids, groups = grouped
            for k, one in enumerate(ids.tolist()):
                sel = groups == k
                self.class_scores.add(one, s[sel], scores[sel], predicted[sel])

    @staticmethod
    def _union_columns(rows, batch, num_cols, cat_cols):
        everything = len(rows) == batch.records
        if everything and num_cols == list(range(batch.numeric.shape[1])):
            numeric = batch.numeric  # one model's batch: its columns as they are (read only)
        elif num_cols:
            numeric = batch.numeric[np.ix_(rows, num_cols)]
        else:
            numeric = np.empty((len(rows), 0))
        num_bad = (
            batch.numeric_malformed[np.ix_(rows, num_cols)]
            if num_cols and batch.numeric_malformed is not None
            else None
        )
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
        return numeric, num_bad, cat_values, cat_bad

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
        bucket, too_old, future = self.clock.place(np.asarray(timestamps, float), now)
        late = too_old | future
        self.labels["late"] += int(late.sum())
        slots = np.asarray(slots, np.int64)
        canon = [canonical_category(v) if self.model.task != "regression" else v for v in labels]
        for b in np.unique(bucket[~late]):
            sel = np.flatnonzero(~late & (bucket == b))
            self.outcomes.add(b, slots[sel], [predictions[i] for i in sel], [canon[i] for i in sel])

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
        inputs = self._inputs(now)
        if self._computed_for is not None and _same(inputs, self._computed_for):
            # Nothing a statistic reads has changed (no record in any window, no window
            # moved): the results stand, as of now.
            self.results = dataclasses.replace(self.results, computed_at=now)
            return self.results
        r = Results(computed_at=now)
        minimum = self.model.min_samples
        records = self.traffic.records(now)
        for slot, version in self.slots.labels():
            if records[slot] or version != "other":
                r.window_samples[version] = int(records[slot])
        if self.specs is not None:
            cur = self.features.profile(now, 0)
            prev = self.features.profile(now, 1)
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
        if self.predictions is not None:
            self._prediction_scores(now, minimum, r)
        label_spec = self.outcomes.label_spec
        if label_spec is not None:
            cur, prev = self.outcomes.label_counts(now, 0), self.outcomes.label_counts(now, 1)
            r.label_skew, r.label_drift = self._compare(
                "label", "", label_spec, self.label_ref, prev, cur, minimum, r
            )
        self._verdicts(r)
        self._quality(now, r)
        self._capacity(now, r)
        self.results = r
        self._computed_for = inputs
        return r

    def _inputs(self, now: float) -> tuple:
        """What the statistics of ``compute`` depend on: every window ring's contents (by
        its change count), which bucket is current (where the windows end), the version
        slots, and the config and reference objects (by identity: a reload or a new
        reference builds new ones)."""
        parts = (self.traffic, self.features, self.predictions, self.outcomes, self.class_scores)
        rings = tuple(p.ring.mutations if p is not None else -1 for p in parts)
        objects = (self.model, self.reference)  # held: an id could be reused once freed
        return rings, self.clock.current(now), tuple(self.slots.labels()), objects

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
        for comparison in ("skew", "drift", "stable"):
            keys = [k for k in r.tests if k[2] == comparison]
            if not keys:
                continue
            pvalues = np.array([r.tests[k][0] for k in keys])
            drifted, threshold = verdict.decide(pvalues, v.false_alarm_rate, v.correction)
            r.pvalue_threshold[comparison] = threshold
            for key, flagged in zip(keys, drifted, strict=True):
                if flagged and r.tests[key][1] >= v.min_effect:
                    r.drifted.add(key)

    def _prediction_scores(self, now: float, minimum: int, r: Results) -> None:
        spec, counts = self.predictions.spec, self.predictions.counts
        records = self.traffic.records(now)
        labels = self.slots.labels()
        tracked = [(s, v) for s, v in labels if v != "other"]
        for slot, version in tracked:
            cur = counts(now, 0, slot)
            prev = counts(now, 1, slot)
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
        base = counts(now, 0, by_name[stable])
        for slot, version in tracked:
            if version == stable:
                continue
            cur = counts(now, 0, slot)
            # Two windows of live traffic: the test is two-sample (comparison "stable"), so
            # a canary's first hundred predictions are not judged on their distance alone.
            scores, test = column_compare(spec, base, cur, minimum, reference=False)
            for method, value in scores.items():
                r.prediction_divergence[(version, method)] = value
            if test is not None:
                r.tests[("prediction", version, "stable")] = test

    def _capacity(self, now: float, r: Results) -> None:
        """Little's law over the window: the peak request rate x the mean latency."""
        peak, latency = self.traffic.peak_rate(now), self.traffic.mean_latency(now)
        if peak is None or latency is None:
            return
        concurrency = peak * latency
        cap = self.model.capacity
        r.capacity = {
            "peak_qps": peak,
            "concurrency": concurrency,
            "replicas": replicas_for(
                concurrency, cap.replica_concurrency, cap.target_utilization, cap.headroom
            ),
        }

    def _quality(self, now: float, r: Results) -> None:
        by_slot = self.outcomes.metrics(now, self.model.min_samples)
        for slot, version in self.slots.labels():
            for metric, value in by_slot.get(slot, {}).items():
                r.quality[(version, metric)] = value
        if self.class_scores is not None:
            for slot, version in self.slots.labels():
                found = self.class_scores.estimate(now, slot, self.model.min_samples)
                self._estimated(version, found, r)
        if self.calibrated is None:
            return
        spec = self.predictions.spec
        centers = _bin_centers(spec.edges)
        for slot, version in self.slots.labels():
            window = self.predictions.counts(now, 0, slot)
            if window.counts.sum() < self.model.min_samples:
                continue
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(window.counts > 0, window.sums / window.counts, centers)
            found = estimate.estimate_binary(
                window.counts, mean, self.calibrated, self.model.decision_threshold
            )
            self._estimated(version, found, r)

    @staticmethod
    def _estimated(version: str, found: dict, r: Results) -> None:
        """Store one version's estimates, and realized minus estimated where both exist."""
        for metric, (value, half) in found.items():
            r.quality_estimated[(version, metric)] = (value, half)
            realized = r.quality.get((version, metric))
            if realized is not None:
                r.quality_estimate_error[(version, metric)] = realized - value


def _same(a: tuple, b: tuple) -> bool:
    """``ModelState._inputs`` equal: values by value, the objects by identity."""
    return a[:3] == b[:3] and all(x is y for x, y in zip(a[3], b[3], strict=True))
