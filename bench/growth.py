"""The growth table: what a line, a statistics pass, a rendering and the memory cost as the
number of models and features grows (docs/scaling.md).

    python bench/growth.py [--models 1,10,20,50,100] [--features 10,30,50,100]
                           [--lines 20000] [--window 1h] [--bucket 1m]

Every model has its own reference and feature names (bench/models.py's log: the worst case
for a shared parser) and the window settings given (the shipped default, 1 h of 1 min
buckets, unless told). Each cell runs in a process of its own on one core, so that its RSS
is its own:

- lines/s and µs per line: the real Exporter from tail to windows, statistics held off,
  the log's records read again, into rings they filled (steady state; the median of three
  readings); "first fill µs" is the first reading's, from empty rings (their memory
  touched once);
- stats ms, render ms and gzip ms: one statistics pass with every model changed (as if
  each had new records: nothing reused), one rendering of /metrics
  (collectors and text: the ingest thread's part) and its gzip (the gzip thread's,
  exporter/compressor.py), medians of 3, after the ingest; the series budget is lifted so
  that every series is rendered;
- RSS: the process after all of that, with (all but 5 of) every bucket of every model's
  ring holding data (the records' timestamps span two windows: a short run stamped "now"
  fills one bucket and understates it).
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

from bench.common import pin_one_core, rss_mb, table
from exporter.durations import parse_duration


def cell(models: int, features: int, lines: int, window: str, bucket: str) -> dict:
    """One cell, in this process."""
    from bench.models import ingest_all, prepare
    from exporter.app import Exporter
    from exporter.config import parse_config

    # Two windows less a margin of 5 buckets: records written at "now - span" must still be
    # in the ring when a large cell's set-up (references, config) is done.
    span = 2 * parse_duration(window) - 5 * parse_duration(bucket)
    work, cfg = prepare(models, features, lines, span=span, window=window, bucket=bucket)
    cfg["limits"] = {"max_series_per_metric": 10**8, "max_series_per_model": 10**8}
    try:
        exporter = Exporter(parse_config(cfg), state_dir=os.path.join(work, "state"))
        exporter._last_stats = time.monotonic() + 1e9  # ingest only: statistics held off
        # The rings are filled from empty first: their memory is touched (page faults,
        # rows zeroed) once in a process's life. The same records again then cost what a
        # line costs in steady state, every ring filled: the median of three readings.
        first = ingest_all(exporter)
        log = os.path.join(work, "logs", "a.jsonl")
        with open(log, "rb") as fh:
            data = fh.read()
        again = []
        for _ in range(3):
            with open(log, "ab") as fh:
                fh.write(data)
            again.append(ingest_all(exporter))
        seconds = statistics.median(again)
        stats, render, compress = [], [], []
        for _ in range(4):
            for ms in exporter.state.models.values():
                ms._computed_for = None  # as if every model had new records since
            start = time.perf_counter()
            exporter.compute_stats()
            stats.append(time.perf_counter() - start)
            start = time.perf_counter()
            text, _ = exporter.encode()
            render.append(time.perf_counter() - start)
            start = time.perf_counter()
            gzip.compress(text, compresslevel=1)
            compress.append(time.perf_counter() - start)
        # The first rendering also formats every series' labels once (kept), the first
        # statistics pass sums every window whole (then kept): not counted.
        stats, render, compress = stats[1:], render[1:], compress[1:]
        out = {
            "models": models,
            "features": features,
            "us_per_line": seconds / lines * 1e6,
            "first_us_per_line": first / lines * 1e6,
            "stats_ms": statistics.median(stats) * 1e3,
            "render_ms": statistics.median(render) * 1e3,
            "gzip_ms": statistics.median(compress) * 1e3,
            "series": text.count(b"\n") - text.count(b"\n#"),
            "rss_mb": rss_mb(),
            "not_windowed": sum(sum(ms.dropped.values()) for ms in exporter.state.models.values()),
        }
        exporter.stop()
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def rows(models: list[int], features: list[int], lines: int, window: str, bucket: str):
    """The table's cells, each from a process of its own."""
    for f in features:
        base = None
        for m in models:
            done = subprocess.run(
                [sys.executable, __file__, "--cell", f"{m},{f}", "--lines", str(lines),
                 "--window", window, "--bucket", bucket],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            r = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"  {m} x {f}: {r}", file=sys.stderr, flush=True)
            if r["not_windowed"]:
                raise SystemExit(f"{m} x {f}: {r['not_windowed']} records not windowed")
            base = base or r["us_per_line"]
            yield (
                m,
                f,
                f"{1e3 / r['us_per_line']:.1f}k",
                f"{r['us_per_line']:.1f}",
                f"{r['us_per_line'] / base:.2f}",
                f"{r['first_us_per_line']:.1f}",
                f"{r['stats_ms']:.0f}",
                f"{r['render_ms']:.0f}",
                f"{r['gzip_ms']:.0f}",
                f"{r['series']}",
                f"{r['rss_mb']:.0f}",
            )


HEADERS = (
    "models",
    "features",
    "lines/s",
    "µs per line",
    "× one model",
    "first fill µs",
    "stats ms",
    "render ms",
    "gzip ms",
    "series",
    "RSS MiB",
)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="1,10,20,50,100")
    ap.add_argument("--features", default="10,30,50,100")
    ap.add_argument("--lines", type=int, default=20_000)
    ap.add_argument("--window", default="1h")
    ap.add_argument("--bucket", default="1m")
    ap.add_argument("--cell", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    pin_one_core()
    if args.cell:
        m, f = (int(x) for x in args.cell.split(","))
        print(json.dumps(cell(m, f, args.lines, args.window, args.bucket)))
        return
    models = [int(x) for x in args.models.split(",")]
    features = [int(x) for x in args.features.split(",")]
    print(
        f"growth: {args.lines} lines per cell, one log, each model its own features; "
        f"{args.window} windows of {args.bucket} buckets, all filled; one core"
    )
    print(table(list(rows(models, features, args.lines, args.window, args.bucket)), HEADERS))


if __name__ == "__main__":
    main()
