"""The numeric methods computed for many columns at once (stats/batch.py, what a model's
statistics pass uses) equal the one-column definitions (stats/drift.py, stats/verdict.py,
themselves checked against scipy) on every kind of window: large, small enough for the
chi-squared test to pool sparse bins, empty, shifted, and beside columns on fewer bins."""

import numpy as np
import pytest

from exporter.state.compare import _columns, column_compare, profile_compare
from exporter.state.profiles import ColumnSpecs, NumericSpec, Profile, bin_numeric


def specs_and_reference(rng, few_last=False, batched_only=False):
    samples = [
        rng.normal(0, 1, 5000),
        rng.lognormal(2, 1, 5000),
        rng.exponential(3, 5000),
        rng.uniform(-5, 5, 5000),
        rng.integers(0, 4, 5000).astype(float),  # few distinct values: fewer bins
        rng.normal(10, 0.1, 5000),
    ]
    if few_last:  # the batch's columns consecutive: read in place (compare._view), not copied
        samples.append(samples.pop(4))
    if batched_only:  # every column in the batch: its results carried without a loop
        samples.pop(4)
    specs = ColumnSpecs(
        tuple(
            NumericSpec.from_sample(f"f{j}", x, float(x.min()), float(x.max()), float(x.std()))
            for j, x in enumerate(samples)
        )
    )
    return specs, samples


def profile_of(specs, values: np.ndarray) -> Profile:
    counts, sums = bin_numeric(specs, values)
    return Profile(counts, sums, np.zeros((0, 0), np.int64))


def assert_in_specs_order(specs, base, cur, scores, tests, reference):
    """Keys as one column at a time gives them: the series' order on /metrics."""
    want_scores, want_tests = [], []
    for spec, b, c in _columns(specs, base, cur):
        column, test = column_compare(spec, b, c, 100, reference=reference)
        want_scores += [(spec.name, method) for method in column]
        want_tests += [spec.name] if test is not None else []
    assert list(scores) == want_scores
    assert list(tests) == want_tests


@pytest.mark.parametrize("n", [0, 30, 120, 400, 5000])
@pytest.mark.parametrize("shift", [0.0, 0.3])
@pytest.mark.parametrize("reference", [True, False])
@pytest.mark.parametrize("layout", ["mixed", "few_last", "batched_only"])
def test_together_equals_one_by_one(n, shift, reference, layout):
    rng = np.random.default_rng(n + int(shift * 10))
    specs, samples = specs_and_reference(
        rng, few_last=layout == "few_last", batched_only=layout == "batched_only"
    )
    batched = len(specs.numeric_batch[0]) == len(specs.numeric)
    assert batched == (layout == "batched_only")  # else some columns go one by one
    base = profile_of(specs, np.column_stack(samples))
    if not reference:
        base = profile_of(specs, np.column_stack([rng.choice(x, 800) for x in samples]))
    current = np.column_stack([rng.choice(x, n) + shift * x.std() for x in samples])
    if n:
        current[rng.random(current.shape) < 0.05] = np.nan  # missing values
    cur = profile_of(specs, current)
    scores, tests = profile_compare(specs, base, cur, 100, reference=reference)
    assert_in_specs_order(specs, base, cur, scores, tests, reference)
    for spec, b, c in _columns(specs, base, cur):
        want, want_test = column_compare(spec, b, c, 100, reference=reference)
        got = {m: scores[(spec.name, m)] for m in want}
        assert set(k for (name, k) in scores if name == spec.name) == set(want)
        for method, value in want.items():
            assert got[method] == pytest.approx(value, rel=1e-9, abs=1e-12), (spec.name, method)
        if want_test is None:
            assert spec.name not in tests
        else:
            assert tests[spec.name] == pytest.approx(want_test, rel=1e-9, abs=1e-300), spec.name


def test_pooled_chi2_equals_one_by_one_on_sparse_tables():
    """Small, lopsided tables: sparse bins pooled into a column of their own, or folded into
    the smallest dense bin, or too few columns left — every branch of the one-column test."""
    from exporter.stats.batch import pooled_chi2_pvalue
    from exporter.stats.verdict import pooled_chi2

    rng = np.random.default_rng(7)
    ref = rng.poisson(rng.choice([0.2, 2, 8, 40], (4000, 10)))
    cur = rng.poisson(rng.choice([0.1, 1, 6, 30], (4000, 10)))
    ref[:50] = 0  # an empty side
    cur[50:60, 1:] = 0  # one column left
    got = pooled_chi2_pvalue(ref, cur)
    want = np.array([pooled_chi2(r, c)[2] for r, c in zip(ref, cur, strict=True)])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-300)
    assert 0.05 < (want < 1).mean() < 1  # the tables cover tests that ran and ones that could not
    # The unseen column (the last) kept apart from a folded pool while another can take it.
    last = np.full(len(ref), ref.shape[1] - 1)
    got = pooled_chi2_pvalue(ref, cur, keep_apart=last)
    want = np.array([pooled_chi2(r, c, keep_apart=9)[2] for r, c in zip(ref, cur, strict=True)])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-300)


def test_pooled_chi2_equals_one_by_one_on_tables_with_nothing_to_pool():
    """Every expected count at least 5 in every row (the batch skips the pooling then), some
    rows with a column empty on both sides: the same p-values as the one-column test. (An
    empty side makes every column sparse: the sparse test covers it.)"""
    from exporter.stats.batch import pooled_chi2_pvalue
    from exporter.stats.verdict import MIN_EXPECTED, pooled_chi2

    rng = np.random.default_rng(8)
    rates = rng.choice([60, 200, 900], (2000, 10))
    ref = rng.poisson(rates)
    cur = rng.poisson(np.where(np.arange(2000)[:, None] < 1000, rates, rates[::-1]))
    ref[:20, 3], cur[:20, 3] = 0, 0  # a column empty on both sides
    totals = ref + cur
    n_ref, n_cur = ref.sum(axis=1, keepdims=True), cur.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = totals * np.minimum(n_ref, n_cur) / (n_ref + n_cur)
    assert not ((totals > 0) & (expected < MIN_EXPECTED)).any()  # nothing sparse anywhere
    got = pooled_chi2_pvalue(ref, cur)
    want = np.array([pooled_chi2(r, c)[2] for r, c in zip(ref, cur, strict=True)])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-300)
    assert 0 < (want < 0.05).mean() < 1  # drifted rows and rows that are not


@pytest.mark.parametrize("n", [0, 150, 2000])
@pytest.mark.parametrize("reference", [True, False])
def test_categorical_together_equals_one_by_one(n, reference):
    from exporter.state.profiles import CategoricalSpec

    rng = np.random.default_rng(n + reference)
    sizes = [1, 3, 10, 40, 2]
    cats = tuple(
        CategoricalSpec.build(f"c{j}", tuple(f"v{i}" for i in range(k)), None, 0.01)
        for j, k in enumerate(sizes)
    )
    specs = ColumnSpecs((), cats)
    width = specs.categorical_width

    def counts(total):
        out = np.zeros((len(cats), width), np.int64)
        for j, spec in enumerate(cats):
            p = rng.dirichlet(np.ones(spec.bins) * 0.7)
            out[j, : spec.bins] = rng.multinomial(total, p)
        if not reference:
            out[:, 0] += rng.integers(0, 3)  # some overlap in sparse bins
        return out

    empty = np.zeros((0, 0))
    base = Profile(empty, empty, counts(5000 if reference else 800))
    cur = Profile(empty, empty, counts(n))
    scores, tests = profile_compare(specs, base, cur, 100, reference=reference)
    assert_in_specs_order(specs, base, cur, scores, tests, reference)
    for spec, b, c in _columns(specs, base, cur):
        want, want_test = column_compare(spec, b, c, 100, reference=reference)
        assert {k for (name, k) in scores if name == spec.name} == set(want)
        for method, value in want.items():
            got = scores[(spec.name, method)]
            assert got == pytest.approx(value, rel=1e-9, abs=1e-12), (spec.name, method)
        if want_test is None:
            assert spec.name not in tests
        else:
            assert tests[spec.name] == pytest.approx(want_test, rel=1e-9, abs=1e-300), spec.name
