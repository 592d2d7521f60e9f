"""Pipeline runs from the run log.

Example output::

    # TYPE mlpipe_pipeline_runs_total counter
    mlpipe_pipeline_runs_total{pipeline="train-fraud",kind="training",status="failed"} 1.0
    # TYPE mlpipe_pipeline_last_success_timestamp_seconds gauge
    mlpipe_pipeline_last_success_timestamp_seconds{pipeline="train-fraud"} 1.7956e+09
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from exporter.state.pipelines import DURATION_BUCKETS
from exporter.state.store import State


class PipelinesCollector:
    name = "pipelines"

    def collect(self, state: State) -> Iterable[Metric]:
        runs = CounterMetricFamily(
            "mlpipe_pipeline_runs",
            "Finished pipeline runs, by status.",
            labels=["pipeline", "kind", "status"],
        )
        duration = HistogramMetricFamily(
            "mlpipe_pipeline_run_duration_seconds",
            "Duration of finished runs.",
            labels=["pipeline", "kind"],
        )
        last_success = GaugeMetricFamily(
            "mlpipe_pipeline_last_success_timestamp_seconds",
            "End of the last successful run.",
            labels=["pipeline"],
        )
        last_duration = GaugeMetricFamily(
            "mlpipe_pipeline_last_run_duration_seconds",
            "Duration of the last finished run.",
            labels=["pipeline"],
        )
        running = GaugeMetricFamily(
            "mlpipe_pipeline_running_runs", "Runs started and not finished.", labels=["pipeline"]
        )
        age = GaugeMetricFamily(
            "mlpipe_pipeline_oldest_running_run_age_seconds",
            "Age of the oldest run still running.",
            labels=["pipeline"],
        )
        usage = CounterMetricFamily(
            "mlpipe_pipeline_resource_usage",
            "Resources used by finished runs, from the run log.",
            labels=["pipeline", "resource"],
        )
        expected = GaugeMetricFamily(
            "mlpipe_pipeline_expected_interval_seconds",
            "Longest expected time between successes (config).",
            labels=["pipeline"],
        )
        peak = GaugeMetricFamily(
            "mlpipe_pipeline_last_run_peak_memory_bytes",
            "Peak memory of the last finished run, from the run log.",
            labels=["pipeline"],
        )
        now = time.time()
        les = [floatToGoString(b) for b in DURATION_BUCKETS] + ["+Inf"]
        for name, ps in state.pipelines.items():
            if ps.pipeline.run_log is None:
                continue
            kind = ps.pipeline.kind
            for status in ("succeeded", "failed"):
                runs.add_metric([name, kind, status], float(ps.runs[status]))
            cumulative = np.cumsum(ps.histogram).astype(float).tolist()
            duration.add_metric(
                [name, kind], list(zip(les, cumulative, strict=True)), sum_value=ps.duration_sum
            )
            if ps.last_success:
                last_success.add_metric([name], ps.last_success)
            if ps.last_duration is not None:
                last_duration.add_metric([name], ps.last_duration)
            if ps.last_peak_memory is not None:
                peak.add_metric([name], ps.last_peak_memory)
            running.add_metric([name], len(ps.running))
            oldest = ps.oldest_running_start()
            if oldest is not None:
                age.add_metric([name], max(0.0, now - oldest))
            for resource in ("cpu_seconds", "gpu_seconds"):
                usage.add_metric([name, resource], float(ps.resources[resource]))
            if ps.pipeline.expected_interval:
                expected.add_metric([name], ps.pipeline.expected_interval)
        yield from (
            runs,
            duration,
            last_success,
            last_duration,
            running,
            age,
            usage,
            expected,
            peak,
        )
