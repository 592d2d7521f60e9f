"""The Spark-built reference profile equals the single-process one on the same Parquet:
the same bin edges (exact below 100 000 rows), identical counts, the same hash."""

import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from exporter.config import parse_config
from exporter.sources.reference import build_reference, load_cache, save_cache

pyspark = pytest.importorskip("pyspark", reason="the [spark] extra (make setup installs it)")


@pytest.fixture(scope="module")
def spark():
    # Executors run this interpreter, where the exporter package is installed.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("mlpipe-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    yield session
    session.stop()


def test_spark_profile_equals_the_single_process_profile(tmp_path, spark):
    from exporter.sources.spark_reference import build_reference_from_spark

    rng = np.random.default_rng(3)
    n = 30_000
    amount = rng.lognormal(3, 1, n)
    amount[rng.random(n) < 0.02] = np.nan  # nulls count as missing, not as values
    table = pa.table(
        {
            "amount": amount,
            "age": rng.integers(18, 90, n),
            "country": rng.choice([f"c{i}" for i in range(300)], n, p=None),
            "device": rng.choice(["ios", "android", "web"], n),
            "flag": rng.random(n) < 0.3,
            "label": (rng.random(n) < 0.2).astype(np.int64),
            "prediction": rng.random(n),
        }
    )
    (tmp_path / "train").mkdir()
    for k in range(3):  # several files: Spark reads them as several partitions
        pq.write_table(table.slice(k * n // 3, n // 3), tmp_path / "train" / f"p{k}.parquet")
    model = parse_config(
        {
            "models": [
                {
                    "name": "fraud",
                    "serving_logs": [str(tmp_path / "*.jsonl")],
                    "reference": {
                        "path": str(tmp_path / "train"),
                        "label": "label",
                        "prediction": "prediction",
                    },
                    "top_k": 50,
                }
            ]
        }
    ).models[0]
    local = build_reference(model)
    df = spark.read.parquet(str(tmp_path / "train")).repartition(5)
    assert df.rdd.getNumPartitions() == 5
    built = build_reference_from_spark(df, model)

    assert built.rows == local.rows == n
    for part in ("features", "prediction", "label"):
        a, b = getattr(local, part), getattr(built, part)
        assert [s.name for s in a.specs.numeric] == [s.name for s in b.specs.numeric]
        for sa, sb in zip(a.specs.numeric, b.specs.numeric, strict=True):
            assert np.array_equal(sa.edges, sb.edges), sa.name  # exact: every value sampled
            assert np.array_equal(sa.psi_edges, sb.psi_edges)
            assert sb.scale == pytest.approx(sa.scale, rel=1e-12)
            assert (sa.low, sa.high) == (sb.low, sb.high)
        for sa, sb in zip(a.specs.categorical, b.specs.categorical, strict=True):
            assert sa.values == sb.values and sa.vocabulary == sb.vocabulary, sa.name
            assert sa.new_value_share == sb.new_value_share
        assert np.array_equal(a.profile.numeric, b.profile.numeric), part  # identical counts
        assert np.array_equal(a.profile.categorical, b.profile.categorical), part
        np.testing.assert_allclose(a.profile.sums, b.profile.sums, rtol=1e-9)
    assert built.hash == local.hash
    # The quality estimate's calibration: positives per score bin, identical.
    assert local.calibration is not None
    np.testing.assert_array_equal(built.calibration, local.calibration)
    # Saved, it is a profile file every exporter can load.
    save_cache(str(tmp_path / "fraud.profile"), built)
    assert load_cache(str(tmp_path / "fraud.profile")).hash == local.hash


def test_spark_profile_counts_each_class_for_the_multiclass_estimate(tmp_path, spark):
    from exporter.sources.spark_reference import build_reference_from_spark

    rng = np.random.default_rng(4)
    n = 9000
    p = rng.dirichlet([2.0, 1.0, 1.0], n)
    y = (rng.random((n, 1)) > np.cumsum(p, axis=1)).sum(axis=1)
    classes = ["x", "y", "z"]
    table = pa.table(
        {
            "amount": rng.normal(size=n),
            **{f"p_{c}": p[:, k] for k, c in enumerate(classes)},
            "label": np.array(classes)[y],
        }
    )
    (tmp_path / "train").mkdir()
    for k in range(3):
        pq.write_table(table.slice(k * n // 3, n // 3), tmp_path / "train" / f"p{k}.parquet")
    reference = {
        "path": str(tmp_path / "train"),
        "label": "label",
        "scores": [f"p_{c}" for c in classes],
    }
    model = parse_config(
        {
            "models": [
                {
                    "name": "animals",
                    "task": "multiclass",
                    "classes": classes,
                    "serving_logs": [str(tmp_path / "*.jsonl")],
                    "reference": reference,
                }
            ]
        }
    ).models[0]
    local = build_reference(model)
    built = build_reference_from_spark(spark.read.parquet(str(tmp_path / "train")), model)
    assert built.hash == local.hash
    assert local.class_calibration.sum() == n
    np.testing.assert_array_equal(built.class_calibration, local.class_calibration)
