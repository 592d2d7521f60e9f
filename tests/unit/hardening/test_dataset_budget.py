"""Dataset profiling has a budget: it runs beside serving ingestion, stops promptly, and
reads huge-value files in batches bounded by bytes."""

import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from exporter.app import Exporter
from exporter.config import parse_config
from exporter.sources.reference import BATCH_BYTES, iter_batches
from tests.helpers import sample, serving_line, wait_for


def test_a_huge_partition_does_not_hold_up_serving_or_shutdown(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "train").mkdir()
    pq.write_table(pa.table({"x": rng.normal(0, 1, 5000)}), tmp_path / "train" / "t.parquet")
    daily = tmp_path / "daily" / "date=2026-11-01"
    daily.mkdir(parents=True)
    # 600M rows of one value: 3 MB on disk, ~2.7 s of profiling here with the compiled
    # loop (~11 s without). 20M rows (0.5 s) made the test a race: the partition was done
    # before the serving lines were written.
    zeros = pa.table({"x": np.zeros(20_000_000)})
    with pq.ParquetWriter(daily / "p.parquet", zeros.schema) as writer:
        for _ in range(30):
            writer.write_table(zeros)
    logs = tmp_path / "logs"
    logs.mkdir()
    cfg = {
        "models": [
            {
                "name": "fraud",
                "serving_logs": [str(logs / "*.jsonl")],
                "reference": {"path": str(tmp_path / "train")},
            }
        ],
        "datasets": [{"name": "daily", "path": str(tmp_path / "daily"), "reference": "fraud"}],
    }
    e = Exporter(parse_config(cfg), interval=0.05, stats_interval=0.2)
    e.start()
    try:
        time.sleep(0.3)  # the profiler is now inside the big file
        (logs / "a.jsonl").write_text("".join(serving_line(i) for i in range(100)))
        labels = {"model": "fraud", "version": "v1", "outcome": "success"}
        started = time.monotonic()
        wait_for(lambda: sample(e, "mlpipe_serving_requests_total", **labels) == 100, timeout=5)
        assert time.monotonic() - started < 2  # not after the partition
        assert sample(e, "mlpipe_dataset_rows", dataset="daily") is None  # still profiling
    finally:
        started = time.monotonic()
        e.stop()
        stopped = time.monotonic() - started
    assert stopped < 2, stopped


def test_batches_are_bounded_in_bytes_not_only_rows(tmp_path):
    # 160 rows of 1 MB strings, compressing to almost nothing: 160 MB decoded.
    values = [f"{i:06d}" + "y" * (1 << 20) for i in range(160)]
    pq.write_table(pa.table({"s": values}), tmp_path / "bomb.parquet", compression="zstd")
    largest = 0
    rows = 0
    for batch in iter_batches([str(tmp_path / "bomb.parquet")], ["s"]):
        largest = max(largest, batch.nbytes)
        rows += batch.num_rows
    assert rows == 160
    assert largest <= 1.5 * BATCH_BYTES, largest
