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
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from exporter.collectors.base import STATIC
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


class _Families:
    """The families of one kind of column (features, predictions, labels)."""

    def __init__(self, kind: str, labels: list[str], what: str):
        ref = f"mlpipe_reference_{kind}"
        self.histogram = HistogramMetricFamily(
            f"mlpipe_{kind}_value",
            f"{what} values, on the reference's bins (le: just below each bin edge).",
            labels=labels,
        )
        self.category = CounterMetricFamily(
            f"mlpipe_{kind}_category",
            f"{what} values by category: the reference's top K, __other__, __unseen__.",
            labels=[*labels, "category"],
        )
        column = [lb for lb in labels if lb != "version"]
        self.ref_bucket = GaugeMetricFamily(
            f"{ref}_bucket_ratio",
            f"Share of the reference's {what.lower()} values at or below le.",
            labels=[*column, "le"],
        )
        self.ref_previous = GaugeMetricFamily(
            f"{ref}_bucket_previous_info",
            "Each bucket's next lower bucket (1): lets PromQL turn cumulative buckets into "
            "per-bin shares.",
            labels=[*column, "le", "previous_le"],
        )
        # DESIGN §8's name for features: mlpipe_reference_category_ratio.
        ref_category = "mlpipe_reference" if kind == "feature" else ref
        self.ref_category = GaugeMetricFamily(
            f"{ref_category}_category_ratio",
            f"Share of the reference's {what.lower()} values in each category.",
            labels=[*column, "category"],
        )

    def numeric(self, labels, spec, counts, total_sum, buckets) -> None:
        les = bucket_layout(spec, buckets)[0]
        cum = cumulative(spec, counts, buckets)
        # Samples written directly: HistogramMetricFamily.add_metric leaves out _count and
        # _sum when the first bucket is negative (an OpenMetrics rule for negative
        # observations), and every feature histogram must have both.
        name = self.histogram.name
        base = dict(zip(self.histogram._labelnames, labels, strict=True))
        samples = self.histogram.samples
        for le, c in zip(les, cum, strict=True):
            samples.append(Sample(f"{name}_bucket", {**base, "le": le}, float(c)))
        samples.append(Sample(f"{name}_count", base, float(cum[-1])))
        samples.append(Sample(f"{name}_sum", base, float(total_sum)))

    def categories(self, labels, spec, counts, top_k) -> None:
        for category, c in zip(
            category_layout(spec, top_k), fold(spec, counts, top_k), strict=True
        ):
            self.category.add_metric([*labels, category], float(c))

    def reference(self, labels, spec, counts, dist: Distribution) -> None:
        """The reference's shares (``counts`` None: the layout only, no reference data)."""
        if isinstance(spec, NumericSpec):
            les = bucket_layout(spec, dist.buckets)[0]
            for lower, le in pairwise(les):
                self.ref_previous.add_metric([*labels, le, lower], 1.0)
            if counts is None:
                return
            cum = cumulative(spec, counts, dist.buckets)
            total = cum[-1] or 1
            for le, c in zip(les, cum, strict=True):
                self.ref_bucket.add_metric([*labels, le], float(c / total))
        elif counts is not None:
            folded = fold(spec, counts, dist.top_k)
            total = folded.sum() or 1
            for category, c in zip(category_layout(spec, dist.top_k), folded, strict=True):
                self.ref_category.add_metric([*labels, category], float(c / total))

    def all(self) -> list[Metric]:
        return [
            self.histogram,
            self.category,
            self.ref_bucket,
            self.ref_previous,
            self.ref_category,
        ]


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
        # The reference's families change only with the reference: built once per model,
        # reference and distribution setting, and reused (a third of a rendering's samples).
        self._static: dict[tuple, list[list]] = {}
        self._families_key: tuple | None = None
        self._families: list[Metric] = []

    def _reference_samples(self, name: str, ms) -> list[list]:
        key = (name, ms.reference.hash, ms.model.distribution)
        cached = self._static.get(key)
        if cached is None:
            kinds = _kinds()
            self._reference_families(kinds, name, ms)
            cached = [
                [f.samples for f in (k.ref_bucket, k.ref_previous, k.ref_category)] for k in kinds
            ]
            if len(self._static) > 4 * 1024:  # models come from the config: never in practice
                self._static.clear()
            self._static[key] = cached
        return cached

    @staticmethod
    def _reference_families(kinds, name: str, ms) -> None:
        features, predictions, labels = kinds
        dist = ms.model.distribution
        specs, ref = ms.features.specs, ms.reference.features.profile
        for j, spec in enumerate(specs.numeric):
            features.reference([name, spec.name], spec, ref.numeric[j], dist)
        for j, spec in enumerate(specs.categorical):
            features.reference([name, spec.name], spec, ref.categorical[j], dist)
        if ms.predictions is not None:
            predictions.reference([name], ms.predictions.spec, _counts(ms.prediction_ref), dist)
        if ms.outcomes.label_spec is not None:
            labels.reference([name], ms.outcomes.label_spec, _counts(ms.label_ref), dist)

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
                self._column(labels, [name], spec, counts, total_sum, dist)
            keys.append((name, ms))
        for kind in kinds:
            yield kind.histogram
            yield kind.category
        yield from self._reference_families_of(keys)
        yield info
        yield min_samples

    def _reference_families_of(self, models: list[tuple]) -> list[Metric]:
        """The reference's families of every model, the same sample lists while no
        model's reference or distribution setting changed: the encoder then reuses their
        text (exposition.STATIC) instead of formatting ~40 % of the rendering again."""
        key = tuple((name, ms.reference.hash, ms.model.distribution) for name, ms in models)
        if key != self._families_key:
            kinds = _kinds()
            for name, ms in models:
                for kind, samples in zip(kinds, self._reference_samples(name, ms), strict=True):
                    for family, cached in zip(
                        (kind.ref_bucket, kind.ref_previous, kind.ref_category),
                        samples,
                        strict=True,
                    ):
                        family.samples.extend(cached)
            self._families_key = key
            self._families = [
                f for k in kinds for f in (k.ref_bucket, k.ref_previous, k.ref_category)
            ]
        out = []
        for family in self._families:
            # A copy sharing the sample list: the series budget may replace a copy's list,
            # never the kept family's.
            shown = copy.copy(family)
            setattr(shown, STATIC, True)
            out.append(shown)
        return out

    @staticmethod
    def _column(families, labels, spec, counts, total_sum, dist) -> None:
        if isinstance(spec, NumericSpec):
            families.numeric(labels, spec, counts, total_sum, dist.buckets)
        else:
            families.categories(labels, spec, counts, dist.top_k)

    def _features(self, families: _Families, name: str, ms, dist: Distribution) -> None:
        specs = ms.features.specs
        num, sums, cat = ms.features.totals()
        for j, spec in enumerate(specs.numeric):
            families.numeric([name, spec.name], spec, num[j], sums[j], dist.buckets)
        for j, spec in enumerate(specs.categorical):
            families.categories([name, spec.name], spec, cat[j], dist.top_k)

    def _predictions(self, families: _Families, name: str, ms, dist: Distribution) -> None:
        if ms.predictions is None:
            return
        spec = ms.predictions.spec
        counts, sums = ms.predictions.totals()
        for slot, version in ms.slots.labels():
            if version == "other" and not counts[slot].any():
                continue
            self._column(families, [name, version], spec, counts[slot], sums[slot], dist)
