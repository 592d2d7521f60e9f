"""Model quality from delayed ground-truth labels joined to predictions.

Example output::

    # TYPE mlpipe_model_quality gauge
    mlpipe_model_quality{model="fraud",version="v6",metric="auc"} 0.91
    # TYPE mlpipe_model_quality_threshold gauge
    mlpipe_model_quality_threshold{model="fraud",metric="auc"} 0.8
    # TYPE mlpipe_label_join_total counter
    mlpipe_label_join_total{model="fraud",result="matched"} 9120.0
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.state.store import State

JOIN_RESULTS = ("matched", "unmatched_label", "expired", "evicted", "late")


class QualityCollector:
    name = "quality"

    def collect(self, state: State) -> Iterable[Metric]:
        quality = GaugeMetricFamily(
            "mlpipe_model_quality",
            "Model quality over the current window, from joined labels.",
            labels=["model", "version", "metric"],
        )
        threshold = GaugeMetricFamily(
            "mlpipe_model_quality_threshold",
            "Quality floor (ceiling for logloss, mae, rmse) from the config.",
            labels=["model", "metric"],
        )
        join = CounterMetricFamily(
            "mlpipe_label_join",
            "Labels and predictions by join outcome: matched, unmatched_label (no prediction "
            "waiting), expired (prediction waited past max_delay), evicted (join buffer full), "
            "late (matched, but its prediction is older than the windows).",
            labels=["model", "result"],
        )
        estimated = GaugeMetricFamily(
            "mlpipe_model_quality_estimated",
            "Model quality estimated from the prediction scores alone, before labels arrive "
            "(confidence-based: the reference's calibration; binary, or multiclass one-vs-rest "
            "macro-averaged).",
            labels=["model", "version", "metric"],
        )
        half = GaugeMetricFamily(
            "mlpipe_model_quality_estimated_halfwidth",
            "Half-width of the 95 % band around the estimate: where the realized value falls "
            "if the estimate's assumptions hold (labels drawn from the calibrated scores).",
            labels=["model", "version", "metric"],
        )
        error = GaugeMetricFamily(
            "mlpipe_model_quality_estimate_error",
            "Realized minus estimated quality, where both exist: beyond the half-width, the "
            "estimate's assumptions (calibration, no concept drift) do not hold.",
            labels=["model", "version", "metric"],
        )
        for name, ms in state.models.items():
            for (version, metric), value in ms.results.quality.items():
                quality.add_metric([name, version, metric], value)
            for (version, metric), (value, width) in ms.results.quality_estimated.items():
                estimated.add_metric([name, version, metric], value)
                half.add_metric([name, version, metric], width)
            for (version, metric), value in ms.results.quality_estimate_error.items():
                error.add_metric([name, version, metric], value)
            for metric, value in ms.model.quality_thresholds.items():
                threshold.add_metric([name, metric], value)
            if ms.model.labels:
                for result in JOIN_RESULTS:
                    join.add_metric([name, result], float(ms.labels[result]))
        yield from (quality, threshold, join, estimated, half, error)
