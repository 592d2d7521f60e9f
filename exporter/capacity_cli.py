"""``mlpipe-exporter estimate-quota``: serving replicas from the serving logs, and quota
plans for data, training, validation and experiment pipelines from their run logs."""

from __future__ import annotations

import json
import sys

import numpy as np

from exporter.config import Config
from exporter.sources.reader import read_complete_lines
from exporter.sources.runs import RunLogParser
from exporter.sources.serving_log import ServingLogParser
from exporter.stats.capacity import estimate
from exporter.stats.plan import RunCost, plan_quotas


def collect(config: Config, models: list[str], window: float) -> dict[str, tuple]:
    """Per model: (timestamps, latencies in seconds) of its logged requests in the window."""
    names = [m.name for m in config.models]
    parser = ServingLogParser(config.serving_log, names)
    ts: dict[str, list] = {m: [] for m in models}
    lat: dict[str, list] = {m: [] for m in models}
    patterns = sorted(
        {p for m in config.models if m.name in models for p in m.serving_logs if isinstance(p, str)}
    )
    for data in read_complete_lines(patterns):
        batch = parser.parse(data)
        for m in models:
            sel = batch.model == names.index(m)
            ts[m].append(batch.timestamp[sel])
            lat[m].append(batch.latency[sel])
    out = {}
    for m in models:
        t = np.concatenate(ts[m]) if ts[m] else np.empty(0)
        latency = np.concatenate(lat[m]) if lat[m] else np.empty(0)
        if t.size:
            recent = t >= t.max() - window
            t, latency = t[recent], latency[recent]
        out[m] = (t, latency)
    return out


def run_costs(config: Config) -> dict[str, list[RunCost]]:
    """Per pipeline, each finished run's costs from the run logs (a run id counts once)."""
    pipelines = [p.name for p in config.pipelines]
    parser = RunLogParser(pipelines)
    starts: dict[tuple[str, str], float | None] = {}
    done: dict[tuple[str, str], RunCost] = {}
    patterns = sorted({p.run_log for p in config.pipelines if p.run_log})
    for data in read_complete_lines(patterns):
        for record, start, end in parser.parse(data).records:
            key = (record.pipeline, str(record.run_id))
            if record.status == "running":
                starts.setdefault(key, start)
            elif key not in done:
                done[key] = RunCost(
                    start if start is not None else starts.get(key),
                    end,
                    record.cpu_seconds,
                    record.gpu_seconds,
                    record.peak_memory_bytes,
                )
    out: dict[str, list[RunCost]] = {name: [] for name in pipelines}
    for (pipeline, _), cost in done.items():
        out[pipeline].append(cost)
    return out


def plans(config: Config) -> tuple[dict, dict]:
    """(pipeline plans per quota, quota plans) for every quota of pipelines."""
    pipelines = {p.name: p for p in config.pipelines}
    by_pipeline: dict[str, dict] = {}
    quotas: dict[str, dict] = {}
    for quota, members in plan_quotas(config.quotas, pipelines, run_costs(config)):
        for plan in members:
            by_pipeline.setdefault(plan.pipeline, {})[quota.quota] = plan.as_dict()
        quotas[quota.quota] = quota.as_dict()
    return by_pipeline, quotas


def _amount(value: float | None, resource: str) -> str:
    if value is None:
        return "-"
    if resource == "memory_bytes" or resource == "peak_memory_bytes":
        return f"{value / 2**30:.1f}GiB"
    return f"{value / 3600:.1f}h"


def print_plans(by_pipeline: dict, quotas: dict, config: Config) -> None:
    print()
    print(
        f"{'pipeline':<18} {'kind':<11} {'quota':<14} {'runs':>5} {'runs/period':>11} "
        f"{'p50/run':>9} {'p95/run':>9} {'need':>10}"
    )
    for name, per_quota in by_pipeline.items():
        for quota, plan in per_quota.items():
            q = next(x for x in config.quotas if x.name == quota)
            key = "peak_memory_bytes" if q.resource == "memory_bytes" else q.resource
            rpp = plan["runs_per_period"]
            print(
                f"{name:<18} {plan['kind']:<11} {quota:<14} {plan['runs']:>5} "
                f"{'-' if rpp is None else f'{rpp:.1f}':>11} "
                f"{_amount(plan['median_per_run'].get(key), key):>9} "
                f"{_amount(plan['p95_per_run'].get(key), key):>9} "
                f"{_amount(plan['need_per_period'].get(key), key):>10}"
            )
    print()
    print(
        f"{'quota':<14} {'resource':<13} {'limit':>10} {'planned':>10} {'experiments':>11}  verdict"
    )
    for name, q in quotas.items():
        day = q["runs_out_on_day"]
        verdict = (
            f"runs out on day {day:.0f} of {q['period_days']:.0f} at this plan"
            if day is not None
            else "fits"
        )
        if q["without_history"]:
            verdict += f" (no cadence yet: {', '.join(q['without_history'])})"
        print(
            f"{name:<14} {q['resource']:<13} {_amount(q['limit'], q['resource']):>10} "
            f"{_amount(q['planned'], q['resource']):>10} {q['experiment_share']:>10.0%}  {verdict}"
        )
    print(
        "need = p95 per run x runs per period (expected_interval, else the median gap between "
        "runs) x (1 + plan_headroom); memory: the p95 peak (a level)"
    )


def run(config: Config, model: str | None, output: str, window: float) -> int:
    models = [model] if model else [m.name for m in config.models]
    unknown = [m for m in models if m not in {x.name for x in config.models}]
    if unknown:
        print(f"no model named {unknown[0]!r} in {config.source}", file=sys.stderr)
        return 1
    results = {}
    for name, (t, latency) in collect(config, models, window).items():
        if t.size == 0:
            results[name] = None
            continue
        cap = config.model(name).capacity
        results[name] = estimate(
            t, latency, cap.replica_concurrency, cap.target_utilization, cap.headroom
        ).as_dict()
    by_pipeline, quotas = plans(config) if model is None else ({}, {})
    if output == "json":
        print(json.dumps({"models": results, "pipelines": by_pipeline, "quotas": quotas}, indent=2))
        return 0
    header = (
        f"{'model':<16} {'requests':>9} {'peak qps':>9} {'mean lat':>9} {'p99 lat':>9} "
        f"{'concurrency':>11} {'replicas':>8}"
    )
    print(header)
    for name, r in results.items():
        if r is None:
            print(f"{name:<16} (no requests in the logs)")
            continue
        print(
            f"{name:<16} {r['requests']:>9} {r['peak_qps']:>9.1f} "
            f"{r['mean_latency_seconds'] * 1000:>7.1f}ms {r['p99_latency_seconds'] * 1000:>7.1f}ms "
            f"{r['concurrency']:>11.2f} {r['replicas']:>8}"
        )
    print(
        "peak qps = p99 of per-second counts; concurrency = peak qps x mean latency "
        "(Little's law); replicas = ceil(concurrency x (1 + headroom) / "
        "(replica_concurrency x target_utilization))"
    )
    if quotas:
        print_plans(by_pipeline, quotas, config)
    return 0
