"""A slow reference never delays listening, health or the serving metrics."""

import threading
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import requests

from exporter.app import Exporter
from exporter.config import parse_config
from exporter.server import MetricsServer
from exporter.sources import reference_builds
from tests.helpers import sample, serving_line, wait_for


def slow_references(monkeypatch) -> threading.Event:
    """References build only once the returned event is set (a reference far larger than a
    liveness probe allows)."""
    release = threading.Event()
    real = reference_builds.load_or_build

    def slow(model, state_dir, force=False):
        release.wait(30)
        return real(model, state_dir, force)

    monkeypatch.setattr(reference_builds, "load_or_build", slow)
    return release


def test_serving_metrics_flow_while_the_reference_builds(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    (tmp_path / "train").mkdir()
    pq.write_table(pa.table({"x": rng.normal(0, 1, 5000)}), tmp_path / "train" / "t.parquet")
    logs = tmp_path / "logs"
    logs.mkdir()
    release = slow_references(monkeypatch)
    cfg = {
        "models": [
            {
                "name": "fraud",
                "serving_logs": [str(logs / "*.jsonl")],
                "reference": {"path": str(tmp_path / "train")},
                "min_samples": 10,
            }
        ]
    }
    started = time.monotonic()
    e = Exporter(parse_config(cfg), interval=0.05, stats_interval=0.1, background_references=True)
    server = MetricsServer(e, "127.0.0.1", 0)
    server.start()
    e.start()
    url = f"http://127.0.0.1:{server.port}"
    try:
        assert requests.get(f"{url}/-/healthy", timeout=2).status_code == 200
        assert time.monotonic() - started < 2
        with open(logs / "a.jsonl", "w") as fh:
            for i in range(50):
                fh.write(
                    serving_line(i, timestamp=time.time(), features={"x": float(rng.normal())})
                )
        labels = {"model": "fraud", "version": "v1", "outcome": "success"}
        wait_for(lambda: sample(e, "mlpipe_serving_requests_total", **labels) == 50)
        assert sample(e, "mlpipe_reference_building", model="fraud") == 1
        assert sample(e, "mlpipe_reference_up", model="fraud") == 0
        assert sample(e, "mlpipe_feature_skew", model="fraud", feature="x", method="psi") is None
        release.set()
        wait_for(lambda: sample(e, "mlpipe_reference_up", model="fraud") == 1, what="built")
        assert sample(e, "mlpipe_reference_building", model="fraud") == 0
        assert sample(e, "mlpipe_serving_requests_total", **labels) == 50  # carried over
        with open(logs / "a.jsonl", "a") as fh:
            for i in range(50, 100):
                fh.write(
                    serving_line(i, timestamp=time.time(), features={"x": float(rng.normal())})
                )
        wait_for(
            lambda: (
                sample(e, "mlpipe_feature_skew", model="fraud", feature="x", method="psi")
                is not None
            ),
            what="skew once the reference is in",
        )
        assert sample(e, "mlpipe_serving_requests_total", **labels) == 100
    finally:
        release.set()
        e.stop()
        server.stop()


def test_a_dataset_waiting_for_its_reference_is_not_an_error(tmp_path, monkeypatch, caplog):
    rng = np.random.default_rng(2)
    (tmp_path / "train").mkdir()
    (tmp_path / "daily").mkdir()
    pq.write_table(pa.table({"x": rng.normal(0, 1, 500)}), tmp_path / "train" / "t.parquet")
    release = slow_references(monkeypatch)
    cfg = {
        "models": [
            {
                "name": "fraud",
                "serving_logs": [str(tmp_path / "*.jsonl")],
                "reference": {"path": str(tmp_path / "train")},
            }
        ],
        "datasets": [{"name": "daily", "path": str(tmp_path / "daily"), "reference": "fraud"}],
    }
    caplog.set_level("INFO")
    e = Exporter(parse_config(cfg), background_references=True)
    release.set()
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert not errors, [r.getMessage() for r in errors]
    assert any("waiting for model fraud's reference" in r.getMessage() for r in caplog.records)
    wait_for(lambda: e.references.changed.is_set(), what="the reference built")
