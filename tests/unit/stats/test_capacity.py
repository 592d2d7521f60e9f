"""stats/capacity.quantile stands in for np.quantile in every statistics pass: equal to it,
bit for bit."""

import numpy as np
import pytest

from exporter.stats.capacity import peak_rate, quantile


@pytest.mark.parametrize("q", [0.0, 0.5, 0.9, 0.99, 1.0])
def test_quantile_equals_numpy_bit_for_bit(q):
    rng = np.random.default_rng(7)
    for n in [1, 2, 3, 7, 60, 61, 288, 1000]:
        for values in (
            rng.integers(0, 5000, n),  # per-bucket request counts
            rng.lognormal(3, 2, n),
            np.zeros(n, np.int64),
        ):
            assert quantile(values, q) == float(np.quantile(values, q)), (n, q)


def test_peak_rate_is_the_p99_per_second():
    counts = np.arange(101, dtype=np.int64)  # p99 of 0..100 is 99
    assert peak_rate(counts, 60.0) == 99 / 60
