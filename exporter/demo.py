"""Synthetic, live data for the demo and the tests.

Two models write serving logs continuously:

- ``fraud`` (binary classification): a training reference in Parquet, stable version v6
  and a canary v7 taking 10 % of traffic, ground-truth labels arriving ~20 s after each
  prediction. After ``drift_after`` seconds the world changes: ``amount`` grows by 80 %,
  ``country`` shifts towards US, and the canary turns worse (more errors, slower, and its
  scores diverge from the stable version's).
- ``ranker`` (regression, no reference): traffic, latency and errors only.

Pipelines: ``etl-fraud`` lands a daily partition of ``fraud-daily`` every ``day`` seconds
(drifted once the drift starts); ``train-fraud`` trains every ``day`` seconds as a real
child process (so its CPU and memory are attributed to it), its 3rd run fails and its 5th
is slow. ``fraud-test`` is a validation set. Quotas cover GPU seconds, CPU seconds, QPS
and memory.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections import deque

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from exporter.config import parse_config

log = logging.getLogger(__name__)

COUNTRIES = ["DE", "FR", "US", "GB", "IT", "ES", "NL", "PL"]
COUNTRY_P = np.array([0.3, 0.2, 0.15, 0.1, 0.08, 0.07, 0.06, 0.04])
DRIFTED_COUNTRY_P = np.array([0.12, 0.1, 0.5, 0.08, 0.06, 0.06, 0.04, 0.04])
LABEL_DELAY = 20.0


def _fraud_features(rng: np.random.Generator, n: int, drifted: bool) -> dict:
    amount = rng.lognormal(3.5, 1.0, n) * (1.8 if drifted else 1.0)
    return {
        "amount": np.round(amount, 2),
        "age": rng.integers(18, 80, n),
        "country": rng.choice(COUNTRIES, n, p=DRIFTED_COUNTRY_P if drifted else COUNTRY_P),
    }


def _fraud_truth(rng, feats) -> np.ndarray:
    """Ground truth: fraud is likelier for large amounts and young customers."""
    logit = -3.0 + 0.8 * (np.log(feats["amount"]) - 3.5) - 0.03 * (feats["age"] - 45)
    return rng.random(len(logit)) < 1 / (1 + np.exp(-logit))


def _fraud_scores(rng, truth: np.ndarray, bad: bool) -> np.ndarray:
    if bad:  # a broken model: scores unrelated to the truth, and high
        return rng.beta(4, 2, len(truth))
    return np.where(truth, rng.beta(5, 2, len(truth)), rng.beta(1.5, 8, len(truth)))


def write_reference(directory: str, rows: int = 20_000, seed: int = 1) -> str:
    """The fraud model's training data, as hive-partitioned Parquet."""
    path = os.path.join(directory, "train", "fraud")
    rng = np.random.default_rng(seed)
    for day in range(2):
        part = os.path.join(path, f"date=2026-11-{20 + day:02d}")
        os.makedirs(part, exist_ok=True)
        feats = _fraud_features(rng, rows // 2, drifted=False)
        truth = _fraud_truth(rng, feats)
        table = pa.table(
            {
                **feats,
                "label": truth.astype(np.int64),
                "prediction": np.round(_fraud_scores(rng, truth, bad=False), 4),
            }
        )
        pq.write_table(table, os.path.join(part, "part-0.parquet"))
    return path


def write_partition(path: str, rng, rows: int, drifted: bool) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    feats = _fraud_features(rng, rows, drifted)
    truth = _fraud_truth(rng, feats)
    tmp = os.path.join(os.path.dirname(path), "_" + os.path.basename(path))
    pq.write_table(pa.table({**feats, "label": truth.astype(np.int64)}), tmp)
    os.replace(tmp, path)  # land whole files: readers never see a half-written one


def write_config(directory: str, window: str = "5m", bucket: str = "15s") -> str:
    logs = os.path.join(directory, "logs")
    os.makedirs(logs, exist_ok=True)
    os.makedirs(os.path.join(directory, "labels"), exist_ok=True)
    os.makedirs(os.path.join(directory, "pipelines"), exist_ok=True)
    os.makedirs(os.path.join(directory, "data", "fraud-daily"), exist_ok=True)
    reference = write_reference(directory)
    test_set = os.path.join(directory, "data", "fraud-test", "part-0.parquet")
    if not os.path.exists(test_set):
        write_partition(test_set, np.random.default_rng(5), 4000, drifted=False)
    runs = os.path.join(directory, "pipelines", "runs.jsonl")
    config = {
        "models": [
            {
                "name": "fraud",
                "task": "binary_classification",
                "serving_logs": [os.path.join(logs, "fraud-*.jsonl")],
                "labels": [os.path.join(directory, "labels", "fraud-*.jsonl")],
                "reference": {"path": reference, "label": "label", "prediction": "prediction"},
                "windows": {"length": window, "bucket": bucket},
                "thresholds": {"psi": 0.2, "js": 0.1},
                "quality_thresholds": {"auc": 0.75, "accuracy": 0.7},
                "canary": {"stable_version": "v6"},
            },
            {
                "name": "ranker",
                "task": "regression",
                "serving_logs": [os.path.join(logs, "ranker-*.jsonl")],
                "windows": {"length": window, "bucket": bucket},
            },
        ],
        "datasets": [
            {
                "name": "fraud-daily",
                "path": os.path.join(directory, "data", "fraud-daily"),
                "reference": "fraud",
                "role": "data",
            },
            {
                "name": "fraud-test",
                "path": os.path.join(directory, "data", "fraud-test"),
                "reference": "fraud",
                "role": "validation",
            },
        ],
        "pipelines": [
            {
                "name": "train-fraud",
                "kind": "training",
                "run_log": runs,
                "processes": {"cmdline_regex": "mlpipe-demo-train"},
                "expected_interval": "3m",
            },
            {"name": "etl-fraud", "kind": "data", "run_log": runs, "expected_interval": "3m"},
        ],
        "quotas": [
            {
                "name": "gpu-pool",
                "resource": "gpu_seconds",
                "limit": 600,
                "period": "1h",
                "pipelines": ["train-fraud", "etl-fraud"],
                "forecast_window": "10m",
            },
            {
                "name": "cpu-pool",
                "resource": "cpu_seconds",
                "limit": 3600,
                "period": "1d",
                "reset": "calendar",
                "pipelines": ["train-fraud", "etl-fraud"],
            },
            {
                "name": "fraud-qps",
                "resource": "requests_per_second",
                "limit": 50,
                "models": ["fraud"],
            },
            {
                "name": "train-memory",
                "resource": "memory_bytes",
                "limit": 2 * 2**30,
                "pipelines": ["train-fraud"],
            },
        ],
    }
    path = os.path.join(directory, "config.yaml")
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(config, fh, sort_keys=False)
    return path


def _rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


# Error rates. A healthy service fails well under its budget (the shipped SLO is 99.9 %:
# 0.1 %): the baseline must never page. It used to fail 0.5 % (the canary 1 %), 0.55 %
# overall, a hair under the 6x burn line of 0.6 %: the error-budget page fired on noise
# before any fault. The fault (after --drift-after) is the canary failing 20 %.
STABLE_ERRORS = 0.0005
CANARY_ERRORS = 0.001
CANARY_FAULT_ERRORS = 0.2


class DemoWriter(threading.Thread):
    """Appends serving-log and label lines at about ``rate`` requests/s until stopped."""

    def __init__(
        self,
        directory: str,
        rate: float = 40.0,
        seed: int = 7,
        drift_after: float | None = 180.0,
        tick: float = 0.5,
    ):
        super().__init__(name="demo-writer", daemon=True)
        self.directory = directory
        self.rate = rate
        self.rng = np.random.default_rng(seed)
        self.drift_after = drift_after
        self.tick = tick
        self.stop_event = threading.Event()
        self.written = 0
        self.started = time.time()
        self.pending_labels: deque = deque()

    @property
    def drifted(self) -> bool:
        return self.drift_after is not None and time.time() - self.started >= self.drift_after

    def _fraud_lines(self, now: float) -> list[str]:
        n = int(self.rng.poisson(self.rate * self.tick))
        drifted = self.drifted
        feats = _fraud_features(self.rng, n, drifted)
        truth = _fraud_truth(self.rng, feats)
        canary = self.rng.random(n) < 0.1
        scores = np.where(
            canary & drifted,
            _fraud_scores(self.rng, truth, bad=True),
            _fraud_scores(self.rng, truth, bad=False),
        )
        error_p = np.where(canary, CANARY_FAULT_ERRORS if drifted else CANARY_ERRORS, STABLE_ERRORS)
        errors = self.rng.random(n) < error_p
        latency = self.rng.lognormal(np.log(np.where(canary & drifted, 60, 12)), 0.4)
        lines = []
        for i in range(n):
            self.written += 1
            rid = f"f-{self.written}"
            lines.append(
                json.dumps(
                    {
                        "timestamp": _rfc3339(now),
                        "model": "fraud",
                        "model_version": "v7" if canary[i] else "v6",
                        "request_id": rid,
                        "latency_ms": round(float(latency[i]), 3),
                        "status": "error" if errors[i] else "ok",
                        "features": {
                            "amount": float(feats["amount"][i]),
                            "age": int(feats["age"][i]),
                            "country": str(feats["country"][i]),
                        },
                        "prediction": round(float(scores[i]), 4),
                    }
                )
            )
            self.pending_labels.append((now + LABEL_DELAY, rid, int(truth[i])))
        return lines

    def _ranker_lines(self, now: float) -> list[str]:
        lines = []
        for _ in range(int(self.rng.poisson(self.rate * self.tick / 2))):
            self.written += 1
            lines.append(
                json.dumps(
                    {
                        "timestamp": now,  # epoch seconds: the demo shows both timestamp forms
                        "model": "ranker",
                        "model_version": "v3",
                        "request_id": f"r-{self.written}",
                        "latency_ms": round(float(self.rng.gamma(4.0, 10.0)), 3),
                        "status": 503 if self.rng.random() < STABLE_ERRORS else 200,
                        "features": {"query_len": int(self.rng.poisson(4))},
                        "prediction": round(float(self.rng.normal(0.5, 0.15)), 4),
                    }
                )
            )
        return lines

    def run(self) -> None:
        d = self.directory
        with (
            open(os.path.join(d, "logs", "fraud-0.jsonl"), "a", encoding="utf-8") as fraud,
            open(os.path.join(d, "logs", "ranker-0.jsonl"), "a", encoding="utf-8") as ranker,
            open(os.path.join(d, "labels", "fraud-0.jsonl"), "a", encoding="utf-8") as labels,
        ):
            while not self.stop_event.wait(self.tick):
                now = time.time()
                for out, lines in (
                    (fraud, self._fraud_lines(now)),
                    (ranker, self._ranker_lines(now)),
                ):
                    if lines:
                        out.write("\n".join(lines) + "\n")
                        out.flush()
                due = []
                while self.pending_labels and self.pending_labels[0][0] <= now:
                    _, rid, label = self.pending_labels.popleft()
                    due.append(json.dumps({"request_id": rid, "label": label}))
                if due:
                    labels.write("\n".join(due) + "\n")
                    labels.flush()

    def stop(self) -> None:
        self.stop_event.set()
        self.join()


TRAIN = (
    "import sys, time\n"
    "end = time.time() + float(sys.argv[1])\n"
    "while time.time() < end:\n"
    "    t = time.time() + 0.02\n"
    "    while time.time() < t: pass\n"  # about 20 % of a core
    "    time.sleep(0.08)\n"
)


class DemoPipelines(threading.Thread):
    """A data pipeline landing daily partitions and a training pipeline, in fast time."""

    def __init__(
        self, directory: str, day: float = 45.0, drift_after: float | None = 180.0, seed: int = 11
    ):
        super().__init__(name="demo-pipelines", daemon=True)
        self.directory = directory
        self.day = day
        self.drift_after = drift_after
        self.rng = np.random.default_rng(seed)
        self.stop_event = threading.Event()
        self.started = time.time()
        self.runs_path = os.path.join(directory, "pipelines", "runs.jsonl")

    def _log(self, record: dict) -> None:
        with open(self.runs_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    def _etl(self, n: int) -> None:
        start = time.time()
        rid = f"etl-{n}"
        self._log(
            {
                "pipeline": "etl-fraud",
                "kind": "data",
                "run_id": rid,
                "status": "running",
                "start": start,
            }
        )
        drifted = self.drift_after is not None and start - self.started >= self.drift_after
        day = time.strftime("%Y-%m-%d", time.gmtime(1_795_000_000 + n * 86400))
        path = os.path.join(self.directory, "data", "fraud-daily", f"date={day}", "part-0.parquet")
        write_partition(path, self.rng, 3000, drifted)
        self._log(
            {
                "pipeline": "etl-fraud",
                "kind": "data",
                "run_id": rid,
                "status": "succeeded",
                "start": start,
                "end": time.time(),
                "cpu_seconds": 0.5,
                "gpu_seconds": 0,
            }
        )

    def _train(self, n: int) -> None:
        start = time.time()
        rid = f"train-{n}"
        self._log(
            {
                "pipeline": "train-fraud",
                "kind": "training",
                "run_id": rid,
                "status": "running",
                "start": start,
            }
        )
        seconds = 25.0 if n == 5 else 6.0  # the 5th run is slow
        child = subprocess.Popen([sys.executable, "-c", TRAIN, str(seconds), "mlpipe-demo-train"])
        while child.poll() is None and not self.stop_event.wait(0.5):
            pass
        child.kill()
        child.wait()
        status = "failed" if n == 3 else "succeeded"
        self._log(
            {
                "pipeline": "train-fraud",
                "kind": "training",
                "run_id": rid,
                "status": status,
                "start": start,
                "end": time.time(),
                "cpu_seconds": round(seconds * 0.2, 2),
                "gpu_seconds": round(seconds * 8, 1),
                "peak_memory_bytes": 300 * 2**20,
            }
        )

    def run(self) -> None:
        n = 0
        while not self.stop_event.is_set():
            n += 1
            self._etl(n)
            self._train(n)
            self.stop_event.wait(max(0.0, self.started + n * self.day - time.time()))

    def stop(self) -> None:
        self.stop_event.set()
        self.join()


def run(args, serve) -> int:
    """``mlpipe-exporter demo``: write the config and live data, then serve on them."""
    directory = os.path.abspath(args.dir)
    config_path = write_config(directory)
    with open(config_path, encoding="utf-8") as fh:
        config = parse_config(yaml.safe_load(fh), config_path)
    if args.state_dir is None:
        args.state_dir = os.path.join(directory, "state")
    writer = DemoWriter(directory, drift_after=args.drift_after)
    writer.start()
    pipelines = DemoPipelines(directory, drift_after=args.drift_after)
    pipelines.start()
    log.info(
        "demo data in %s; metrics at http://%s%s; drift starts after %ss",
        directory,
        ", ".join(args.listen or ["127.0.0.1:9847"]),
        args.telemetry_path,
        args.drift_after,
    )
    stop = threading.Event()
    if args.duration:
        threading.Timer(args.duration, stop.set).start()
    try:
        return serve(args, config, config_path, stop)
    finally:
        writer.stop()
        pipelines.stop()
