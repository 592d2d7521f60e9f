"""Datasets: rows and freshness of the latest partition, skew and drift, data quality.

Example output::

    # TYPE mlpipe_dataset_feature_skew gauge
    mlpipe_dataset_feature_skew{dataset="fraud-daily",feature="amount",method="psi"} 0.41
    # TYPE mlpipe_dataset_files_failed_total counter
    mlpipe_dataset_files_failed_total{dataset="fraud-daily",reason="corrupt"} 1.0
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.state.datasets import FAILURE_REASONS, SCHEMA_PROBLEMS
from exporter.state.profiles import STATUSES
from exporter.state.store import State


class DatasetsCollector:
    name = "datasets"

    def collect(self, state: State) -> Iterable[Metric]:
        dfm = ["dataset", "feature", "method"]
        rows = GaugeMetricFamily(
            "mlpipe_dataset_rows", "Rows in the latest partition.", labels=["dataset"]
        )
        partitions = GaugeMetricFamily(
            "mlpipe_dataset_partitions", "Partitions profiled.", labels=["dataset"]
        )
        updated = GaugeMetricFamily(
            "mlpipe_dataset_last_update_timestamp_seconds",
            "Newest modification time of a profiled file.",
            labels=["dataset"],
        )
        skew = GaugeMetricFamily(
            "mlpipe_dataset_feature_skew",
            "Latest partition vs the model's training reference.",
            labels=dfm,
        )
        drift = GaugeMetricFamily(
            "mlpipe_dataset_feature_drift",
            "Latest partition vs the partition before it.",
            labels=dfm,
        )
        label_skew = GaugeMetricFamily(
            "mlpipe_dataset_label_skew",
            "Labels of the latest partition vs training.",
            labels=["dataset", "method"],
        )
        label_drift = GaugeMetricFamily(
            "mlpipe_dataset_label_drift",
            "Labels of the latest partition vs the one before.",
            labels=["dataset", "method"],
        )
        values = CounterMetricFamily(
            "mlpipe_dataset_values",
            "Values in profiled files, by data-quality status.",
            labels=["dataset", "feature", "status"],
        )
        schema = GaugeMetricFamily(
            "mlpipe_dataset_schema_problem",
            "1 where the latest partition lacks a feature column or has it with the wrong type.",
            labels=["dataset", "feature", "problem"],
        )
        failed = CounterMetricFamily(
            "mlpipe_dataset_files_failed",
            "Files that could not be profiled, by reason.",
            labels=["dataset", "reason"],
        )
        info = GaugeMetricFamily(
            "mlpipe_dataset_info",
            "Dataset role and reference; always 1.",
            labels=["dataset", "role", "reference"],
        )
        for name, ds in state.datasets.items():
            r = ds.results
            info.add_metric([name, ds.dataset.role, ds.dataset.reference], 1.0)
            partitions.add_metric([name], len(ds.partitions))
            if r.partition:
                rows.add_metric([name], r.rows)
            if ds.last_update:
                updated.add_metric([name], ds.last_update)
            for (feature, method), v in r.feature_skew.items():
                skew.add_metric([name, feature, method], v)
            for (feature, method), v in r.feature_drift.items():
                drift.add_metric([name, feature, method], v)
            for method, v in r.label_skew.items():
                label_skew.add_metric([name, method], v)
            for method, v in r.label_drift.items():
                label_drift.add_metric([name, method], v)
            for j, feature in enumerate(ds.features):
                for k, status in enumerate(STATUSES):
                    values.add_metric([name, feature, status], float(ds.values[j, k]))
            for feature in ds.features:
                problem = r.schema.get(feature)
                for p in SCHEMA_PROBLEMS:
                    schema.add_metric([name, feature, p], 1.0 if problem == p else 0.0)
            for reason in FAILURE_REASONS:
                failed.add_metric([name, reason], float(ds.failed[reason]))
        yield from (
            info,
            rows,
            partitions,
            updated,
            skew,
            drift,
            label_skew,
            label_drift,
            values,
            schema,
            failed,
        )
