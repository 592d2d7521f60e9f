"""The heavy variants of the hardening cases (`make test-all`); short ones run by default."""

import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from exporter.app import Exporter
from exporter.config import parse_config
from tests.helpers import sample, serving_line, wait_for

pytestmark = pytest.mark.slow


def test_a_100_mb_line_without_newline_does_not_delay_the_other_files(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    with open(logs / "a.jsonl", "wb") as fh:
        fh.write(b"y" * (100 << 20))
    cfg = {"models": [{"name": "fraud", "serving_logs": [str(logs / "*.jsonl")]}]}
    e = Exporter(parse_config(cfg), interval=0.5)
    e.start()
    try:
        time.sleep(0.2)
        (logs / "b.jsonl").write_text("".join(serving_line(i) for i in range(10)))
        started = time.monotonic()
        labels = {"model": "fraud", "version": "v1", "outcome": "success"}
        wait_for(lambda: sample(e, "mlpipe_serving_requests_total", **labels) == 10, timeout=10)
        assert time.monotonic() - started < 1.5  # within about one ingest interval
    finally:
        e.stop()


def test_5000_files_in_one_partition_keep_the_rendering_fresh(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "train").mkdir()
    pq.write_table(pa.table({"x": rng.normal(0, 1, 5000)}), tmp_path / "train" / "t.parquet")
    part = tmp_path / "daily" / "date=2026-11-01"
    part.mkdir(parents=True)
    small = pa.table({"x": rng.normal(0, 1, 10)})
    for i in range(5000):
        pq.write_table(small, part / f"p{i:05d}.parquet")
    (tmp_path / "logs").mkdir()
    cfg = {
        "models": [
            {
                "name": "fraud",
                "serving_logs": [str(tmp_path / "logs" / "*")],
                "reference": {"path": str(tmp_path / "train")},
            }
        ],
        "datasets": [{"name": "daily", "path": str(tmp_path / "daily"), "reference": "fraud"}],
    }
    e = Exporter(parse_config(cfg), interval=0.2, stats_interval=1.0)
    e.start()
    try:
        ages = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if e.rendering is not None:
                ages.append(time.time() - e.rendering.rendered_at)
            if sample(e, "mlpipe_dataset_rows", dataset="daily") == 50_000:
                break
        assert max(ages) < 3.0, max(ages)
        assert sample(e, "mlpipe_dataset_rows", dataset="daily") == 50_000
    finally:
        e.stop()
