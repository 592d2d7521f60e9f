"""Serving-log ingestion, end to end on one core, in three tables:

1. lines/s and RSS as volume grows: the real Exporter over --files copies of a serving log
   of --lines lines with 30 features (tail -> parse -> state -> checkpoint, then a scrape);
   RSS stays flat;
2. beside peers, on the same file (medians of --repeats, ratios in the same run): serving
   metrics only, ours vs Google's mtail (``apt install mtail``; bench/mtail/serving.mtail,
   ``--one_shot``); the 30 features profiled, ours vs whylogs (bench/.venv-whylogs:
   ``pip install whylogs 'pandas<3' pyarrow``; bench/whylogs_runner.py). A peer that is not
   installed is left out, and the table says so;
3. the growth table (bench/growth.py): 1-100 models x 10-100 features.

    python bench/ingest.py [--lines 1000000] [--files 5] [--repeats 3] [--no-growth]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import growth
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
from bench.models import ingest_all
from exporter.app import Exporter
from exporter.config import parse_config

HERE = os.path.dirname(os.path.abspath(__file__))
MTAIL = shutil.which("mtail")
WHYLOGS = os.path.join(HERE, ".venv-whylogs", "bin", "python")


def ours(log: str, features: bool) -> float:
    """Lines/s of the Exporter over ``log`` from a fresh state: serving metrics, and the
    30 features profiled into windows if ``features``."""
    work = os.path.join(OUT, "ingest-peer")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(work, "logs"))
    os.symlink(log, os.path.join(work, "logs", "a.jsonl"))
    model = {"name": "bench", "serving_logs": [os.path.join(work, "logs", "*.jsonl")]}
    if features:
        model["features"] = {"numeric": NUMERIC, "categorical": CATEGORICAL}
        model["reference"] = {"path": reference_parquet(os.path.join(OUT, "ref.parquet"))}
    exporter = Exporter(parse_config({"models": [model]}), state_dir=os.path.join(work, "state"))
    exporter._last_stats = time.monotonic() + 1e9  # ingest only, as the peers
    elapsed = ingest_all(exporter)
    exporter.stop()
    shutil.rmtree(work, ignore_errors=True)
    return sum(1 for _ in open(log, "rb")) / elapsed


def mtail(log: str) -> float | None:
    """Lines/s of mtail reading ``log`` once (the process, start to exit, GOMAXPROCS=1)."""
    if MTAIL is None:
        return None
    start = time.perf_counter()
    subprocess.run(
        [MTAIL, "--one_shot", "--one_shot_format=prometheus", "--logtostderr",
         "--progs", os.path.join(HERE, "mtail"), "--logs", log],
        check=True, capture_output=True, env={**os.environ, "GOMAXPROCS": "1"},
    )  # fmt: skip
    return sum(1 for _ in open(log, "rb")) / (time.perf_counter() - start)


def whylogs(log: str) -> float | None:
    if not os.path.exists(WHYLOGS):
        return None
    done = subprocess.run(
        [WHYLOGS, os.path.join(HERE, "whylogs_runner.py"), log],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])["lines_per_s"]


def peers(log: str, repeats: int) -> list[tuple]:
    rows = []
    for what, mine, theirs, peer in (
        ("serving metrics only", lambda: ours(log, False), lambda: mtail(log), "mtail"),
        ("30 features profiled", lambda: ours(log, True), lambda: whylogs(log), "whylogs"),
    ):
        a, b = [], []
        for _ in range(repeats):  # interleaved: the machine's drift hits both
            a.append(mine())
            b.append(theirs())
        ours_rate = statistics.median(a)
        if None in b:
            rows.append((what, f"{ours_rate / 1e3:.0f}k", f"{peer}: not installed", "—"))
            continue
        theirs_rate = statistics.median(b)
        rows.append(
            (
                what,
                f"{ours_rate / 1e3:.0f}k",
                f"{peer}: {theirs_rate / 1e3:.0f}k",
                f"{ours_rate / theirs_rate:.1f}×",
            )
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-growth", action="store_true")
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
        elapsed = ingest_all(exporter)  # passes are bounded in time: until caught up
        scrape_start = time.perf_counter()
        exporter.registry.collect()
        list(exporter.registry.collect())
        scrape_ms = (time.perf_counter() - scrape_start) * 1000
        rows.append(
            (
                f"{(k + 1) * args.lines / 1e6:.1f}M",
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

    print(f"\nbeside peers: the same {args.lines} lines, one core, medians of {args.repeats}")
    print(
        table(peers(base, args.repeats), ("ingest", "ours lines/s", "peer lines/s", "ours ÷ peer"))
    )
    if not args.no_growth:
        print()
        growth.main([])


if __name__ == "__main__":
    main()
