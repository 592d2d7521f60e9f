"""Skew (window vs training reference) and drift (window vs previous window).

Example output::

    # TYPE mlpipe_feature_skew gauge
    mlpipe_feature_skew{model="fraud",feature="amount",method="psi"} 0.031
    # TYPE mlpipe_prediction_version_divergence gauge
    mlpipe_prediction_version_divergence{model="fraud",version="v7",method="js"} 0.12
    # TYPE mlpipe_drift_threshold gauge
    mlpipe_drift_threshold{model="fraud",method="psi"} 0.2

Values come from the results the ingest thread computed last; a comparison with fewer
than ``min_samples`` values on either side is not exported at all.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.collectors.blocks import BlockFamily, LayoutCache, gauge_layout
from exporter.state.store import State
from exporter.stats.drift import METHODS


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


def _layout(model: str, name: str, labelnames: tuple[str, ...], labels: list[tuple]):
    return gauge_layout(model, name, labelnames, [(model, *values) for values in labels])


def _block(name: str, doc: str) -> BlockFamily:
    return BlockFamily(name, doc, "gauge")


class DriftCollector:
    name = "drift"

    def __init__(self):
        # Per-feature families are blocks (collectors/blocks.py): their series are the same
        # from one scrape to the next as long as the same comparisons were computed.
        self._layouts = LayoutCache()

    def _run(self, family: BlockFamily, model: str, labelnames, labels: list[tuple], values):
        """``family``'s lines for ``model``: label values after the model, one per value."""
        key = (family.name, model, tuple(labels))
        names = ("model", *labelnames)
        layout = self._layouts.get(key, _layout, model, family.name, names, labels)
        family.add_run(layout, np.array(values, np.float64))

    def collect(self, state: State) -> Iterable[Metric]:
        fm = ["model", "feature", "method"]
        vm = ["model", "version", "method"]
        feature_skew = _block(
            "mlpipe_feature_skew", "Distance of a feature's window distribution from training."
        )
        feature_drift = _block(
            "mlpipe_feature_drift", "Distance of a feature's window from the previous window."
        )
        pred_skew = _gauge(
            "mlpipe_prediction_skew", "Distance of predictions in the window from training.", vm
        )
        pred_drift = _gauge(
            "mlpipe_prediction_drift",
            "Distance of predictions in the window from the previous window.",
            vm,
        )
        divergence = _gauge(
            "mlpipe_prediction_version_divergence",
            "Distance of a version's predictions from the stable version's, same window.",
            vm,
        )
        label_skew = _gauge(
            "mlpipe_label_skew",
            "Distance of joined labels in the window from training.",
            ["model", "method"],
        )
        label_drift = _gauge(
            "mlpipe_label_drift",
            "Distance of joined labels in the window from the previous window.",
            ["model", "method"],
        )
        threshold = _gauge(
            "mlpipe_drift_threshold",
            "Alerting threshold of a method, from the config.",
            ["model", "method"],
        )
        samples = _gauge(
            "mlpipe_window_samples", "Records in the current window.", ["model", "version"]
        )
        computed = _gauge(
            "mlpipe_drift_last_computed_timestamp_seconds",
            "When skew and drift were last computed.",
            ["model"],
        )
        dropped = CounterMetricFamily(
            "mlpipe_window_dropped_records",
            "Records outside the windows' time range (too_old, future), not profiled.",
            labels=["model", "reason"],
        )
        ref_up = _gauge(
            "mlpipe_reference_up",
            "Whether the model's reference profile loaded (1) or failed (0).",
            ["model"],
        )
        ref_rows = _gauge("mlpipe_reference_rows", "Rows in the reference data.", ["model"])
        ref_building = _gauge(
            "mlpipe_reference_building",
            "1 while the model's reference profile is being built (in the background; skew "
            "is absent until it is ready).",
            ["model"],
        )
        stable = _gauge(
            "mlpipe_model_stable_version",
            "1 for the version canaries are compared with (config, else the busiest).",
            ["model", "version"],
        )
        fc = ["model", "feature", "comparison"]
        vc = ["model", "version", "comparison"]
        mc = ["model", "comparison"]
        families = {
            "feature": (
                _block(
                    "mlpipe_feature_drifted",
                    "1 if the feature's window differs from the reference (skew) or the previous "
                    "window (drift) beyond chance, after correction across the model's columns.",
                ),
                _block(
                    "mlpipe_feature_drift_pvalue",
                    "p-value of the feature's two-sample test (KS and decile chi-squared for "
                    "numbers, chi-squared for categories), before correction.",
                ),
                _block(
                    "mlpipe_feature_drift_effect",
                    "Share of traffic that moved: the KS statistic (numbers) or the total "
                    "variation distance (categories).",
                ),
            ),
            "prediction": (
                _gauge(
                    "mlpipe_prediction_drifted",
                    "1 if a version's predictions differ beyond chance (as "
                    "mlpipe_feature_drifted).",
                    vc,
                ),
                _gauge("mlpipe_prediction_drift_pvalue", "p-value of the predictions' test.", vc),
                _gauge(
                    "mlpipe_prediction_drift_effect",
                    "Share of predictions that moved (KS or total variation).",
                    vc,
                ),
            ),
            "label": (
                _gauge(
                    "mlpipe_label_drifted",
                    "1 if joined labels differ beyond chance (as mlpipe_feature_drifted).",
                    mc,
                ),
                _gauge("mlpipe_label_drift_pvalue", "p-value of the labels' test.", mc),
                _gauge(
                    "mlpipe_label_drift_effect",
                    "Share of labels that moved (KS or total variation).",
                    mc,
                ),
            ),
        }
        drifted_features = _gauge(
            "mlpipe_model_drifted_features",
            "Features of the model decided drifted in the current window.",
            mc,
        )
        tested = _gauge(
            "mlpipe_drift_tested_columns",
            "Columns (features, predictions per version, labels) tested together, the family "
            "the false-alarm rate is held over.",
            mc,
        )
        pvalue_threshold = _gauge(
            "mlpipe_drift_pvalue_threshold",
            "The p-value at or below which a column is drifted now (Benjamini-Hochberg or "
            "Bonferroni at the false-alarm rate).",
            mc,
        )
        alpha = _gauge(
            "mlpipe_drift_false_alarm_rate",
            "The configured chance, with no drift, that a window flags any of the model's "
            "columns (per comparison).",
            ["model"],
        )
        for name, ms in state.models.items():
            r = ms.results
            alpha.add_metric([name], ms.model.drift.false_alarm_rate)
            # The features' tests as blocks, in the order of r.tests.
            tests = [(key, pe) for key, pe in r.tests.items() if key[0] == "feature"]
            if tests:
                labels = [key[1:] for key, _ in tests]
                flagged, pvalue, size = families["feature"]
                self._run(flagged, name, fc[1:], labels, [k in r.drifted for k, _ in tests])
                self._run(pvalue, name, fc[1:], labels, [p for _, (p, _) in tests])
                self._run(size, name, fc[1:], labels, [e for _, (_, e) in tests])
            for key, (p, effect) in r.tests.items():
                kind, column, comparison = key
                if kind == "feature":
                    continue
                flagged, pvalue, size = families[kind]
                labels = [name, comparison] if kind == "label" else [name, column, comparison]
                flagged.add_metric(labels, 1.0 if key in r.drifted else 0.0)
                pvalue.add_metric(labels, p)
                size.add_metric(labels, effect)
            # A comparison has a threshold exactly when it tested a column.
            for comparison, in_force in r.pvalue_threshold.items():
                keys = [k for k in r.tests if k[2] == comparison]
                features = sum(k[0] == "feature" and k in r.drifted for k in keys)
                tested.add_metric([name, comparison], len(keys))
                drifted_features.add_metric([name, comparison], features)
                pvalue_threshold.add_metric([name, comparison], in_force)
            if r.stable_version is not None:
                stable.add_metric([name, r.stable_version], 1.0)
            for family, values in (
                (feature_skew, r.feature_skew),
                (feature_drift, r.feature_drift),
            ):
                if values:
                    self._run(family, name, fm[1:], list(values), list(values.values()))
            for (version, method), value in r.prediction_skew.items():
                pred_skew.add_metric([name, version, method], value)
            for (version, method), value in r.prediction_drift.items():
                pred_drift.add_metric([name, version, method], value)
            for (version, method), value in r.prediction_divergence.items():
                divergence.add_metric([name, version, method], value)
            for method, value in r.label_skew.items():
                label_skew.add_metric([name, method], value)
            for method, value in r.label_drift.items():
                label_drift.add_metric([name, method], value)
            for method, value in ms.thresholds().items():
                threshold.add_metric([name, method], value)
            for version, n in r.window_samples.items():
                samples.add_metric([name, version], n)
            if r.computed_at:
                computed.add_metric([name], r.computed_at)
            for reason in ("too_old", "future"):
                dropped.add_metric([name, reason], ms.dropped[reason])
            status = state.references.get(name)
            if status is not None:
                ref_up.add_metric([name], 1.0 if status.ok else 0.0)
                ref_building.add_metric([name], 1.0 if status.building else 0.0)
                if status.ok:
                    ref_rows.add_metric([name], status.rows)
        # The method registry, so rules select distances by a label instead of by name.
        info = _gauge(
            "mlpipe_drift_method_info",
            "The comparison methods: direction higher_is_worse (distances: alert above the "
            "threshold) or lower_is_worse (p-values), and the column kinds they apply to.",
            ["method", "direction", "kinds"],
        )
        for name, method in METHODS.items():
            direction = "higher_is_worse" if method.higher_is_worse else "lower_is_worse"
            info.add_metric([name, direction, ",".join(sorted(method.kinds))], 1.0)
        yield info
        for family in families.values():
            yield from family
        yield from (drifted_features, tested, pvalue_threshold, alpha)
        yield from (
            feature_skew,
            feature_drift,
            pred_skew,
            pred_drift,
            divergence,
            label_skew,
            label_drift,
            threshold,
            stable,
            samples,
            computed,
            dropped,
            ref_up,
            ref_rows,
            ref_building,
        )
