"""Synthetic, live data for the demo and the tests.

Two models write serving logs continuously: ``fraud`` (binary classification, stable
version v6 with a canary v7 taking 10 % of traffic) and ``ranker`` (regression, v3).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time

import numpy as np
import yaml

from exporter.config import parse_config

log = logging.getLogger(__name__)

COUNTRIES = ["DE", "FR", "US", "GB", "IT", "ES", "NL", "PL"]
COUNTRY_P = [0.3, 0.2, 0.15, 0.1, 0.08, 0.07, 0.06, 0.04]


def fraud_record(rng: np.random.Generator, ts: float, request_id: str, canary_share=0.1) -> dict:
    canary = rng.random() < canary_share
    latency_ms = float(rng.lognormal(np.log(12 if not canary else 15), 0.5))
    error = rng.random() < (0.01 if not canary else 0.02)
    amount = float(np.round(rng.lognormal(3.5, 1.0), 2))
    return {
        "timestamp": _rfc3339(ts),
        "model": "fraud",
        "model_version": "v7" if canary else "v6",
        "request_id": request_id,
        "latency_ms": round(latency_ms, 3),
        "status": "error" if error else "ok",
        "features": {
            "amount": amount,
            "age": int(rng.integers(18, 80)),
            "country": str(rng.choice(COUNTRIES, p=COUNTRY_P)),
        },
        "prediction": round(float(rng.beta(1, 8)), 4),
    }


def ranker_record(rng: np.random.Generator, ts: float, request_id: str) -> dict:
    return {
        "timestamp": ts,  # epoch seconds: the demo shows both timestamp forms
        "model": "ranker",
        "model_version": "v3",
        "request_id": request_id,
        "latency_ms": round(float(rng.gamma(4.0, 10.0)), 3),
        "status": 503 if rng.random() < 0.005 else 200,
        "features": {"query_len": int(rng.poisson(4)), "ctr_7d": round(float(rng.beta(2, 30)), 5)},
        "prediction": round(float(rng.normal(0.5, 0.15)), 4),
    }


def _rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


def write_config(directory: str) -> str:
    os.makedirs(os.path.join(directory, "logs"), exist_ok=True)
    config = {
        "models": [
            {
                "name": "fraud",
                "task": "binary_classification",
                "serving_logs": [os.path.join(directory, "logs", "fraud-*.jsonl")],
                "windows": {"length": "10m", "bucket": "30s"},
                "canary": {"stable_version": "v6"},
            },
            {
                "name": "ranker",
                "task": "regression",
                "serving_logs": [os.path.join(directory, "logs", "ranker-*.jsonl")],
                "windows": {"length": "10m", "bucket": "30s"},
            },
        ],
    }
    path = os.path.join(directory, "config.yaml")
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(config, fh, sort_keys=False)
    return path


class DemoWriter(threading.Thread):
    """Appends serving-log lines at roughly ``rate`` requests/s per model until stopped."""

    def __init__(self, directory: str, rate: float = 20.0, seed: int = 7):
        super().__init__(name="demo-writer", daemon=True)
        self.directory = directory
        self.rate = rate
        self.rng = np.random.default_rng(seed)
        self.stop_event = threading.Event()
        self.written = 0

    def run(self) -> None:
        logs = os.path.join(self.directory, "logs")
        fraud = open(os.path.join(logs, "fraud-0.jsonl"), "a", encoding="utf-8")  # noqa: SIM115
        ranker = open(os.path.join(logs, "ranker-0.jsonl"), "a", encoding="utf-8")  # noqa: SIM115
        tick = 0.5
        try:
            while not self.stop_event.wait(tick):
                now = time.time()
                n = self.rng.poisson(self.rate * tick)
                for _ in range(n):
                    self.written += 1
                    rid = f"f-{self.written}"
                    fraud.write(json.dumps(fraud_record(self.rng, now, rid)) + "\n")
                for _ in range(self.rng.poisson(self.rate * tick / 2)):
                    self.written += 1
                    ranker.write(
                        json.dumps(ranker_record(self.rng, now, f"r-{self.written}")) + "\n"
                    )
                fraud.flush()
                ranker.flush()
        finally:
            fraud.close()
            ranker.close()

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
    writer = DemoWriter(directory)
    writer.start()
    log.info("demo data in %s; metrics at http://%s%s", directory, args.listen, args.telemetry_path)
    stop = threading.Event()
    if args.duration:
        threading.Timer(args.duration, stop.set).start()
    try:
        return serve(args, config, config_path, stop)
    finally:
        writer.stop()
