"""A feature window written cell by cell (a few records over many buckets) holds exactly
what it holds when written bucket row by bucket row."""

import numpy as np
import pytest

from exporter.state import feature_window
from exporter.state.feature_window import FeatureWindow
from exporter.state.profiles import SCATTER_COMPILED, CategoricalSpec, ColumnSpecs, NumericSpec
from exporter.state.windows import BucketClock


def specs(rng) -> ColumnSpecs:
    numeric = tuple(
        NumericSpec.from_sample(f"x{j}", s, s.min(), s.max(), s.std())
        for j, s in enumerate(rng.normal(0, 1, (4, 2000)))
    )
    categorical = tuple(
        CategoricalSpec.build(f"c{j}", ("a", "b", "c"), frozenset("abcd")) for j in range(2)
    )
    return ColumnSpecs(numeric, categorical)


def window(cols: ColumnSpecs, length: float, bucket: float) -> FeatureWindow:
    return FeatureWindow(
        BucketClock(bucket, length), cols, ["x0", "x1", "x2", "x3"], ["c0", "c1"], 0.0
    )


@pytest.mark.parametrize(("length", "bucket"), [(600, 60), (86400, 300)])
@pytest.mark.parametrize("compiled", [True, False] if SCATTER_COMPILED else [False])
def test_cells_and_rows_write_the_same_window(monkeypatch, length, bucket, compiled):
    """Batches of 1 to 300 records over 1 to 40 buckets, NaNs and codes of -1 among them,
    the kept window sums read now and then: both ways give equal buckets (exactly for
    counts; to float32 rounding for value sums, added in another order when several of the
    clock's buckets are one of the ring's, at 24 h / 5 min) and equal since-start totals."""
    # The cells written by the compiled scatter, or by numpy where it is not built.
    monkeypatch.setattr(feature_window, "SCATTER_COMPILED", compiled)
    rng = np.random.default_rng(11)
    cols = specs(rng)
    by_cell, by_row = window(cols, length, bucket), window(cols, length, bucket)
    clock = BucketClock(bucket, length)
    now = 1_000_000_000.0
    span = min(40, 2 * clock.per_window)  # records older than the ring are not windowed
    sent_values, sent_sums, sent_codes = np.zeros(4, int), np.zeros(4), 0
    for step in range(200):
        n = int(rng.integers(1, 300))
        current = clock.current(now)
        buckets = current - rng.integers(0, int(rng.integers(1, span)), n)
        values = rng.normal(0, 1.5, (n, 4))
        values[rng.random((n, 4)) < 0.1] = np.nan
        codes = rng.integers(-1, 5, (n, 2))
        sent_values += (~np.isnan(values)).sum(axis=0)
        sent_sums += np.nansum(values, axis=0)
        sent_codes += int((codes >= 0).sum())
        for w, ratio in ((by_cell, 0), (by_row, 10**9)):
            monkeypatch.setattr(feature_window, "SPARSE_RATIO", ratio)
            w.add(buckets, values, codes)
        if rng.random() < 0.3:
            now += bucket * float(rng.integers(1, 5))
        if rng.random() < 0.5:
            for back in (0, 1):
                a, b = by_cell.profile(now, back), by_row.profile(now, back)
                assert np.array_equal(a.numeric, b.numeric), step
                assert np.array_equal(a.categorical, b.categorical), step
                np.testing.assert_allclose(a.sums, b.sums, rtol=1e-6, atol=1e-4)
    ring_a, ring_b = by_cell.ring, by_row.ring
    assert np.array_equal(ring_a.ids, ring_b.ids)
    for name in ("num", "cat"):
        assert np.array_equal(ring_a.arrays[name], ring_b.arrays[name])
    np.testing.assert_allclose(ring_a.arrays["num_sums"], ring_b.arrays["num_sums"], atol=1e-4)
    for a, b in zip(by_cell.totals(), by_row.totals(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    # What both counted since start is what was sent: every non-NaN value, every code >= 0.
    assert np.array_equal(by_cell.total_num.sum(axis=1), sent_values)
    np.testing.assert_allclose(by_cell.total_sum, sent_sums, rtol=1e-12)
    assert by_cell.total_cat.sum() == sent_codes


def test_a_write_picks_cells_when_its_records_are_few_for_its_buckets():
    """The choice itself: 2 records over 30 buckets go cell by cell (no bucket row is
    added whole), 3 000 records in one bucket go row by row."""
    rng = np.random.default_rng(2)
    cols = specs(rng)
    w = window(cols, 3600, 60)
    calls = []
    w.ring.add_at = lambda *a: calls.append("cells")
    w.ring.add_buckets = lambda *a: calls.append("rows")
    current = BucketClock(60, 3600).current(1_000_000_000.0)
    w.add(np.array([current - 29, current]), rng.normal(0, 1, (2, 4)), np.zeros((2, 2), int))
    w.add(np.full(3000, current), rng.normal(0, 1, (3000, 4)), np.zeros((3000, 2), int))
    assert calls == ["cells", "rows"]
