"""Dataset watcher: partitions landing, drift, corrupt/half-written/empty files, schema change."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from exporter.app import Exporter
from exporter.config import parse_config
from tests.helpers import sample, settle


def table(rng, n, shift=0.0):
    return pa.table(
        {
            "x": rng.normal(shift, 1, n),
            "c": rng.choice(
                ["a", "b", "c"], n, p=[0.6, 0.3, 0.1] if not shift else [0.1, 0.3, 0.6]
            ),
            "y": (rng.random(n) < (0.2 + 0.3 * bool(shift))).astype(np.int64),
        }
    )


@pytest.fixture
def setup(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "train").mkdir()
    pq.write_table(table(rng, 20_000), tmp_path / "train" / "t.parquet")
    (tmp_path / "daily").mkdir()
    (tmp_path / "logs").mkdir()
    cfg = parse_config(
        {
            "models": [
                {
                    "name": "fraud",
                    "serving_logs": [str(tmp_path / "logs" / "*")],
                    "reference": {"path": str(tmp_path / "train"), "label": "y"},
                }
            ],
            "datasets": [{"name": "daily", "path": str(tmp_path / "daily"), "reference": "fraud"}],
        }
    )
    e = Exporter(cfg, state_dir=str(tmp_path / "state"))
    return e, tmp_path / "daily", rng


def land(daily, partition, tbl, name="part-0.parquet"):
    (daily / partition).mkdir(exist_ok=True)
    pq.write_table(tbl, daily / partition / name)


def drain(e):
    settle(e)


def test_partitions_landing_skew_and_drift(setup):
    e, daily, rng = setup
    land(daily, "date=2026-11-01", table(rng, 5000))
    (daily / "date=2026-11-01" / "_SUCCESS").write_text("")
    drain(e)

    def skew(f, m):
        return sample(
            e,
            "mlpipe_dataset_feature_skew",
            dataset="daily",
            feature=f,
            method=m,
        )

    assert sample(e, "mlpipe_dataset_rows", dataset="daily") == 5000
    assert skew("x", "psi") < 0.05 and skew("c", "psi") < 0.05
    assert (
        sample(e, "mlpipe_dataset_feature_drift", dataset="daily", feature="x", method="psi")
        is None
    )  # no previous partition yet
    land(daily, "date=2026-11-02", table(rng, 3000, shift=1.0))
    drain(e)
    assert sample(e, "mlpipe_dataset_rows", dataset="daily") == 3000
    assert sample(e, "mlpipe_dataset_partitions", dataset="daily") == 2
    assert skew("x", "psi") > 0.2 and skew("c", "psi") > 0.2
    assert (
        sample(
            e, "mlpipe_dataset_feature_drift", dataset="daily", feature="x", method="wasserstein"
        )
        > 0.5
    )
    assert sample(e, "mlpipe_dataset_label_skew", dataset="daily", method="psi") > 0.2
    assert (
        sample(e, "mlpipe_dataset_values_total", dataset="daily", feature="x", status="valid")
        + sample(
            e, "mlpipe_dataset_values_total", dataset="daily", feature="x", status="out_of_range"
        )
        == 8000
    )
    assert sample(e, "mlpipe_dataset_last_update_timestamp_seconds", dataset="daily") > 0


def test_bad_files_are_counted_skipped_and_retried_on_change(setup, tmp_path):
    e, daily, rng = setup
    land(daily, "date=2026-11-01", table(rng, 1000))
    (daily / "date=2026-11-02").mkdir()
    (daily / "date=2026-11-02" / "empty.parquet").write_bytes(b"")
    (daily / "date=2026-11-02" / "garbage.parquet").write_bytes(b"PAR1" + b"\x00" * 100)
    good = tmp_path / "whole.parquet"
    pq.write_table(table(rng, 2000), good)
    data = good.read_bytes()
    half = daily / "date=2026-11-02" / "half.parquet"
    half.write_bytes(data[: len(data) // 2])  # a writer still at work
    # A whole file whose footer (metadata, length, magic) was overwritten with garbage.
    (daily / "date=2026-11-02" / "footer.parquet").write_bytes(data[:-64] + b"\xde\xad" * 32)
    drain(e)
    failed = lambda r: sample(e, "mlpipe_dataset_files_failed_total", dataset="daily", reason=r)  # noqa: E731
    assert failed("empty") == 1 and failed("corrupt") == 3
    assert sample(e, "mlpipe_dataset_rows", dataset="daily") == 1000  # latest good partition
    drain(e)
    assert failed("corrupt") == 3  # unchanged files are not retried
    half.write_bytes(data)  # the writer finished
    drain(e)
    assert failed("corrupt") == 3
    assert sample(e, "mlpipe_dataset_rows", dataset="daily") == 2000
    assert sample(e, "mlpipe_scrape_collector_success", collector="datasets") == 1


def test_schema_change_is_reported_not_a_crash(setup):
    e, daily, rng = setup
    land(daily, "date=2026-11-01", table(rng, 1000))
    land(daily, "date=2026-11-02", pa.table({"x": pa.array(["1.5"] * 500), "y": [0] * 500}))
    drain(e)

    def problem(f, p):
        return sample(
            e,
            "mlpipe_dataset_schema_problem",
            dataset="daily",
            feature=f,
            problem=p,
        )

    assert problem("x", "wrong_type") == 1 and problem("c", "missing_column") == 1
    assert problem("x", "missing_column") == 0
    assert (
        sample(e, "mlpipe_dataset_values_total", dataset="daily", feature="c", status="missing")
        == 500
    )
    assert (
        sample(e, "mlpipe_dataset_values_total", dataset="daily", feature="x", status="malformed")
        == 500
    )
    assert sample(e, "mlpipe_dataset_rows", dataset="daily") == 500
