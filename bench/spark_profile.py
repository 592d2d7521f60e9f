"""Reference profile build: the Spark builder on local[2] beside the single-process builder,
on the same Parquet file (20 numeric + 10 categorical columns by default).

    python bench/spark_profile.py [--rows 10000000] [--runs 3]

Prints rows/s for each (median of --runs) and checks the two profiles' counts agree.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import CATEGORICAL, CATEGORIES, NUMERIC, OUT
from exporter.config import parse_config
from exporter.sources.reference import build_reference


def write(path: str, rows: int) -> None:
    if os.path.exists(path) and pq.ParquetFile(path).metadata.num_rows == rows:
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rng = np.random.default_rng(0)
    block = 1_000_000
    schema = None
    with pq.ParquetWriter(path + ".tmp", schema=_schema()) as writer:
        for start in range(0, rows, block):
            n = min(block, rows - start)
            cols = {c: rng.normal(i % 7, 1 + i % 3, n) for i, c in enumerate(NUMERIC)}
            cols.update({c: rng.choice(CATEGORIES, n) for c in CATEGORICAL})
            writer.write_table(pa.table(cols, schema=schema or _schema()))
    os.replace(path + ".tmp", path)


def _schema() -> pa.Schema:
    return pa.schema([(c, pa.float64()) for c in NUMERIC] + [(c, pa.string()) for c in CATEGORICAL])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    path = os.path.join(OUT, f"spark-reference-{args.rows}.parquet")
    write(path, args.rows)
    model = parse_config(
        {"models": [{"name": "m", "serving_logs": ["/dev/null"], "reference": {"path": path}}]}
    ).models[0]
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    from exporter.sources.spark_reference import build_reference_from_spark

    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "4g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    times = {"single process": [], "spark local[2]": []}
    for _ in range(args.runs):
        t = time.perf_counter()
        local = build_reference(model)
        times["single process"].append(time.perf_counter() - t)
        t = time.perf_counter()
        built = build_reference_from_spark(spark.read.parquet(path), model)
        times["spark local[2]"].append(time.perf_counter() - t)
    spark.stop()
    same = np.array_equal(local.features.profile.categorical, built.features.profile.categorical)
    near = max(
        abs(a - b).max() / args.rows
        for a, b in zip(local.features.profile.numeric, built.features.profile.numeric, strict=True)
    )
    print(f"reference build: {args.rows} rows x {len(NUMERIC) + len(CATEGORICAL)} columns, "
          f"median of {args.runs}")  # fmt: skip
    print("| builder | seconds | rows/s |")
    print("|---|---|---|")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"| {name} | {med:.1f} | {args.rows / med:,.0f} |")
    print(f"categorical counts identical: {same}; largest numeric bin-share difference "
          f"(edges from two different 100 000-value samples): {near:.2e}")  # fmt: skip


if __name__ == "__main__":
    main()
