"""Quota plans for data, training, validation and experiment pipelines, from their past runs.

Pure functions: run costs in, a plan out. A pipeline's need per period is its cost per run
(the p95 of its last runs: a plan must cover the expensive runs, not the typical one) times
its runs per period (from ``expected_interval`` where configured, else the median gap
between its last runs' starts), times (1 + headroom). A quota's plan is the sum over its
pipelines; experiments (``kind: experiment``) are reported as their share of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

RESOURCES = ("cpu_seconds", "gpu_seconds", "peak_memory_bytes")


@dataclass(frozen=True)
class RunCost:
    """What one finished run used (None: not recorded)."""

    start: float | None
    end: float | None
    cpu_seconds: float | None = None
    gpu_seconds: float | None = None
    peak_memory_bytes: float | None = None


@dataclass
class PipelinePlan:
    pipeline: str
    kind: str
    runs: int  # finished runs the plan is based on
    runs_per_period: float | None  # None: cadence unknown (fewer than 2 runs, no interval)
    median: dict[str, float] = field(default_factory=dict)  # per run, by resource
    p95: dict[str, float] = field(default_factory=dict)
    need: dict[str, float] = field(default_factory=dict)  # per period, headroom included

    def as_dict(self) -> dict:
        return {
            "pipeline": self.pipeline,
            "kind": self.kind,
            "runs": self.runs,
            "runs_per_period": self.runs_per_period,
            "median_per_run": self.median,
            "p95_per_run": self.p95,
            "need_per_period": self.need,
        }


@dataclass
class QuotaPlan:
    quota: str
    resource: str
    limit: float
    period_seconds: float
    planned: float  # per period
    experiment_share: float  # of the planned amount, 0-1
    by_pipeline: dict[str, float]
    unknown: list[str]  # pipelines without enough history to plan

    @property
    def runs_out_on_day(self) -> float | None:
        """Day of the period on which the plan reaches the limit; None if it never does."""
        if self.planned <= self.limit or self.planned <= 0:
            return None
        return self.period_seconds / 86400 * self.limit / self.planned

    def as_dict(self) -> dict:
        return {
            "quota": self.quota,
            "resource": self.resource,
            "limit": self.limit,
            "period_days": self.period_seconds / 86400,
            "planned": self.planned,
            "experiment_share": self.experiment_share,
            "by_pipeline": self.by_pipeline,
            "without_history": self.unknown,
            "runs_out_on_day": self.runs_out_on_day,
        }


def runs_per_period(
    costs: list[RunCost], period: float, expected_interval: float | None
) -> float | None:
    """Runs in one period: ``period / expected_interval``, else from the observed cadence."""
    if expected_interval:
        return period / expected_interval
    starts = sorted(c.start for c in costs if c.start is not None)
    if len(starts) < 2:
        return None
    gap = float(np.median(np.diff(starts)))
    return period / gap if gap > 0 else None


def plan_pipeline(
    pipeline: str,
    kind: str,
    costs: list[RunCost],
    period: float,
    expected_interval: float | None,
    headroom: float,
    last_runs: int,
) -> PipelinePlan:
    """A pipeline's need per period from its last ``last_runs`` finished runs."""
    costs = sorted(costs, key=lambda c: c.start or c.end or 0.0)[-last_runs:]
    plan = PipelinePlan(pipeline, kind, len(costs), None)
    plan.runs_per_period = runs_per_period(costs, period, expected_interval)
    for resource in RESOURCES:
        values = np.array([v for c in costs if (v := getattr(c, resource)) is not None], float)
        if values.size == 0:
            continue
        plan.median[resource] = float(np.median(values))
        plan.p95[resource] = float(np.percentile(values, 95))
        if resource == "peak_memory_bytes":
            # A level, not a sum over runs: the memory one run needs at its peak.
            plan.need[resource] = plan.p95[resource] * (1 + headroom)
        elif plan.runs_per_period is not None:
            plan.need[resource] = plan.p95[resource] * plan.runs_per_period * (1 + headroom)
    return plan


def plan_quota(
    quota: str,
    resource: str,
    limit: float,
    period: float,
    plans: list[PipelinePlan],
) -> QuotaPlan:
    """A quota's planned need per period: the sum of its pipelines' needs."""
    key = "peak_memory_bytes" if resource == "memory_bytes" else resource
    by_pipeline = {p.pipeline: p.need[key] for p in plans if key in p.need}
    unknown = [p.pipeline for p in plans if key not in p.need]
    planned = float(sum(by_pipeline.values()))
    experiments = sum(by_pipeline.get(p.pipeline, 0.0) for p in plans if p.kind == "experiment")
    share = experiments / planned if planned > 0 else 0.0
    return QuotaPlan(quota, resource, limit, period, planned, share, by_pipeline, unknown)


def plan_quotas(quotas, pipelines: dict, costs: dict) -> list[tuple[QuotaPlan, list]]:
    """(quota plan, its pipelines' plans) for every pipeline quota of the config.

    ``pipelines`` maps names to their config (``kind``, ``expected_interval``), ``costs``
    names to their finished runs' costs. Serving quotas (requests per second) are left to
    the replica estimate.
    """
    out = []
    for q in quotas:
        if q.resource == "requests_per_second":
            continue
        members = [
            plan_pipeline(
                name,
                pipelines[name].kind,
                list(costs.get(name, ())),
                q.period,
                pipelines[name].expected_interval,
                q.plan_headroom,
                q.plan_runs,
            )
            for name in q.pipelines
            if name in pipelines
        ]
        out.append((plan_quota(q.name, q.resource, q.limit, q.period, members), members))
    return out
