"""The compiled column loops (numba) count what the numpy path and a plain searchsorted do."""

import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from exporter.sources.datasets import profile_file
from exporter.state import kernels
from exporter.state.profiles import (
    MALFORMED,
    MISSING,
    OUT_OF_RANGE,
    STATUSES,
    VALID,
    CategoricalSpec,
    ColumnSpecs,
    bin_columns,
)
from tests.unit.state.test_profiles import MIXED, cells

pytestmark = pytest.mark.skipif(not kernels.AVAILABLE, reason="numba (the fast extra) missing")

MARGIN = 0.1
LIMITS = MIXED.numeric_limits(MARGIN)


@pytest.fixture
def numpy_only(monkeypatch):
    def run(fn, *args, **kwargs):
        with monkeypatch.context() as m:
            m.setattr(kernels, "AVAILABLE", False)
            return fn(*args, **kwargs)

    return run


@settings(max_examples=300, deadline=None)
@given(
    values=arrays(np.float64, st.tuples(st.integers(1, 40), st.just(5)), elements=cells),
    malformed=st.booleans(),
    compiled=st.booleans(),
)
def test_a_column_counts_what_searchsorted_counts_both_ways(values, malformed, compiled):
    columns = [values[:, j].copy() for j in range(5)]
    counts, sums, status = bin_columns(
        MIXED, columns, MARGIN, infinite_malformed=malformed, compiled=compiled
    )
    for j, spec in enumerate(MIXED.numeric):
        x = values[:, j]
        binned = x[~np.isnan(x) & ~(malformed & np.isinf(x))]
        idx = np.searchsorted(spec.edges, binned, side="right")
        assert counts[j].tolist() == np.bincount(idx, minlength=MIXED.numeric_width).tolist()
        with np.errstate(invalid="ignore"):
            want_sums = np.bincount(idx, weights=binned, minlength=MIXED.numeric_width)
        np.testing.assert_array_equal(sums[j], want_sums)
        want = np.full(len(x), VALID)
        with np.errstate(invalid="ignore"):
            want[(x < LIMITS[j, 0]) | (x > LIMITS[j, 1])] = OUT_OF_RANGE
        want[np.isnan(x)] = MISSING
        if malformed:
            want[np.isinf(x)] = MALFORMED
        assert status[j].tolist() == np.bincount(want, minlength=len(STATUSES)).tolist()


def test_the_numpy_path_gives_the_compiled_loops_counts():
    assert kernels.profile_column() is not None  # numba installed: the loop is compiled
    rng = np.random.default_rng(5)
    x = rng.standard_cauchy((5000, 5)) * rng.choice([1, 1e6], (5000, 5))
    x[rng.random(x.shape) < 0.05] = np.nan
    x[rng.random(x.shape) < 0.01] = np.inf
    x[rng.random(x.shape) < 0.01] = -np.inf
    columns = [x[:, j].copy() for j in range(5)]
    for malformed in (False, True):
        fast = bin_columns(MIXED, columns, MARGIN, malformed, compiled=True)
        slow = bin_columns(MIXED, [c.copy() for c in columns], MARGIN, malformed, compiled=False)
        for a, b in zip(fast, slow, strict=True):
            np.testing.assert_array_equal(a, b)


def test_a_partition_profiles_the_same_with_and_without_the_compiled_loops(tmp_path, numpy_only):
    """Nulls, infinities, integer and decimal columns, dictionary strings: one file, read
    the way datasets read it."""
    rng = np.random.default_rng(9)
    n = 30_000
    a = rng.normal(size=n)
    a[::97] = np.inf
    nulls = rng.random(n) < 0.1
    specs = ColumnSpecs(
        tuple(MIXED.numeric[:3]),
        (CategoricalSpec.from_counts("c", {"x": 50, "y": 30, "z": 1}, 2, True),),
    )
    table = pa.table(
        {
            "f0": pa.array(a, mask=nulls),
            "f1": pa.array(rng.integers(-5, 5, n)),
            "f2": pa.array(rng.integers(0, 3, n), pa.int32()).cast(pa.decimal128(12, 0)),
            "c": pa.array(rng.choice(["x", "y", "z", "q", None], n).tolist()).dictionary_encode(),
        }
    )
    path = str(tmp_path / "p.parquet")
    pq.write_table(table, path)
    fast = profile_file(path, specs, None, 0.1)
    slow = numpy_only(profile_file, path, specs, None, 0.1)
    assert fast.rows == slow.rows == n
    assert fast.features == slow.features
    np.testing.assert_array_equal(fast.features.sums, slow.features.sums)
    np.testing.assert_array_equal(fast.values, slow.values)
    assert fast.values[0, MALFORMED] == np.count_nonzero(np.isinf(a) & ~nulls)
    assert fast.values[0, MISSING] == np.count_nonzero(nulls)


PROBE = """
import json, sys, time
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
from exporter.app import Exporter
from exporter.config import parse_config
root = sys.argv[1]
rng = np.random.default_rng(0)
pq.write_table(pa.table({"x": rng.normal(size=5000)}), f"{root}/train/t.parquet")
if sys.argv[2] == "dataset":
    pq.write_table(pa.table({"x": rng.normal(size=500)}), f"{root}/daily/p.parquet")
now = time.time()
with open(f"{root}/logs/a.jsonl", "w") as fh:
    for i in range(200):
        fh.write(json.dumps({"timestamp": now, "model": "m", "features": {"x": i / 100}}) + "\\n")
cfg = {"models": [{"name": "m", "serving_logs": [f"{root}/logs/*.jsonl"],
                   "reference": {"path": f"{root}/train"}, "features": {"numeric": ["x"]}}],
       "datasets": [{"name": "daily", "path": f"{root}/daily", "reference": "m"}]}
e = Exporter(parse_config(cfg), interval=0.05, stats_interval=0.2)
e.start()
deadline = time.time() + 20
while time.time() < deadline and (e.state.models["m"].features.status.sum() < 200
        or (sys.argv[2] == "dataset" and not e.state.datasets)):
    time.sleep(0.05)
time.sleep(0.5)
e.stop()
print("numba" in sys.modules)
"""


@pytest.mark.parametrize(("kind", "loaded"), [("serving", "False"), ("dataset", "True")])
def test_numba_is_loaded_only_where_a_dataset_is_profiled(tmp_path, kind, loaded):
    """Its ~140 MiB of RSS are paid by an exporter that watches datasets, not by one that
    builds references and windows serving logs."""
    for sub in ("train", "daily", "logs"):
        (tmp_path / sub).mkdir()
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path), kind],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert out.stdout.strip().splitlines()[-1] == loaded, out.stderr[-2000:]


def test_a_failing_compiled_loop_costs_nothing_but_speed(monkeypatch, caplog):
    """A compiler or typing error in the loop: the columns are binned by numpy, the error
    is logged with its traceback, and numpy is used from then on."""

    def broken(*args):
        raise TypeError("No implementation of function for argument types")

    monkeypatch.setitem(kernels._compiled, "profile_column", broken)
    monkeypatch.setattr(kernels, "AVAILABLE", True)
    x = np.random.default_rng(3).normal(size=(1000, 5))
    columns = [x[:, j].copy() for j in range(5)]
    got = bin_columns(MIXED, columns, MARGIN, True, compiled=True)
    want = bin_columns(MIXED, columns, MARGIN, True, compiled=False)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    assert kernels.AVAILABLE is False
    assert "compiled loop failed" in caplog.text and "TypeError" in caplog.text
