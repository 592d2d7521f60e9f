"""Distributions as counters, on bins fixed by the reference (docs/fleet.md).

Counters add across instances, distances do not: Prometheus sums these over every replica
and node and computes the fleet's skew and drift with the recording rules in
``alert_rules/fleet.yaml``. Label values come from the reference (its bin edges and top-K
categories) and the config, never from live data.

Example output::

    # TYPE mlpipe_feature_value histogram
    mlpipe_feature_value_bucket{model="fraud",feature="amount",le="74.31"} 112.0
    mlpipe_feature_value_bucket{model="fraud",feature="amount",le="+Inf"} 1000.0
    # TYPE mlpipe_feature_category_total counter
    mlpipe_feature_category_total{model="fraud",feature="country",category="DE"} 301.0
    mlpipe_feature_category_total{model="fraud",feature="country",category="__other__"} 4.0
    # TYPE mlpipe_reference_feature_bucket_ratio gauge
    mlpipe_reference_feature_bucket_ratio{model="fraud",feature="amount",le="74.31"} 0.1

Numeric bins are left-closed, ``[a, b)``, so a bucket's ``le`` is the float just below the
edge ``b``: the cumulative count "≤ le" is exactly the count "< b".
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from itertools import pairwise

import numpy as np
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from exporter.collectors.base import STATIC
from exporter.collectors.blocks import BlockFamily, LayoutCache, SeriesLayout
from exporter.config import Distribution
from exporter.state.profiles import OTHER, UNSEEN, CategoricalSpec, NumericSpec
from exporter.state.store import State
from exporter.stats import drift


def bucket_layout(spec: NumericSpec, buckets: str) -> tuple[list[str], np.ndarray, int]:
    """(``le`` labels with "+Inf" last, fine bin -> exported bin, exported bins)."""
    cache = spec.__dict__.setdefault("_export_layout", {})
    if buckets not in cache:
        if buckets == "deciles":
            edges, groups, n = spec.psi_edges, spec.groups, spec.psi_bins
        else:
            edges, groups, n = spec.edges, np.arange(spec.bins), spec.bins
        les = [floatToGoString(float(np.nextafter(e, -np.inf))) for e in edges] + ["+Inf"]
        cache[buckets] = (les, groups, n)
    return cache[buckets]


def cumulative(spec: NumericSpec, fine_counts: np.ndarray, buckets: str) -> np.ndarray:
    """Cumulative counts at the exported buckets from counts over the fine bins."""
    _, groups, n = bucket_layout(spec, buckets)
    return np.cumsum(drift.regroup(fine_counts[: spec.bins], groups, n))


def category_layout(spec: CategoricalSpec, top_k: int) -> list[str]:
    return [*spec.values[:top_k], OTHER, UNSEEN]


def fold(spec: CategoricalSpec, counts: np.ndarray, top_k: int) -> np.ndarray:
    """Counts over ``category_layout``: top-K beyond ``top_k`` fold into ``__other__``."""
    k, n = min(top_k, len(spec.values)), len(spec.values)
    counts = counts[: spec.bins]
    return np.concatenate([counts[:k], [counts[k:n].sum() + counts[n]], [counts[n + 1]]])


class _Plan:
    """How one model's columns of one kind become a block's lines. ``index`` maps each
    column's fine bin to its exported bucket or category (``slots`` of them; bins past a
    column's own go to slot ``slots``, dropped); numeric columns also say where their
    cumulative counts, ``_count`` and ``_sum`` lines go."""

    __slots__ = (
        "base",
        "bucket_lines",
        "count_lines",
        "index",
        "last",
        "layout",
        "slots",
        "sum_lines",
    )

    def __init__(self, layout: SeriesLayout, index: np.ndarray, slots: int):
        self.layout, self.index, self.slots = layout, index.ravel(), slots

    def regrouped(self, counts: np.ndarray) -> np.ndarray:
        """Counts per exported slot from fine-bin counts (columns × width): one bincount
        for all the columns."""
        out = np.bincount(self.index, weights=counts.ravel(), minlength=self.slots + 1)
        return out[: self.slots]


def _numeric_plan(name, labelnames, model, columns, buckets: str, width: int) -> _Plan:
    """Histogram lines of columns [(label values, NumericSpec)]: each column's buckets
    (cumulative), then its ``_count`` and ``_sum``, as ``HistogramMetricFamily`` orders them."""
    keys, ends, index = [], [], np.empty((len(columns), width), np.intp)
    bucket_lines, count_lines, sum_lines, base, last = [], [], [], [], []
    slot = 0
    for j, (values, spec) in enumerate(columns):
        les, groups, n = bucket_layout(spec, buckets)
        labels = dict(zip(labelnames, values, strict=True))
        bucket_lines.extend(range(len(keys), len(keys) + n))
        keys.extend((f"{name}_bucket", {**labels, "le": le}) for le in les)
        count_lines.append(len(keys))
        keys.append((f"{name}_count", labels))
        sum_lines.append(len(keys))
        keys.append((f"{name}_sum", labels))
        ends.append(len(keys))
        index[j] = -1
        index[j, : spec.bins] = slot + groups[: spec.bins]
        base.extend([slot] * n)
        slot += n
        last.append(slot - 1)
    index[index < 0] = slot
    plan = _Plan(SeriesLayout(model, keys, ends), index, slot)
    plan.bucket_lines, plan.count_lines, plan.sum_lines = (
        np.array(x, np.intp) for x in (bucket_lines, count_lines, sum_lines)
    )
    plan.base, plan.last = np.array(base, np.intp), np.array(last, np.intp)
    return plan


def _numeric_values(plan: _Plan, counts: np.ndarray, sums: np.ndarray) -> np.ndarray:
    """The lines' values: cumulative counts per column (exact: integer counts in float64
    below 2**53), the count and the sum."""
    total = np.concatenate([[0.0], np.cumsum(plan.regrouped(counts))])
    cumulative = total[1:] - total[plan.base]
    out = np.empty(len(plan.layout.keys))
    out[plan.bucket_lines] = cumulative
    out[plan.count_lines] = cumulative[plan.last]
    out[plan.sum_lines] = sums
    return out


def _categorical_plan(name, labelnames, model, columns, top_k: int, width: int) -> _Plan:
    """Counter lines of columns [(label values, CategoricalSpec)]: ``category_layout``."""
    keys, index, slot = [], np.empty((len(columns), width), np.intp), 0
    for j, (values, spec) in enumerate(columns):
        labels = dict(zip(labelnames, values, strict=True))
        layout = category_layout(spec, top_k)
        keys.extend((f"{name}_total", {**labels, "category": c}) for c in layout)
        k, n = min(top_k, len(spec.values)), len(spec.values)
        # As ``fold``: the top K, the rest of the reference's values and its "other" bin
        # into __other__, then __unseen__.
        row = np.full(width, -1, np.intp)
        row[:k] = np.arange(k)
        row[k : n + 1] = k
        row[n + 1] = k + 1
        index[j] = np.where(row < 0, -1, slot + row)
        slot += len(layout)
    index[index < 0] = slot
    return _Plan(SeriesLayout(model, keys), index, slot)


class _Families:
    """The families of one kind of column (features, predictions, labels)."""

    def __init__(self, kind: str, labels: list[str], what: str):
        ref = f"mlpipe_reference_{kind}"
        self.labelnames = labels
        self.histogram = BlockFamily(
            f"mlpipe_{kind}_value",
            f"{what} values, on the reference's bins (le: just below each bin edge).",
            "histogram",
        )
        self.category = BlockFamily(
            f"mlpipe_{kind}_category",
            f"{what} values by category: the reference's top K, __other__, __unseen__.",
            "counter",
        )
        column = [lb for lb in labels if lb != "version"]
        self.column_labelnames = column
        self.ref_bucket = BlockFamily(
            f"{ref}_bucket_ratio",
            f"Share of the reference's {what.lower()} values at or below le.",
            "gauge",
        )
        self.ref_previous = BlockFamily(
            f"{ref}_bucket_previous_info",
            "Each bucket's next lower bucket (1): lets PromQL turn cumulative buckets into "
            "per-bin shares.",
            "gauge",
        )
        # DESIGN §8's name for features: mlpipe_reference_category_ratio.
        ref_category = "mlpipe_reference" if kind == "feature" else ref
        self.ref_category = BlockFamily(
            f"{ref_category}_category_ratio",
            f"Share of the reference's {what.lower()} values in each category.",
            "gauge",
        )

    def reference_runs(self, model: str, columns, dist: Distribution) -> list[list]:
        """The reference's lines for columns [(label values, spec, fine counts or None)],
        as one run per family (ref_bucket, ref_previous, ref_category): computed once per
        reference, so written plainly. A numeric column's buckets are one series to the
        budget (as a histogram's): the fleet rules need all of them or none."""
        lines = {f.name: ([], [], []) for f in self.references()}  # keys, values, ends

        def add(family, labels, values, grouped=True) -> None:
            keys, vals, ends = lines[family.name]
            if not grouped:
                ends.extend(range(len(keys) + 1, len(keys) + len(labels) + 1))
            keys.extend((family.name, lb) for lb in labels)
            vals.extend(values)
            if labels and grouped:
                ends.append(len(keys))

        for values, spec, counts in columns:
            labels = dict(zip(self.column_labelnames, values, strict=True))
            if isinstance(spec, NumericSpec):
                les = bucket_layout(spec, dist.buckets)[0]
                pairs = list(pairwise(les))
                add(
                    self.ref_previous,
                    [{**labels, "le": le, "previous_le": lower} for lower, le in pairs],
                    [1.0] * len(pairs),
                )
                if counts is None:
                    continue
                cum = cumulative(spec, counts, dist.buckets)
                total = cum[-1] or 1
                add(self.ref_bucket, [{**labels, "le": le} for le in les], (cum / total).tolist())
            elif counts is not None:
                folded = fold(spec, counts, dist.top_k)
                total = folded.sum() or 1
                add(
                    self.ref_category,
                    [{**labels, "category": c} for c in category_layout(spec, dist.top_k)],
                    (folded / total).tolist(),
                    grouped=False,
                )
        return [
            [(SeriesLayout(model, keys, ends), np.array(vals, np.float64))]
            for keys, vals, ends in lines.values()
        ]

    def references(self) -> list[BlockFamily]:
        return [self.ref_bucket, self.ref_previous, self.ref_category]


def _counts(ref_part):
    """Fine-bin counts of a one-column reference part (NumericCounts or an array)."""
    if ref_part is None:
        return None
    return ref_part.counts if isinstance(ref_part, drift.NumericCounts) else ref_part


def _kinds() -> tuple[_Families, _Families, _Families]:
    """Empty families for features, predictions (per version) and joined labels."""
    return (
        _Families("feature", ["model", "feature"], "Feature"),
        _Families("prediction", ["model", "version"], "Prediction"),
        _Families("label", ["model"], "Joined label"),
    )


class DistributionsCollector:
    name = "distributions"

    def __init__(self):
        self._plans = LayoutCache()
        # The reference's lines change only with the reference: built once per model,
        # reference and distribution setting, and reused (a third of a rendering's lines).
        self._static = LayoutCache(max_entries=4 * 1024)
        self._families_key: tuple | None = None
        self._families: list[BlockFamily] = []

    def collect(self, state: State) -> Iterable[Metric]:
        kinds = _kinds()
        features, predictions, labels = kinds
        info = GaugeMetricFamily(
            "mlpipe_reference_info",
            "The reference profile in use (1), by its hash: shards with different hashes "
            "cannot be merged.",
            labels=["model", "hash"],
        )
        min_samples = GaugeMetricFamily(
            "mlpipe_drift_min_samples",
            "Fewest values on each side for a distance or verdict (config min_samples).",
            labels=["model"],
        )
        keys: list[tuple] = []
        for name, ms in state.models.items():
            min_samples.add_metric([name], ms.model.min_samples)
            ref = ms.reference
            if ref is None:
                continue
            dist = ms.model.distribution
            info.add_metric([name, ref.hash], 1.0)
            self._features(features, name, ms, dist)
            self._predictions(predictions, name, ms, dist)
            spec = ms.outcomes.label_spec
            if spec is not None:
                counts, total_sum = ms.outcomes.label_totals()
                columns = [((name,), spec)]
                self._columns(labels, "label", name, ref.hash, dist, columns, counts, total_sum)
            keys.append((name, ms))
        for kind in kinds:
            yield kind.histogram
            yield kind.category
        yield from self._reference_families_of(keys)
        yield info
        yield min_samples

    def _columns(self, families, kind, model, ref_hash, dist, columns, counts, sums) -> None:
        """One run of ``columns`` [(label values, spec)] of one spec type into the
        histogram or the category family; ``counts`` (columns × fine bins), ``sums``."""
        if not columns:
            return
        counts = np.atleast_2d(counts)
        width = counts.shape[1]
        numeric = isinstance(columns[0][1], NumericSpec)
        key = (model, kind, numeric, ref_hash, dist, width, tuple(v for v, _ in columns))
        if numeric:
            plan = self._plans.get(
                key,
                lambda: _numeric_plan(
                    families.histogram.name,
                    families.labelnames,
                    model,
                    columns,
                    dist.buckets,
                    width,
                ),
            )
            families.histogram.add_run(
                plan.layout, _numeric_values(plan, counts, np.atleast_1d(sums))
            )
        else:
            plan = self._plans.get(
                key,
                lambda: _categorical_plan(
                    families.category.name, families.labelnames, model, columns, dist.top_k, width
                ),
            )
            families.category.add_run(plan.layout, plan.regrouped(counts))

    def _features(self, families: _Families, name: str, ms, dist: Distribution) -> None:
        specs = ms.features.specs
        num, sums, cat = ms.features.totals()
        h = ms.reference.hash
        numeric = [((name, spec.name), spec) for spec in specs.numeric]
        categorical = [((name, spec.name), spec) for spec in specs.categorical]
        self._columns(families, "feature", name, h, dist, numeric, num, sums)
        self._columns(families, "feature", name, h, dist, categorical, cat, None)

    def _predictions(self, families: _Families, name: str, ms, dist: Distribution) -> None:
        if ms.predictions is None:
            return
        spec = ms.predictions.spec
        counts, sums = ms.predictions.totals()
        slots, columns = [], []
        for slot, version in ms.slots.labels():
            if version == "other" and not counts[slot].any():
                continue
            slots.append(slot)
            columns.append(((name, version), spec))
        h = ms.reference.hash
        self._columns(families, "prediction", name, h, dist, columns, counts[slots], sums[slots])

    def _reference_runs(self, name: str, ms) -> list[list[list]]:
        """Per kind, the runs of (ref_bucket, ref_previous, ref_category)."""
        dist = ms.model.distribution

        def build():
            features, predictions, labels = _kinds()
            specs, ref = ms.features.specs, ms.reference.features.profile
            columns = [((name, s.name), s, ref.numeric[j]) for j, s in enumerate(specs.numeric)]
            columns += [
                ((name, s.name), s, ref.categorical[j]) for j, s in enumerate(specs.categorical)
            ]
            out = [features.reference_runs(name, columns, dist), [[], [], []], [[], [], []]]
            if ms.predictions is not None:
                column = ((name,), ms.predictions.spec, _counts(ms.prediction_ref))
                out[1] = predictions.reference_runs(name, [column], dist)
            if ms.outcomes.label_spec is not None:
                column = ((name,), ms.outcomes.label_spec, _counts(ms.label_ref))
                out[2] = labels.reference_runs(name, [column], dist)
            return out

        return self._static.get((name, ms.reference.hash, dist), build)

    def _reference_families_of(self, models: list[tuple]) -> list[Metric]:
        """The reference's families of every model, the same run lists while no model's
        reference or distribution setting changed: the encoder then reuses their text
        (exposition.STATIC) instead of formatting ~40 % of the rendering again."""
        key = tuple((name, ms.reference.hash, ms.model.distribution) for name, ms in models)
        if key != self._families_key:
            kinds = _kinds()
            for name, ms in models:
                for kind, runs in zip(kinds, self._reference_runs(name, ms), strict=True):
                    for family, run in zip(kind.references(), runs, strict=True):
                        for layout, values in run:
                            family.add_run(layout, values)
            self._families_key = key
            self._families = [f for k in kinds for f in k.references()]
        out = []
        for family in self._families:
            # A copy sharing the run list: the series budget may replace a copy's list,
            # never the kept family's.
            shown = copy.copy(family)
            setattr(shown, STATIC, True)
            out.append(shown)
        return out
