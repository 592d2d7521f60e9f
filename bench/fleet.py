"""Fleet: what the distribution export costs, and what the fleet rules cost Prometheus.

    python bench/fleet.py [--models 20] [--features 50] [--instances 3] [--seconds 60]
                          [--window 1h]

1. series per model (distribution families vs the rest) at --features features;
2. the recording rules' evaluation time in a real Prometheus: --instances exporters, each
   with --models models of --features features (the soak's references) and traffic, the
   shipped alert_rules/fleet.yaml (1 h window); Prometheus' own
   prometheus_rule_group_last_duration_seconds, sampled every second, median and max.
   Prometheus has core 1 to itself, the exporters share core 0: the rules' cost, not the
   exporters'. A fresh Prometheus has no previous window for an hour, so the shipped rules
   compute no drift in a short run; ``--window 2m`` (rules generated for it) does, after
   2 minutes (its increase() reads 8 samples a series, the hour's 240). Durations are
   sampled for --seconds once every group has computed skew and drift.

Ingest throughput with and without (bench/ingest.py on two commits) and /metrics latency
under load (bench/soak.py) are the other two figures of docs/fleet.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import requests
import yaml

from bench.soak import write_references
from exporter.durations import parse_duration
from tests.helpers import wait_for
from tests.integration.conftest import ROOT, ExporterProcess, Prometheus

# The distribution families (not mlpipe_feature_values_total, the data-quality counter).
DISTRIBUTION = re.compile(r"^mlpipe_((feature|prediction|label)_(value|category)_|reference_)")


def traffic(path: str, models: int, features: int, lines: int) -> None:
    rng = np.random.default_rng(2)
    now = time.time()
    with open(path, "a") as fh:
        for i in range(lines):
            feats = {f"f{j}": round(float(rng.normal(j % 5, 1.0)), 3) for j in range(features - 5)}
            feats.update({f"c{j}": "abcd"[int(rng.integers(4))] for j in range(5)})
            record = {"timestamp": now, "model": f"m{i % models}", "model_version": "v1",
                      "features": feats, "prediction": float(rng.random())}  # fmt: skip
            fh.write(json.dumps(record) + "\n")


def trickle(paths: list[str], models: int, features: int, stop: threading.Event) -> None:
    """Traffic all along (500 lines per instance every 10 s), so every window, and the one
    before it, holds min_samples values: with one burst at the start the windows empty after
    a window's length and the rules compute nothing (they cost as much, on NaN shares)."""
    while not stop.wait(10):
        for path in paths:
            traffic(path, models, features, 500)


def series_per_model(text: str, model: str) -> tuple[int, int]:
    dist = rest = 0
    for line in text.splitlines():
        if line.startswith("#") or f'model="{model}"' not in line:
            continue
        if DISTRIBUTION.match(line):
            dist += 1
        else:
            rest += 1
    return dist, rest


def rule_durations(prom: Prometheus) -> dict[str, float]:
    out = {}
    for line in requests.get(f"{prom.url}/metrics", timeout=5).text.splitlines():
        if line.startswith("prometheus_rule_group_last_duration_seconds{"):
            group = re.search(r'rule_group="[^"]*;([^"]+)"', line).group(1)
            out[group] = float(line.rsplit(" ", 1)[1])
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=20)
    ap.add_argument("--features", type=int, default=50)
    ap.add_argument("--instances", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--window", default="1h", help="the fleet rules' window")
    ap.add_argument(
        "--prometheus-cores",
        choices=("one", "all"),
        default="one",
        help="one: Prometheus on a core of its own (the rules' cost); all: on every core, "
        "as a server runs it, so groups evaluated at the same time run side by side",
    )
    args = ap.parse_args()
    cores = os.sched_getaffinity(0)
    work = tempfile.mkdtemp(prefix="mlpipe-fleet-")
    exporters, prom = [], None
    stop = threading.Event()
    try:
        models = write_references(work, args.models, args.features)
        for k in range(args.instances):
            d = os.path.join(work, f"e{k}")
            os.makedirs(os.path.join(d, "logs"))
            cfg = [{**m, "serving_logs": [os.path.join(d, "logs", "*.jsonl")]} for m in models]
            with open(os.path.join(d, "config.yaml"), "w") as fh:
                yaml.safe_dump({"models": cfg}, fh)
            exporters.append(
                ExporterProcess(
                    os.path.join(d, "config.yaml"),
                    os.path.join(d, "state"),
                    os.path.join(d, "log"),
                    "--ingest.interval=10s",
                    "--stats.interval=10s",
                )
            )
        for k, e in enumerate(exporters):
            wait_for(
                lambda e=e: requests.get(f"{e.url}/-/ready", timeout=5).status_code == 200,
                timeout=300,
                what="exporter ready",
            )
            traffic(
                os.path.join(work, f"e{k}", "logs", "a.jsonl"), args.models, args.features, 4000
            )
        logs = [os.path.join(work, f"e{k}", "logs", "a.jsonl") for k in range(args.instances)]
        writer = threading.Thread(
            target=trickle, args=(logs, args.models, args.features, stop), daemon=True
        )
        writer.start()
        wait_for(
            lambda: all("mlpipe_feature_value_count" in e.metrics() for e in exporters),
            timeout=300,
            what="distributions exported",
        )
        text = exporters[0].metrics()
        dist, rest = series_per_model(text, "m0")
        total = sum(1 for ln in text.splitlines() if ln and not ln.startswith("#"))
        os.makedirs(os.path.join(work, "prom"))
        rules = os.path.join(ROOT, "alert_rules", "fleet.yaml")
        if args.window != "1h":
            rules = os.path.join(work, "fleet.yaml")
            subprocess.run(
                [sys.executable, os.path.join(ROOT, "scripts", "generate_fleet_rules.py"),
                 "--window", args.window, "-o", rules],
                check=True,
            )  # fmt: skip
        prom = Prometheus(
            os.path.join(work, "prom"),
            [e.url.removeprefix("http://") for e in exporters],
            [rules],
            scrape={"scrape_interval": "15s"},  # a production interval, not the tests' 1 s
        )
        if len(cores) > 1:
            first, *others = sorted(cores)
            if args.prometheus_cores == "one":
                os.sched_setaffinity(prom.proc.pid, set(others))
            for e in exporters:
                os.sched_setaffinity(e.proc.pid, {first})
        # Sampled from when every group computes what it is for: the reference group runs
        # within its 4 min interval, drift once a previous window exists. An empty
        # evaluation before that takes milliseconds and would pull the medians down.
        started = time.time()
        wait_for(
            lambda: (
                (prom.value("count(mlpipe:feature_skew:fleet)") or 0) > 0
                and (prom.value("count(mlpipe:feature_drift:fleet)") or 0) > 0
            ),
            timeout=600 + 2 * parse_duration(args.window),
            interval=5,
            what="fleet skew and drift",
        )
        print(f"skew and drift computed {time.time() - started:.0f} s after Prometheus started")
        time.sleep(60)  # one more evaluation of every 1 min group with its inputs all there
        samples: dict[str, list[float]] = {}
        deadline = time.time() + args.seconds
        while time.time() < deadline:
            for group, seconds in rule_durations(prom).items():
                samples.setdefault(group, []).append(seconds)
            time.sleep(1)
        fleet_series = prom.value('count({__name__=~"mlpipe:.*"})')
        # What one aggregation over the instances' reference buckets costs this Prometheus,
        # to tell the rules' cost from the machine's.
        probe = "max by (model, feature, le) (mlpipe_reference_feature_bucket_ratio)"
        probe_times = []
        for _ in range(5):
            started = time.perf_counter()
            prom.query(probe)
            probe_times.append(time.perf_counter() - started)
        groups = requests.get(f"{prom.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
        slowest = sorted(
            (
                (r["evaluationTime"], r["name"], r.get("labels", {}))
                for g in groups
                for r in g["rules"]
            ),
            key=lambda t: t[0],
            reverse=True,
        )[:8]
        print(f"fleet: {args.instances} instances x {args.models} models x {args.features} "
              f"features ({args.features - 5} numeric, 5 categorical of 4 values), "
              f"{args.window} window, {args.seconds:.0f} s, Prometheus on "
              f"{args.prometheus_cores} of {len(cores)} cores")  # fmt: skip
        print("| figure | value |")
        print("|---|---|")
        print(f"| series per model, distribution families | {dist} |")
        print(f"| series per model, everything else | {rest} |")
        print(f"| series per instance, all | {total} |")
        print(f"| series the fleet rules record | {fleet_series:.0f} |")
        for group, values in sorted(samples.items()):
            med, worst = statistics.median(values), max(values)
            print(f"| rule group {group}: evaluation median / max, s ({len(values)} samples) "
                  f"| {med:.3f} / {worst:.3f} |")  # fmt: skip
        print(f"| one `{probe}` query ({probe_times and len(probe_times)} runs), median s "
              f"| {statistics.median(probe_times):.3f} |")  # fmt: skip
        print("\nslowest rules (last evaluation, s):")
        for seconds, name, labels in slowest:
            print(f"  {seconds:.3f} {name} {labels}")
    finally:
        stop.set()
        if prom is not None:
            prom.stop()
        for e in exporters:
            e.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
