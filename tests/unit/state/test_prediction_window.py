"""A prediction window written cell by cell (a few records over many buckets) holds exactly
what it holds when written bucket row by bucket row, for numbers and for classes."""

import numpy as np
import pytest

from exporter.state import prediction_window
from exporter.state.prediction_window import PredictionWindow
from exporter.state.profiles import CategoricalSpec, NumericSpec
from exporter.state.windows import BucketClock

SLOTS = 3


def spec(kind: str, rng):
    if kind == "numeric":
        sample = rng.normal(0, 1, 2000)
        return NumericSpec.from_sample("p", sample, sample.min(), sample.max(), sample.std())
    return CategoricalSpec.build("p", ("a", "b", "c"), frozenset("abcd"))


@pytest.mark.parametrize("kind", ["numeric", "categorical"])
@pytest.mark.parametrize(("length", "bucket"), [(600, 60), (86400, 300)])
def test_cells_and_rows_write_the_same_window(monkeypatch, kind, length, bucket):
    """Batches of 1 to 300 predictions over 1 to 40 buckets and 3 version slots, NaNs (or
    codes of -1) among them: equal buckets (counts exactly; value sums to float32 rounding,
    added in another order) and equal since-start totals, which count what was sent."""
    rng = np.random.default_rng(3)
    s = spec(kind, rng)
    clock = BucketClock(bucket, length)
    by_cell, by_row = (PredictionWindow(clock, s, SLOTS) for _ in range(2))
    now = 1_000_000_000.0
    span = min(40, 2 * clock.per_window)
    sent = np.zeros(SLOTS, int)
    sent_sums = np.zeros(SLOTS)
    for _ in range(200):
        n = int(rng.integers(1, 300))
        buckets = clock.current(now) - rng.integers(0, int(rng.integers(1, span)), n)
        slots = rng.integers(0, SLOTS, n)
        if kind == "numeric":
            values = rng.normal(0, 1.5, n)
            values[rng.random(n) < 0.1] = np.nan
            valid = ~np.isnan(values)
            sent_sums += np.bincount(slots[valid], values[valid], SLOTS)
        else:
            values = rng.integers(-1, s.bins, n)
            valid = values >= 0
        sent += np.bincount(slots[valid], minlength=SLOTS)
        for w, ratio in ((by_cell, 0), (by_row, 10**9)):
            monkeypatch.setattr(prediction_window, "SPARSE_RATIO", ratio)
            w.add(buckets, slots, values)
        if rng.random() < 0.3:
            now += bucket * float(rng.integers(1, 5))
        for back in (0, 1):
            for slot in range(SLOTS):
                a, b = by_cell.counts(now, back, slot), by_row.counts(now, back, slot)
                if kind == "numeric":
                    assert np.array_equal(a.counts, b.counts)
                    np.testing.assert_allclose(a.sums, b.sums, rtol=1e-6, atol=1e-4)
                else:
                    assert np.array_equal(a, b)
    assert np.array_equal(by_cell.ring.ids, by_row.ring.ids)
    assert np.array_equal(by_cell.ring.arrays["pred"], by_row.ring.arrays["pred"])
    for w in (by_cell, by_row):
        total, total_sum = w.totals()
        assert total.sum(axis=1).tolist() == sent.tolist()
        np.testing.assert_allclose(total_sum, sent_sums, rtol=1e-12, atol=1e-9)
    assert np.array_equal(by_cell.total, by_row.total)


def test_records_without_a_prediction_leave_the_ring_as_it_is():
    """A log that carries no prediction (None, read as NaN): nothing binned, no ring row
    claimed or allocated, so no statistic is recomputed for it."""
    from exporter.state.prediction_window import PredictionWindow
    from exporter.state.profiles import NumericSpec
    from exporter.state.windows import BucketClock

    sample = np.random.default_rng(0).normal(0, 1, 500)
    spec = NumericSpec.from_sample("p", sample, sample.min(), sample.max(), sample.std())
    w = PredictionWindow(BucketClock(60, 3600), spec, 2)
    values = w.values([None] * 5)
    assert np.isnan(values).all()
    w.add(np.arange(5) + 100, np.zeros(5, np.int64), values)
    assert w.ring.mutations == 0 and not w.ring.arrays and not w.total.any()
