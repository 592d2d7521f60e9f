"""Reference profiles built on Spark, for training data one machine cannot read in time
(docs/fleet.md#spark). Install with the ``spark`` extra (pyspark; Java 17+).

    from exporter.sources.spark_reference import build_reference_from_spark
    from exporter.sources.reference import save_cache
    ref = build_reference_from_spark(spark.read.parquet("s3://bucket/train/"), model)
    save_cache("fraud.profile", ref)   # what `reference: {profile: fraud.profile}` loads

The same two passes as the single-process builder (sources/reference.py), each partition
doing its part with ``mapInArrow`` on Arrow batches and the driver merging the parts:

1. per partition, moments, min/max, category counts and a Bernoulli sample of the numeric
   values (p = 100 000 / rows, the single-process builder's estimator); merged, the sample's
   quantiles (numpy's linear interpolation) give the bin edges. Up to 100 000 rows the
   sample is every value and the edges are exactly the single-process builder's; above,
   each is a sample quantile with a rank error of about 1/√100 000 ≈ 0.3 % (the
   single-process builder draws another sample of the same size). Spark's
   ``approxQuantile`` would cost a pass per accuracy level and return data values, not
   numpy's interpolated quantiles; the edges would then differ even on small data.
2. per partition, counts and sums over those bins (the specs are shipped to the executors);
   merged, they are the reference profile — integer counts identical to the single-process
   builder's on the same data.
"""

from __future__ import annotations

import pickle

import pyarrow as pa

from exporter.config import Model
from exporter.sources.reference import (
    Calibration,
    ClassCalibration,
    ReferenceError,
    _assemble,
    _Pass1,
    profile_batch,
    profile_columns,
)
from exporter.state.profiles import Profile
from exporter.state.reference import ReferenceProfile


def _arrow_schema(df) -> pa.Schema:
    """The Arrow types the column typing needs (numeric, categorical, other), without
    pyspark's converter (it requires pandas)."""
    from pyspark.sql import types as T

    def arrow(t) -> pa.DataType:
        if isinstance(t, T.DecimalType):
            return pa.decimal128(t.precision, t.scale)
        if isinstance(t, T.IntegralType):
            return pa.int64()
        if isinstance(t, T.FractionalType):
            return pa.float64()
        if isinstance(t, T.StringType):
            return pa.string()
        if isinstance(t, T.BooleanType):
            return pa.bool_()
        return pa.binary()  # neither kind: not profiled unless listed under features

    return pa.schema([(f.name, arrow(f.dataType)) for f in df.schema.fields])


def _merged(parts) -> object:
    merged = None
    for row in parts:
        part = pickle.loads(row["part"])
        if merged is None:
            merged = part
        else:
            merged.merge(part)
    return merged


def build_reference_from_spark(df, model: Model) -> ReferenceProfile:
    """The reference profile of a Spark DataFrame of training data, as ``build_reference``
    would build it from the same rows in one process."""
    numeric, categorical = profile_columns(_arrow_schema(df), model)
    columns = [*numeric, *categorical]
    df = df.select(*columns)
    rows = df.count()
    if rows == 0:
        raise ReferenceError(f"model {model.name}: the Spark reference has no rows")

    def first(batches):
        from pyspark import TaskContext

        context = TaskContext.get()
        part = _Pass1(numeric, categorical, rows, seed=context.partitionId() if context else 0)
        for batch in batches:
            part.add(batch)
        part.rng = None  # not needed on the driver
        yield pa.RecordBatch.from_pydict({"part": [pickle.dumps(part)]})

    pass1 = _merged(df.mapInArrow(first, "part binary").collect())
    specs = pass1.specs(model.top_k)
    shipped = df.sparkSession.sparkContext.broadcast(specs)

    def calibrations(specs):
        # The quality estimate's label counts per score bin (binary; multiclass per class).
        return (Calibration.for_model(model, specs), ClassCalibration.for_model(model, specs))

    def second(batches):
        specs = shipped.value
        total = Profile.zeros(specs)
        counts = calibrations(specs)
        for batch in batches:
            if batch.num_rows:
                total = total + profile_batch(specs, batch)
                for c in filter(None, counts):
                    c.add(batch)
        positives = [c.positives if c is not None else None for c in counts]
        yield pa.RecordBatch.from_pydict({"part": [pickle.dumps((total, positives))]})

    profile = Profile.zeros(specs)
    positives = [c.positives if c is not None else None for c in calibrations(specs)]
    for row in df.mapInArrow(second, "part binary").collect():
        part, counts = pickle.loads(row["part"])
        profile = profile + part
        for total, count in zip(positives, counts, strict=True):
            if total is not None:
                total += count
    shipped.unpersist()
    try:
        files = list(df.inputFiles())
    except Exception:  # a DataFrame not read from files
        files = []
    ref = _assemble(model, specs, profile, rows, files)
    ref.calibration, ref.class_calibration = positives
    return ref
