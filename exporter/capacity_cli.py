"""``mlpipe-exporter estimate-quota``: serving capacity from the serving logs on disk."""

from __future__ import annotations

import json
import sys

import numpy as np

from exporter.config import Config
from exporter.sources.reader import read_complete_lines
from exporter.sources.serving_log import ServingLogParser
from exporter.stats.capacity import estimate


def collect(config: Config, models: list[str], window: float) -> dict[str, tuple]:
    """Per model: (timestamps, latencies in seconds) of its logged requests in the window."""
    names = [m.name for m in config.models]
    parser = ServingLogParser(config.serving_log, names)
    ts: dict[str, list] = {m: [] for m in models}
    lat: dict[str, list] = {m: [] for m in models}
    patterns = sorted({p for m in config.models if m.name in models for p in m.serving_logs})
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
    if output == "json":
        print(json.dumps(results, indent=2))
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
    return 0
