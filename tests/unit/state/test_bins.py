"""The compiled scatter of numeric values into a ring against numpy's path (bins by the
lookup table, np.add.at, since-start counters): the same cells, counts and sums."""

import numpy as np
import pytest

from exporter.state import profiles
from exporter.state.profiles import ColumnSpecs, NumericSpec

pytestmark = pytest.mark.skipif(not profiles.SCATTER_COMPILED, reason="not built")


def _specs(rng) -> ColumnSpecs:
    """Columns with a lookup table, one skewed, and ones without (a constant sample:
    degenerate edges, a binary search)."""
    samples = [
        rng.normal(0, 1, 2000),
        rng.lognormal(0, 2, 2000),
        np.full(2000, 3.0),
        rng.integers(0, 3, 2000).astype(float),
        rng.normal(50, 0.01, 2000),
    ]
    return ColumnSpecs(
        tuple(
            NumericSpec.from_sample(f"x{j}", s, s.min(), s.max(), s.std())
            for j, s in enumerate(samples)
        )
    )


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("table", ["int16", "int32"])
def test_scatter_writes_what_numpy_writes(seed, table):
    """Values across and beyond each column's edges, on an edge, NaN and +-inf, over
    random ring rows (repeated): counts and totals exactly, float32 sums to the bit (each
    cell's values added in row order, as np.add.at adds them). The lookup table as int16
    (most columns) and int32 (columns of 32 768 edges and more)."""
    rng = np.random.default_rng(seed)
    specs = _specs(rng)
    start, lengths = profiles._scatter_tables(specs)
    object.__setattr__(specs, "_scatter_tables", (start.astype(table), lengths))
    n_feat, width = len(specs.numeric), specs.numeric_width
    size, rows = 7, int(rng.integers(1, 400))
    edges = np.concatenate([s.edges for s in specs.numeric])
    values = rng.choice(
        np.concatenate([rng.normal(0, 30, 50), edges, [np.nan, np.inf, -np.inf, 0.0]]),
        (rows, n_feat),
    )
    offsets = rng.integers(0, size, rows) * (n_feat * width)
    want = [np.zeros(size * n_feat * width, np.int32), np.zeros(size * n_feat * width, np.float32)]
    want_totals = np.zeros(n_feat * width, np.int64), np.full(n_feat, 1.5)
    cells, within, kept = profiles.numeric_cells_at(specs, values, offsets)
    np.add.at(want[0], cells, np.int32(1))
    np.add.at(want[1], cells, kept.astype(np.float32))
    want_totals[0][:] += np.bincount(within, minlength=n_feat * width)
    want_totals[1][:] += np.where(np.isnan(values), 0.0, values).sum(axis=0)

    got = [np.zeros_like(w) for w in want]
    got_totals = np.zeros(n_feat * width, np.int64), np.full(n_feat, 1.5)
    profiles.scatter_numeric_at(specs, values, offsets, *got, *got_totals)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1].view(np.int32), want[1].view(np.int32))
    np.testing.assert_array_equal(got_totals[0], want_totals[0])
    np.testing.assert_array_equal(got_totals[1], want_totals[1])


def test_an_offset_outside_the_ring_changes_nothing():
    specs = _specs(np.random.default_rng(0))
    n_feat, width = len(specs.numeric), specs.numeric_width
    counts = np.zeros(2 * n_feat * width, np.int32)
    sums = np.zeros_like(counts, np.float32)
    totals = np.zeros(n_feat * width, np.int64), np.zeros(n_feat)
    values = np.ones((2, n_feat))
    with pytest.raises(IndexError, match="outside the ring"):
        profiles.scatter_numeric_at(
            specs, values, np.array([0, 2 * n_feat * width]), counts, sums, *totals
        )
    assert not counts.any() and not sums.any() and not totals[0].any()


def test_the_scatter_reads_the_stacked_table_itself():
    """No second copy of a model's lookup table kept for the scatter (57 MiB at 100
    models x 70 numeric features)."""
    specs = _specs(np.random.default_rng(1))
    start = profiles._stacked_lut(specs)[2]
    assert start.dtype == np.int16
    assert np.shares_memory(profiles._scatter_tables(specs)[0], start)
