"""Quota limits, use, shares and the exhaustion forecast.

Example output::

    # TYPE mlpipe_quota_used gauge
    mlpipe_quota_used{quota="gpu-pool",resource="gpu_seconds"} 1.2e+06
    # TYPE mlpipe_quota_exhaustion_seconds gauge
    mlpipe_quota_exhaustion_seconds{quota="gpu-pool",resource="gpu_seconds"} 864000.0
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily, Metric

from exporter.state.store import State
from exporter.stats.plan import plan_quotas


def _current_qps(state: State, model: str, now: float) -> float:
    """Requests per second in the last complete window bucket of a model."""
    ms = state.models.get(model)
    return 0.0 if ms is None else ms.traffic.last_bucket_rate(now)


class QuotaCollector:
    name = "quota"

    def collect(self, state: State) -> Iterable[Metric]:
        qr = ["quota", "resource"]
        limit = GaugeMetricFamily("mlpipe_quota_limit", "Quota limit (config).", labels=qr)
        used = GaugeMetricFamily(
            "mlpipe_quota_used",
            "Use in the current period (cumulative resources) or now "
            "(requests_per_second, memory_bytes).",
            labels=qr,
        )
        member = GaugeMetricFamily(
            "mlpipe_quota_pipeline_used",
            "A member pipeline's part of the quota's use.",
            labels=["quota", "pipeline"],
        )
        model_used = GaugeMetricFamily(
            "mlpipe_quota_model_used",
            "A member model's part of a requests_per_second quota.",
            labels=["quota", "model"],
        )
        rate = GaugeMetricFamily(
            "mlpipe_quota_usage_rate", "Use per second over the quota's forecast_window.", labels=qr
        )
        exhaustion = GaugeMetricFamily(
            "mlpipe_quota_exhaustion_seconds",
            "Seconds until the limit at the current rate (+Inf: never).",
            labels=qr,
        )
        period_end = GaugeMetricFamily(
            "mlpipe_quota_period_end_timestamp_seconds",
            "When a calendar quota resets.",
            labels=["quota"],
        )
        planned = GaugeMetricFamily(
            "mlpipe_quota_planned",
            "Planned need per period: p95 cost per run of each pipeline's last runs x its "
            "runs per period x (1 + plan_headroom), summed (memory: the p95 peak, a level).",
            labels=qr,
        )
        experiments = GaugeMetricFamily(
            "mlpipe_quota_planned_experiment_ratio",
            "Share of the planned need taken by experiment pipelines (kind: experiment).",
            labels=qr,
        )
        now = time.time()
        pipelines = {name: ps.pipeline for name, ps in state.pipelines.items()}
        costs = {name: ps.history for name, ps in state.pipelines.items()}
        for plan, _ in plan_quotas(state.config.quotas, pipelines, costs):
            labels = [plan.quota, plan.resource]
            planned.add_metric(labels, plan.planned)
            experiments.add_metric(labels, plan.experiment_share)
        for q in state.config.quotas:
            labels = [q.name, q.resource]
            limit.add_metric(labels, q.limit)
            ledger = state.quotas.get(q.name)
            if ledger is not None:
                snap = ledger.snapshot(now)
                used.add_metric(labels, snap["used"])
                for pipeline, value in snap["members"].items():
                    member.add_metric([q.name, pipeline], value)
                rate.add_metric(labels, snap["rate"])
                exhaustion.add_metric(labels, snap["exhaustion_seconds"])
                if snap["period_end"] is not None:
                    period_end.add_metric([q.name], snap["period_end"])
            elif q.resource == "memory_bytes":
                parts = {p: state.pipelines[p].memory_bytes for p in q.pipelines}
                used.add_metric(labels, sum(parts.values()))
                for pipeline, value in parts.items():
                    member.add_metric([q.name, pipeline], value)
            elif q.resource == "requests_per_second":
                parts = {m: _current_qps(state, m, now) for m in q.models}
                used.add_metric(labels, sum(parts.values()))
                for model, value in parts.items():
                    model_used.add_metric([q.name, model], value)
        yield from (limit, used, member, model_used, rate, exhaustion, period_end)
        yield from (planned, experiments)
