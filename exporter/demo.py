"""Synthetic, live data for the demo and the tests.

Two models write serving logs continuously:

- ``fraud`` (binary classification): a training reference in Parquet, stable version v6
  and a canary v7 taking 10 % of traffic, ground-truth labels arriving ~20 s after each
  prediction. After ``drift_after`` seconds the world changes: ``amount`` grows by 80 %,
  ``country`` shifts towards US, and the canary turns worse (more errors, slower, and its
  scores diverge from the stable version's).
- ``ranker`` (regression, no reference): traffic, latency and errors only.
"""

from __future__ import annotations

import json
import logging
import os
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


def write_config(directory: str, window: str = "5m", bucket: str = "15s") -> str:
    logs = os.path.join(directory, "logs")
    os.makedirs(logs, exist_ok=True)
    os.makedirs(os.path.join(directory, "labels"), exist_ok=True)
    reference = write_reference(directory)
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
    }
    path = os.path.join(directory, "config.yaml")
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(config, fh, sort_keys=False)
    return path


def _rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


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
        error_p = np.where(canary, 0.2 if drifted else 0.01, 0.005)
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
                        "status": 503 if self.rng.random() < 0.005 else 200,
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
    log.info(
        "demo data in %s; metrics at http://%s%s; drift starts after %ss",
        directory,
        args.listen,
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
