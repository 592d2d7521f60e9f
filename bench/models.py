"""The cost of a serving-log line as the number of models grows: one log, every model with
its own reference and features (distinct names, the worst case for a shared parser).

    python bench/models.py [--lines 30000] [--repeats 3] [--models 1,10,20,50,100]
                           [--features 10,50]

One core; ingest only (statistics held off), the real Exporter from tail to windows;
lines/s and µs per line, medians of --repeats, and the ratio to one model.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import OUT, pin_one_core, table
from exporter import gcpolicy
from exporter.app import Exporter
from exporter.config import parse_config


def prepare(
    models: int,
    features: int,
    lines: int,
    span: float = 60.0,
    window: str = "1h",
    bucket: str = "1m",
) -> tuple[str, dict]:
    """A log of ``lines`` lines stamped over the last ``span`` seconds, round robin over
    ``models`` models of ``features`` features each, and the config that reads it."""
    work = os.path.join(OUT, f"models-{models}x{features}")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(work, "logs"))
    rng = np.random.default_rng(0)

    def names(m: int) -> list[str]:
        return [f"m{m}_f{j}" for j in range(features)]

    entries = []
    for m in range(models):
        ref = os.path.join(work, f"ref{m}.parquet")
        pq.write_table(pa.table({n: rng.normal(0, 1, 2000) for n in names(m)}), ref)
        entries.append(
            {
                "name": f"m{m}",
                "serving_logs": [os.path.join(work, "logs", "*.jsonl")],
                "reference": {"path": ref},
                "windows": {"length": window, "bucket": bucket},
            }
        )
    now = time.time()
    values = np.round(rng.normal(0, 1, (lines, features)), 4).tolist()
    with open(os.path.join(work, "logs", "a.jsonl"), "w") as fh:
        for i in range(lines):
            m = i % models
            record = {
                "timestamp": now - span + i * span / lines,
                "model": f"m{m}",
                "model_version": "v1",
                "latency_ms": 5.0,
                "features": dict(zip(names(m), values[i], strict=True)),
            }
            fh.write(json.dumps(record) + "\n")
    return work, {"models": entries}


def ingest_all(exporter: Exporter) -> float:
    """Seconds to read every line there is, the process's long-lived objects frozen first
    as the exporter's loop freezes them after its first pass (exporter/gcpolicy.py):
    unfrozen, every full collection walks the whole heap of imported modules, and the
    ingest ran 153-157k lines/s at 30 features against 178-193k frozen."""
    gcpolicy.settle()
    start = time.perf_counter()
    exporter.ingest_pass()
    while not exporter.caught_up:
        exporter.ingest_pass()
    return time.perf_counter() - start


def ingest(work: str, cfg: dict, lines: int) -> float:
    state = os.path.join(work, "state")
    shutil.rmtree(state, ignore_errors=True)
    exporter = Exporter(parse_config(cfg), state_dir=state)
    exporter._last_stats = time.monotonic() + 1e9  # ingest only: statistics held off
    elapsed = ingest_all(exporter)
    exporter.stop()
    return elapsed / lines * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=30_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--models", default="1,10,20,50,100")
    ap.add_argument("--features", default="10,50")
    args = ap.parse_args()
    pin_one_core()
    rows = []
    for features in [int(x) for x in args.features.split(",")]:
        base = None
        for models in [int(x) for x in args.models.split(",")]:
            work, cfg = prepare(models, features, args.lines)
            us = statistics.median(ingest(work, cfg, args.lines) for _ in range(args.repeats))
            base = base or us
            rows.append((features, models, f"{1e3 / us:.1f}k", f"{us:.1f}", f"{us / base:.2f}"))
            shutil.rmtree(work, ignore_errors=True)
    print(
        f"{args.lines} lines, one log, each model its own {args.features} features "
        f"(distinct names); one core; ingest only; medians of {args.repeats}"
    )
    print(table(rows, ("features", "models", "lines/s", "µs per line", "× one model")))


if __name__ == "__main__":
    main()
