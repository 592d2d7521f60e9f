"""Soak: a writer appends serving-log lines at a fixed rate while a real Prometheus scrapes
the exporter every second. Reports lines/s sustained, scrape p50/p99 (Prometheus's own
scrape_duration_seconds, its parsing included), the exporter's answer p50/p99 (a client
fetching /metrics with gzip twice a second), RSS at start/middle/end, and lines written vs
counted.

    python bench/soak.py [--seconds 600] [--models 20] [--features 50] [--rate 2000]

Needs /usr/bin/prometheus (make system-deps). Not part of the default test suite; a short
version runs in tests/integration/test_soak.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import requests
import yaml

from bench.common import table
from tests.helpers import free_port, wait_for
from tests.integration.conftest import Prometheus


def write_references(directory: str, models: int, features: int) -> list[dict]:
    rng = np.random.default_rng(0)
    out = []
    for m in range(models):
        cols = {f"f{j}": rng.normal(j % 5, 1.0, 20_000) for j in range(features - 5)}
        cols.update({f"c{j}": rng.choice(["a", "b", "c", "d"], 20_000) for j in range(5)})
        path = os.path.join(directory, "train", f"m{m}.parquet")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        pq.write_table(pa.table(cols), path)
        out.append(
            {
                "name": f"m{m}",
                "serving_logs": [os.path.join(directory, "logs", "*.jsonl")],
                "reference": {"path": path},
            }
        )
    return out


class Writer(threading.Thread):
    def __init__(self, path: str, models: int, features: int, rate: float, seconds: float):
        super().__init__(daemon=True)
        self.path, self.models, self.features = path, models, features
        self.rate, self.seconds = rate, seconds
        self.written = 0

    def run(self) -> None:
        rng = np.random.default_rng(1)
        start = time.monotonic()
        tick = 0.1
        with open(self.path, "a") as fh:
            n = 0
            while time.monotonic() - start < self.seconds:
                n += 1
                lines = []
                for _ in range(int(self.rate * tick)):
                    m = int(rng.integers(self.models))
                    feats = {
                        f"f{j}": round(float(rng.normal(j % 5, 1.0)), 3)
                        for j in range(self.features - 5)
                    }
                    feats.update({f"c{j}": "abcd"[int(rng.integers(4))] for j in range(5)})
                    lines.append(
                        json.dumps(
                            {
                                "timestamp": time.time(),
                                "model": f"m{m}",
                                "model_version": "v1",
                                "request_id": f"{self.written}",
                                "latency_ms": 10.0,
                                "features": feats,
                                "prediction": float(rng.random()),
                            }
                        )
                    )
                    self.written += 1
                fh.write("\n".join(lines) + "\n")
                fh.flush()
                time.sleep(max(0.0, start + n * tick - time.monotonic()))


# Fetches /metrics (gzip, as Prometheus does) every 0.1 s for the soak's duration; prints
# the answer times, request sent to last byte read, as JSON.
ANSWER_CLIENT = """
import http.client, json, sys, time, urllib.parse
url, seconds = urllib.parse.urlsplit(sys.argv[1]), float(sys.argv[2])
out, end = [], time.monotonic() + seconds
while time.monotonic() < end:
    started = time.perf_counter()
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
    conn.getresponse().read()
    conn.close()
    out.append(time.perf_counter() - started)
    time.sleep(0.1)
print(json.dumps(out))
"""


def parsed(url: str) -> float:
    for line in requests.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith('mlpipe_source_lines_total{result="parsed",source="serving"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def run(seconds: float, models: int, features: int, rate: float) -> dict:
    work = tempfile.mkdtemp(prefix="mlpipe-soak-")
    try:
        os.makedirs(os.path.join(work, "logs"))
        config = {"models": write_references(work, models, features)}
        with open(os.path.join(work, "config.yaml"), "w") as fh:
            yaml.safe_dump(config, fh)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = open(os.path.join(work, "exporter.log"), "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "exporter.cli",
                f"--config.file={work}/config.yaml",
                f"--web.listen-address=127.0.0.1:{port}",
                f"--state.dir={work}/state",
                "--ingest.interval=1s",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        exporter = psutil.Process(proc.pid)
        wait_for(
            lambda: (
                requests.get(f"{url}/-/ready", timeout=2).status_code == 200 if _up(url) else False
            ),
            timeout=120,
            what="exporter ready",
        )
        prom_dir = os.path.join(work, "prom")
        os.makedirs(prom_dir)
        prom = Prometheus(prom_dir, [f"127.0.0.1:{port}"])
        writer = Writer(
            os.path.join(work, "logs", "serving.jsonl"), models, features, rate, seconds
        )
        rss = {"start": exporter.memory_info().rss}
        # The exporter's own answer time, apart from Prometheus parsing what it gets, from a
        # process of its own: a client thread in this process waited for the writer's GIL
        # between the chunks of each response, and counted that as the exporter's time.
        poller = subprocess.Popen(
            [sys.executable, "-c", ANSWER_CLIENT, url, str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        t0 = time.time()
        writer.start()
        time.sleep(seconds / 2)
        rss["middle"] = exporter.memory_info().rss
        writer.join()
        answers = json.loads(poller.communicate(timeout=120)[0])
        wait_for(lambda: parsed(url) >= writer.written, timeout=120, what="catch-up")
        elapsed = time.time() - t0
        rss["end"] = exporter.memory_info().rss
        counted = parsed(url)
        window = f"{int(elapsed)}s"
        q = lambda p: prom.value(  # noqa: E731
            f'quantile_over_time({p}, scrape_duration_seconds{{job="mlpipe-exporter"}}[{window}])'
        )
        p50, p99 = q(0.5), q(0.99)
        scrapes = prom.value(f'count_over_time(up{{job="mlpipe-exporter"}}[{window}])')
        series = prom.value('scrape_samples_scraped{job="mlpipe-exporter"}')
        prom.stop()
        proc.terminate()
        proc.wait(30)
        log.close()
        return {
            "seconds": seconds,
            "models": models,
            "features": features,
            "rate": rate,
            "written": writer.written,
            "counted": counted,
            "lost": writer.written - counted,
            "lines_per_s": counted / elapsed,
            "scrape_p50_ms": p50 * 1000,
            "scrape_p99_ms": p99 * 1000,
            "answer_p50_ms": float(np.quantile(answers, 0.5)) * 1000,
            "answer_p99_ms": float(np.quantile(answers, 0.99)) * 1000,
            "scrapes": scrapes,
            "series": series,
            "rss_mb": {k: v / 2**20 for k, v in rss.items()},
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _up(url: str) -> bool:
    try:
        requests.get(f"{url}/-/healthy", timeout=1)
        return True
    except requests.ConnectionError:
        return False


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--models", type=int, default=20)
    ap.add_argument("--features", type=int, default=50)
    ap.add_argument("--rate", type=float, default=2000)
    args = ap.parse_args()
    r = run(args.seconds, args.models, args.features, args.rate)
    rss = r["rss_mb"]
    print(
        f"soak: {r['seconds']:.0f} s, {r['models']} models x {r['features']} features, "
        f"writer at {r['rate']:.0f} lines/s, Prometheus scraping every 1 s"
    )
    print(
        table(
            [
                (
                    f"{r['lines_per_s']:.0f}",
                    f"{r['written']}",
                    f"{r['counted']:.0f}",
                    f"{r['lost']:.0f}",
                    f"{r['scrape_p50_ms']:.1f}",
                    f"{r['scrape_p99_ms']:.1f}",
                    f"{r['answer_p50_ms']:.1f}",
                    f"{r['answer_p99_ms']:.1f}",
                    f"{r['series']:.0f}",
                    f"{rss['start']:.0f} / {rss['middle']:.0f} / {rss['end']:.0f}",
                )
            ],
            (
                "lines/s",
                "written",
                "counted",
                "lost",
                "scrape p50 ms",
                "scrape p99 ms",
                "answer p50 ms",
                "answer p99 ms",
                "series",
                "RSS MiB start/mid/end",
            ),
        )
    )


if __name__ == "__main__":
    main()
