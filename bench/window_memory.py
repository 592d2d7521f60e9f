"""Steady-state memory of the windows with every bucket filled, and the statistics and
rendering time over them: 100 models x 100 features (70 numeric, 30 categorical), 24 h
windows in 5 min buckets (the ring holds two windows: 48 h of data).

    python bench/window_memory.py [--models 100] [--features 100] [--length 24h]
                                  [--bucket 5m] [--max-buckets 60]

Each run is a subprocess: the exporter with profile windows held in at most --max-buckets
buckets (the shipped MAX_PROFILE_BUCKETS), and with no cap (every 5 min bucket kept, as
before). Every bucket of the ring gets records (one line per model per bucket: a line
writes a cell per feature, ~400 bytes apart in a bucket's row of 100 features x ~100 bins,
so every page of every row is touched, as a long run's recycled rows are), so the RSS is
the ring's full size, not a short run's (short runs understate it). Printed: RSS after
ingest (MiB); a statistics pass with every model changed (as if each had new records, as
bench/growth.py: before, a pass that reused every result was timed), the ingest thread's
part of a rendering (collectors and text) and the gzip thread's (ms, medians of 3 after a
first pass of each); the series; and the windows' profile buckets.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import OUT, table

SECONDS = {"m": 60, "h": 3600}


def seconds(text: str) -> float:
    return float(text[:-1]) * SECONDS[text[-1]]


def prepare(models: int, features: int, length: str, bucket: str) -> str:
    work = os.path.join(OUT, f"window-memory-{models}x{features}")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(work, "logs"))
    rng = np.random.default_rng(0)
    n_num = features * 7 // 10
    entries = []
    for m in range(models):
        ref = os.path.join(work, f"ref{m}.parquet")
        columns = {f"m{m}_n{j}": rng.normal(0, 1, 2000) for j in range(n_num)}
        cats = [f"c{k}" for k in range(50)]
        columns |= {f"m{m}_c{j}": rng.choice(cats, 2000) for j in range(features - n_num)}
        pq.write_table(pa.table(columns), ref)
        entries.append(
            {
                "name": f"m{m}",
                "serving_logs": [os.path.join(work, "logs", "*.jsonl")],
                "reference": {"path": ref},
                "windows": {"length": length, "bucket": bucket},
            }
        )
    step = seconds(bucket)
    buckets = int(2 * seconds(length) / step)
    now = time.time()
    with open(os.path.join(work, "logs", "a.jsonl"), "w") as fh:
        for b in range(buckets):
            stamp = now - (buckets - b - 0.5) * step
            for m in range(models):
                feats = {f"m{m}_n{j}": round(float(rng.normal()), 3) for j in range(n_num)}
                feats |= {f"m{m}_c{j}": f"c{rng.integers(50)}" for j in range(features - n_num)}
                record = {"timestamp": stamp, "model": f"m{m}", "model_version": "v1"}
                record |= {"latency_ms": 5.0, "prediction": 0.5, "features": feats}
                fh.write(json.dumps(record) + "\n")
    with open(os.path.join(work, "config.json"), "w") as fh:
        json.dump({"models": entries}, fh)
    return work


def measure(work: str, max_buckets: int) -> dict:
    """In this process: ingest every line, then time statistics and rendering."""
    import psutil

    from exporter.app import Exporter
    from exporter.config import parse_config
    from exporter.state import windows

    windows.MAX_PROFILE_BUCKETS = max_buckets
    with open(os.path.join(work, "config.json")) as fh:
        cfg = parse_config(json.load(fh))
    state = os.path.join(work, f"state-{max_buckets}")
    shutil.rmtree(state, ignore_errors=True)
    exporter = Exporter(cfg, state_dir=state)
    exporter._last_stats = time.monotonic() + 1e9  # ingest first, statistics after
    exporter.ingest_pass()
    while not exporter.caught_up:
        exporter.ingest_pass()
    rss = psutil.Process().memory_info().rss
    stats, render, compress = [], [], []
    for _ in range(4):
        for ms in exporter.state.models.values():
            ms._computed_for = None  # as if every model had new records (as growth.py)
        t = time.perf_counter()
        exporter.compute_stats()
        stats.append(time.perf_counter() - t)
        t = time.perf_counter()
        text, _ = exporter.encode()  # the ingest thread's part of a rendering
        render.append(time.perf_counter() - t)
        t = time.perf_counter()
        gzip.compress(text, compresslevel=1)  # the gzip thread's (exporter/compressor.py)
        compress.append(time.perf_counter() - t)
    # The first pass sums every window whole and formats every label set once: not counted.
    stats, render, compress = stats[1:], render[1:], compress[1:]
    ring = next(iter(exporter.state.models.values())).features.ring
    exporter.stop()
    return {
        "rss_mib": rss / 2**20,
        "stats_ms": statistics.median(stats) * 1e3,
        "render_ms": statistics.median(render) * 1e3,
        "gzip_ms": statistics.median(compress) * 1e3,
        "series": text.count(b"\n") - text.count(b"\n#"),
        "buckets": ring.size,
        "bucket_s": ring.bucket_seconds,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=100)
    ap.add_argument("--features", type=int, default=100)
    ap.add_argument("--length", default="24h")
    ap.add_argument("--bucket", default="5m")
    ap.add_argument("--max-buckets", type=int, default=None)
    ap.add_argument("--measure", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.max_buckets)))
        return
    from exporter.state.windows import MAX_PROFILE_BUCKETS

    work = prepare(args.models, args.features, args.length, args.bucket)
    rows = []
    for label, cap in (("capped (shipped)", MAX_PROFILE_BUCKETS), ("every bucket", 10**9)):
        out = subprocess.run(
            [sys.executable, __file__, f"--measure={work}", f"--max-buckets={cap}"],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(
            (
                label,
                f"{r['buckets']} x {r['bucket_s'] / 60:g} min",
                f"{r['rss_mib']:.0f}",
                f"{r['stats_ms']:.0f}",
                f"{r['render_ms']:.0f}",
                f"{r['gzip_ms']:.0f}",
                str(r["series"]),
            )
        )
    shutil.rmtree(work, ignore_errors=True)
    print(
        f"{args.models} models x {args.features} features, windows {args.length} in "
        f"{args.bucket} buckets, every bucket of the ring filled"
    )
    heads = ("profile ring", "buckets held", "RSS MiB", "stats ms", "render ms", "gzip ms")
    print(table(rows, (*heads, "series")))


if __name__ == "__main__":
    main()
