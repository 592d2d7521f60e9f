"""Serving traffic per model and version.

Example output::

    # HELP mlpipe_serving_requests_total Requests served, by outcome.
    # TYPE mlpipe_serving_requests_total counter
    mlpipe_serving_requests_total{model="fraud",version="v7",outcome="success"} 9812.0
    # TYPE mlpipe_serving_request_duration_seconds histogram
    mlpipe_serving_request_duration_seconds_bucket{model="fraud",version="v7",le="0.01"} 4410.0
    # TYPE mlpipe_serving_last_request_timestamp_seconds gauge
    mlpipe_serving_last_request_timestamp_seconds{model="fraud",version="v7"} 1.7956e+09
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from exporter.state.serving import ERROR, SUCCESS
from exporter.state.store import State


class ServingCollector:
    name = "serving"

    def collect(self, state: State) -> Iterable[Metric]:
        requests = CounterMetricFamily(
            "mlpipe_serving_requests",
            "Requests served, by outcome.",
            labels=["model", "version", "outcome"],
        )
        duration = HistogramMetricFamily(
            "mlpipe_serving_request_duration_seconds",
            "Request latency as logged by the serving system.",
            labels=["model", "version"],
        )
        last = GaugeMetricFamily(
            "mlpipe_serving_last_request_timestamp_seconds",
            "Time of the most recent request seen (clamped to now).",
            labels=["model", "version"],
        )
        for name, model_state in state.models.items():
            counters = model_state.serving
            les = [floatToGoString(b) for b in counters.buckets] + ["+Inf"]
            for slot, version in model_state.slots.labels():
                req = counters.requests[slot]
                if version == "other" and not req.any():
                    continue
                requests.add_metric([name, version, "success"], float(req[SUCCESS]))
                requests.add_metric([name, version, "error"], float(req[ERROR]))
                cumulative = np.cumsum(counters.histogram[slot])
                duration.add_metric(
                    [name, version],
                    list(zip(les, cumulative.astype(float).tolist(), strict=True)),
                    sum_value=float(counters.latency_sum[slot]),
                )
                if counters.last_timestamp[slot] > 0:
                    last.add_metric([name, version], float(counters.last_timestamp[slot]))
        estimated = GaugeMetricFamily(
            "mlpipe_serving_estimated_replicas",
            "Replicas needed for the window's busiest bucket (Little's law, docs/capacity.md).",
            labels=["model"],
        )
        peak = GaugeMetricFamily(
            "mlpipe_serving_peak_requests_per_second",
            "Peak request rate: p99 of the window's per-bucket rates.",
            labels=["model"],
        )
        for name, model_state in state.models.items():
            cap = model_state.results.capacity
            if cap:
                estimated.add_metric([name], cap["replicas"])
                peak.add_metric([name], cap["peak_qps"])
        yield requests
        yield duration
        yield last
        yield estimated
        yield peak
