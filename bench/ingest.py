"""Serving-log ingestion, end to end on one core: lines/s and RSS as volume grows.

    python bench/ingest.py [--lines 1000000] [--files 5]

Generates (once, cached in bench/out/) a serving log with 30 features per line, then runs
the real Exporter over it: tail -> parse -> state -> checkpoint, and finally a scrape.
Each further file repeats the volume, to show RSS staying flat.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import (
    CATEGORICAL,
    NUMERIC,
    OUT,
    pin_one_core,
    reference_parquet,
    rss_mb,
    serving_log,
    table,
)
from exporter.app import Exporter
from exporter.config import parse_config


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=5)
    args = ap.parse_args()
    pin_one_core()
    base = serving_log(os.path.join(OUT, f"serving-{args.lines}.jsonl"), args.lines)
    work = os.path.join(OUT, "ingest-run")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(work, "logs"))
    cfg = parse_config(
        {
            "models": [
                {
                    "name": "bench",
                    "serving_logs": [os.path.join(work, "logs", "*.jsonl")],
                    "features": {"numeric": NUMERIC, "categorical": CATEGORICAL},
                    "reference": {"path": reference_parquet(os.path.join(OUT, "ref.parquet"))},
                    "windows": {"length": "7d", "bucket": "1h"},
                }
            ]
        }
    )
    exporter = Exporter(cfg, state_dir=os.path.join(work, "state"))
    model_state = exporter.state.models["bench"]
    exporter.state.models["bench"]
    size_mb = os.path.getsize(base) / 2**20
    rows = []
    rss_start = rss_mb()
    for k in range(args.files):
        dest = os.path.join(work, "logs", f"part-{k}.jsonl")
        # A distinct first line gives each copy its own identity (fingerprint).
        with open(dest, "wb") as out, open(base, "rb") as src:
            out.write(b'{"copy": %d}\n' % k)
            shutil.copyfileobj(src, out, 16 << 20)
        start = time.perf_counter()
        exporter.ingest_pass()
        while not exporter.caught_up:  # a pass is bounded in time; go on until caught up
            exporter.ingest_pass()
        elapsed = time.perf_counter() - start
        scrape_start = time.perf_counter()
        exporter.registry.collect()
        list(exporter.registry.collect())
        scrape_ms = (time.perf_counter() - scrape_start) * 1000
        rows.append(
            (
                f"{(k + 1) * args.lines / 1e6:.0f}M",
                f"{args.lines / elapsed / 1e3:.0f}k",
                f"{size_mb / elapsed:.0f}",
                f"{rss_mb():.0f}",
                f"{scrape_ms:.1f}",
            )
        )
        os.remove(dest)  # keep disk use flat; the checkpoint forgets it later
    parsed = exporter.registry.get_sample_value(
        "mlpipe_source_lines_total", {"source": "serving", "result": "parsed"}
    )
    print(
        f"serving log: {args.lines} lines x 30 features, {size_mb:.0f} MiB per file; "
        f"one core; RSS before ingest {rss_start:.0f} MiB"
    )
    print(table(rows, ("lines ingested", "lines/s", "MiB/s", "RSS MiB", "scrape ms")))
    rates = [float(r[1][:-1]) for r in rows]
    exporter.compute_stats()
    profiled = int(model_state.features.profile(time.time()).numeric[0].sum())
    print(
        f"profiled into windows: {profiled} records, "
        f"{len(model_state.results.feature_skew)} skew series, dropped {dict(model_state.dropped)}"
    )
    print(
        f"median {statistics.median(rates):.0f}k lines/s; parsed {parsed:.0f} "
        f"(expected {args.lines * args.files}, plus {args.files} marker lines invalid)"
    )


if __name__ == "__main__":
    main()
