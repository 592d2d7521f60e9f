"""Verdict tests against scipy, and the false-alarm property by simulation (small scale;
bench/false_alarms.py runs it at full scale)."""

import numpy as np
import pytest
from scipy.stats import chi2_contingency, false_discovery_control, kstwo

from bench.false_alarms import Column, run_cell, simulation_error
from exporter.stats import verdict


def test_chi2_without_sparse_columns_is_scipys():
    rng = np.random.default_rng(0)
    ref = rng.integers(50, 500, 12).astype(float)
    cur = rng.integers(50, 500, 12).astype(float)
    stat, df, p = verdict.pooled_chi2(ref, cur)
    want = chi2_contingency(np.vstack([ref, cur]), correction=False)
    assert stat == pytest.approx(want.statistic, rel=1e-12)
    assert df == want.dof
    assert p == pytest.approx(want.pvalue, rel=1e-9)


def test_sparse_columns_are_pooled_into_one():
    # 20 rare categories (expected count in the smaller sample < 5 each, 34 together).
    ref = np.array([500.0, 400, 300] + [30] * 20)
    cur = np.array([50.0, 45, 20] + [2, 4] * 10)
    pooled = np.array([[500, 400, 300, 600], [50, 45, 20, 60]], float)
    want = chi2_contingency(pooled, correction=False)
    stat, df, p = verdict.pooled_chi2(ref, cur)
    assert (stat, df) == (pytest.approx(want.statistic, rel=1e-12), 3)
    assert p == pytest.approx(want.pvalue, rel=1e-9)


def test_a_pool_still_sparse_joins_the_smallest_column():
    ref = np.array([500.0, 400, 300, 2, 1, 3, 0])
    cur = np.array([50.0, 45, 20, 1, 0, 2, 1])
    pooled = np.array([[500, 400, 306], [50, 45, 24]], float)
    want = chi2_contingency(pooled, correction=False)
    stat, df, p = verdict.pooled_chi2(ref, cur)
    assert (stat, df) == (pytest.approx(want.statistic, rel=1e-12), 2)
    assert p == pytest.approx(want.pvalue, rel=1e-9)


@pytest.mark.parametrize("n,m", [(100, 100_000), (300, 300), (1000, 10**6), (10_000, 10_000)])
def test_ks_pvalue_matches_scipys_kolmogorov_distribution_at_n_eff(n, m):
    n_eff = n * m / (n + m)
    for c in (0.8, 1.2, 1.6, 2.0):
        d = c / np.sqrt(n_eff)
        assert verdict.ks_pvalue(d, n, m) == pytest.approx(kstwo.sf(d, round(n_eff)), rel=0.03)
    # The critical value a PromQL rule uses (one column of numbers) rejects at about alpha.
    crit = verdict.fleet_threshold(0.01, 1, 1, n_eff)
    assert verdict.ks_pvalue(crit, n, m) == pytest.approx(0.01, rel=0.15)


def test_benjamini_hochberg_agrees_with_scipy():
    rng = np.random.default_rng(1)
    for _ in range(300):
        m = int(rng.integers(1, 30))
        p = np.where(rng.random(m) < 0.3, rng.random(m) * 0.01, rng.random(m))
        drifted, threshold = verdict.decide(p, 0.05)
        assert np.array_equal(drifted, false_discovery_control(p) <= 0.05)
        assert (p[drifted] <= threshold).all() and (p[~drifted] > threshold).all()
    drifted, threshold = verdict.decide(np.array([0.001, 0.02, 0.5]), 0.05, "bonferroni")
    assert drifted.tolist() == [True, False, False] and threshold == pytest.approx(0.05 / 3)


def test_unseen_values_at_the_long_tails_rate_are_no_drift_but_a_new_category_is():
    ref = np.array([6000.0, 3000, 900, 100, 0])  # top 3, other, unseen
    share = 0.004  # what the reference's singletons predict
    quiet = np.array([600.0, 300, 90, 6, 4])
    assert verdict.categorical_pvalue(ref, quiet, share)[0] > 0.1
    new = np.array([570.0, 285, 85, 10, 50])
    assert verdict.categorical_pvalue(ref, new, share)[0] < 1e-6
    # Between two windows unseen values are just one more column.
    assert verdict.categorical_pvalue(quiet, quiet, None)[0] == pytest.approx(1.0)


@pytest.mark.parametrize("shape", ["normal", "zero_inflated_70", "categorical_50"])
def test_no_drift_flags_a_model_at_most_alpha_of_windows(shape):
    rng = np.random.default_rng(2)
    cols = [Column(shape, 20_000, rng, truth_rows=400_000) for _ in range(6)]
    alpha, windows = 0.05, 300
    for n in (100, 1000):
        for comparison in ("skew", "drift"):
            _, per_model = run_cell(cols, rng, n, comparison, windows, alpha=alpha)
            assert per_model <= alpha + simulation_error(alpha, windows), (n, comparison)


def test_a_half_sigma_shift_is_caught_at_a_thousand():
    rng = np.random.default_rng(3)
    cols = [Column("normal", 20_000, rng, truth_rows=400_000) for _ in range(6)]
    detected, _ = run_cell(cols, rng, 1000, "skew", 100, shifted="mean+0.5sd", alpha=0.01)
    assert detected == 1.0


def test_the_prometheus_rule_holds_alpha_by_simulation():
    # 8 categorical columns of 50 levels, n = 300 against a 20 000-row reference.
    rng = np.random.default_rng(4)
    p = 1.0 / np.arange(1, 51)
    p /= p.sum()
    alpha, columns, n, m, windows = 0.05, 8, 300, 20_000, 2000
    threshold = verdict.fleet_threshold(alpha, columns, 50, n * m / (n + m))
    ref = rng.multinomial(m, p, size=(windows, columns)) / m
    cur = rng.multinomial(n, p, size=(windows, columns)) / n
    linf = np.abs(ref - cur).max(axis=2)
    per_model = (linf > threshold).any(axis=1).mean()
    assert per_model <= alpha
    # ...and it still sees a category moving from 5 % to 15 % at n = 1 000.
    assert verdict.fleet_threshold(alpha, columns, 50, 1000 * m / (1000 + m)) < 0.1
