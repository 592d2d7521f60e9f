"""Inputs as serving stacks write them: Kubernetes CRI logs beside plain JSON lines, and the
push endpoint under a client sending batches.

    python bench/inputs.py [--lines 300000] [--repeats 3] [--push-seconds 10]
    python bench/inputs.py --only json|cri        # one ingest, for an outside timer

1. The same records (30 features each) as plain JSON lines and wrapped as the kubelet writes
   them (``<time> stdout F <line>``); the real Exporter ingests each file to the end on one
   core; lines/s, medians of ``--repeats``, and the ratio (target >= 0.8).
2. ``POST /api/v1/records``: a local client sends batches of 1 000 lines as fast as the
   exporter takes them (429: it backs off and resends); records/s accepted and applied
   (target >= 100k/s), and /metrics answer times scraped every 100 ms meanwhile (p99 target
   <= 50 ms).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import requests

from bench.common import (
    CATEGORICAL,
    NUMERIC,
    OUT,
    pin_one_core,
    reference_parquet,
    serving_log,
    table,
)
from exporter.app import Exporter
from exporter.config import parse_config
from exporter.server import MetricsServer


def cri_log(plain: str) -> str:
    """The plain log's lines as the kubelet's CRI logger writes them."""
    path = plain.replace(".jsonl", ".cri.log")
    if os.path.exists(path) and os.path.getmtime(path) >= os.path.getmtime(plain):
        return path
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()).encode()
    with open(plain, "rb") as src, open(path + ".tmp", "wb") as out:
        for i, line in enumerate(src):
            out.write(b"%s.%09dZ stdout F %s" % (stamp, i, line))
    os.replace(path + ".tmp", path)
    return path


def model(source) -> dict:
    return {
        "name": "bench",
        "serving_logs": [source],
        "features": {"numeric": NUMERIC, "categorical": CATEGORICAL},
        "reference": {"path": reference_parquet(os.path.join(OUT, "ref.parquet"))},
        "windows": {"length": "7d", "bucket": "1h"},
    }


def ingest_once(kind: str, plain: str) -> float:
    """Lines/s of one exporter reading one file of ``kind`` to its end."""
    work = os.path.join(OUT, f"inputs-{kind}")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(work, "logs"))
    src = plain if kind == "json" else cri_log(plain)
    dest = os.path.join(work, "logs", "0.log")
    os.link(src, dest) if os.stat(src).st_dev == os.stat(work).st_dev else shutil.copy(src, dest)
    glob_ = os.path.join(work, "logs", "*.log")
    source = glob_ if kind == "json" else {"path": glob_, "format": "cri"}
    exporter = Exporter(parse_config({"models": [model(source)]}))
    with open(dest, "rb") as fh:
        lines = sum(1 for _ in fh)
    start = time.perf_counter()
    exporter.ingest_pass()
    while not exporter.caught_up:
        exporter.ingest_pass()
    elapsed = time.perf_counter() - start
    name = "serving" if kind == "json" else "serving-bench"
    parsed = exporter.registry.get_sample_value(
        "mlpipe_source_lines_total", {"source": name, "result": "parsed"}
    )
    assert parsed == lines, (parsed, lines)
    exporter.stop()
    return lines / elapsed


def push_client(url: str, path: str, seconds: float, features: bool) -> None:
    """The client, in a process (and on a core) of its own: batches of 1 000 lines as fast
    as they are taken; prints records accepted and 429s."""
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {1})
    with open(path, "rb") as fh:
        lines = [next(fh) for _ in range(100_000)]
    if not features:  # serving fields only: what a latency/error monitor pushes
        import json

        def strip(line: bytes) -> bytes:
            record = json.loads(line)
            record.pop("features")
            return json.dumps(record).encode() + b"\n"

        lines = [strip(x) for x in lines]
    batches = [b"".join(lines[i : i + 1000]) for i in range(0, len(lines), 1000)]
    session = requests.Session()
    accepted = busy = i = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        r = session.post(f"{url}/api/v1/records", data=batches[i % len(batches)], timeout=30)
        if r.status_code == 429:
            busy += 1
            time.sleep(0.005)
            continue
        r.raise_for_status()
        accepted += r.json()["accepted"]
        i += 1
    print(accepted, busy, time.perf_counter() - start)


def push_bench(plain: str, seconds: float, features: bool) -> dict:
    """The exporter (this process, core 0) under a batching client (another process)."""
    cfg = {"models": [model(os.path.join(OUT, "none", "*.jsonl"))], "push": {"enabled": True}}
    os.makedirs(os.path.join(OUT, "none"), exist_ok=True)
    exporter = Exporter(parse_config(cfg), interval=0.05)
    exporter.start()
    server = MetricsServer(exporter, "127.0.0.1", 0)
    server.start()
    url = f"http://127.0.0.1:{server.port}"
    stop = threading.Event()
    scrapes: list[float] = []

    def scraper():
        session = requests.Session()
        while not stop.is_set():
            t = time.perf_counter()
            session.get(f"{url}/metrics", timeout=10).raise_for_status()
            scrapes.append((time.perf_counter() - t) * 1000)
            stop.wait(0.1)

    def applied() -> float:
        rendering = exporter.rendering.text.decode() if exporter.rendering else ""
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in rendering.splitlines()
            if line.startswith("mlpipe_serving_requests_total{")
        )

    deadline = time.monotonic() + 60
    while exporter.rendering is None and time.monotonic() < deadline:
        time.sleep(0.1)
    t = threading.Thread(target=scraper)
    t.start()
    start = time.perf_counter()
    client = subprocess.run(
        [
            sys.executable,
            __file__,
            "--push-client",
            url,
            "--push-seconds",
            str(seconds),
            "--data",
            plain,
            *([] if features else ["--no-features"]),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    accepted, busy, client_s = client.stdout.split()
    accepted = int(accepted)
    while applied() < accepted and time.perf_counter() - start < seconds + 60:
        time.sleep(0.05)
    done = time.perf_counter() - start
    stop.set()
    t.join()
    total = applied()
    server.stop()
    exporter.stop()
    assert total == accepted, (total, accepted)
    scrapes.sort()
    return {
        "accepted_rate": accepted / float(client_s),
        "applied_rate": total / done,
        "busy": int(busy),
        "p50": scrapes[len(scrapes) // 2],
        "p99": scrapes[min(len(scrapes) - 1, int(0.99 * len(scrapes)))],
        "scrapes": len(scrapes),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=300_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--push-seconds", type=float, default=10.0)
    ap.add_argument("--only", choices=("json", "cri"))
    ap.add_argument("--push-client", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--no-features", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.push_client:
        push_client(args.push_client, args.data, args.push_seconds, not args.no_features)
        return
    pin_one_core()
    plain = serving_log(os.path.join(OUT, f"serving-{args.lines}.jsonl"), args.lines)
    cri_log(plain)
    if args.only:
        print(f"{args.only}: {ingest_once(args.only, plain) / 1e3:.0f}k lines/s")
        return
    json_rates, cri_rates = [], []
    for _ in range(args.repeats):  # interleaved, so drift in the machine's speed hits both
        json_rates.append(ingest_once("json", plain))
        cri_rates.append(ingest_once("cri", plain))
    ratios = [c / j for c, j in zip(cri_rates, json_rates, strict=True)]
    print(f"serving log: {args.lines} lines x 30 features; one core; medians of {args.repeats}")
    print(
        table(
            [
                ("plain JSON lines", f"{statistics.median(json_rates) / 1e3:.0f}k", "1.00"),
                (
                    "CRI (kubelet)",
                    f"{statistics.median(cri_rates) / 1e3:.0f}k",
                    f"{statistics.median(ratios):.2f}",
                ),
            ],
            ("input", "lines/s", "ratio to JSON (target >= 0.8)"),
        )
    )
    rows = []
    for features in (False, True):
        r = push_bench(plain, args.push_seconds, features)
        rows.append(
            (
                "30 features" if features else "serving fields only",
                f"{r['accepted_rate'] / 1e3:.0f}k",
                f"{r['applied_rate'] / 1e3:.0f}k",
                str(r["busy"]),
                f"{r['p50']:.1f}",
                f"{r['p99']:.1f}",
                str(r["scrapes"]),
            )
        )
    print("push: exporter on core 0, client (batches of 1000 lines) in a process on core 1")
    print(
        table(
            rows,
            (
                "records",
                "accepted/s (>= 100k)",
                "applied/s",
                "429s",
                "/metrics p50 ms",
                "/metrics p99 ms (<= 50)",
                "scrapes",
            ),
        )
    )


if __name__ == "__main__":
    main()
