"""Each distance, computed from profiles, against an independent computation on raw data."""

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from exporter.state.profiles import (
    CategoricalSpec,
    ColumnSpecs,
    NumericSpec,
    Profile,
    profile_rows,
)
from exporter.stats import drift
from exporter.stats.drift import NumericCounts

N = 50_000
SHIFTS = {"identical": 0.0, "slight": 0.1, "strong": 1.0}


def numeric_case(shift: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    ref = rng.normal(10, 2, N)
    cur = rng.normal(10 + shift * 2, 2, N)
    spec = NumericSpec.from_sample("x", ref, ref.min(), ref.max(), ref.std())
    specs = ColumnSpecs((spec,))
    empty = np.empty((N, 0), np.int64)
    p_ref = profile_rows(specs, ref[:, None], empty)
    p_cur = profile_rows(specs, cur[:, None], empty)
    counts = lambda p: NumericCounts(p.numeric[0, : spec.bins], p.sums[0, : spec.bins])  # noqa: E731
    return ref, cur, spec, counts(p_ref), counts(p_cur)


def numpy_psi(ref, cur, edges, eps=1e-4):
    p = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1) / len(ref)
    q = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1) / len(cur)
    p, q = np.maximum(p, eps), np.maximum(q, eps)
    return np.sum((q - p) * np.log(q / p))


@pytest.mark.parametrize("case", SHIFTS)
def test_numeric_psi_matches_numpy_deciles(case):
    ref, cur, spec, r, c = numeric_case(SHIFTS[case])
    assert len(spec.psi_edges) == 9  # ten decile bins
    ours = drift.psi(
        drift.regroup(r.counts, spec.groups, spec.psi_bins),
        drift.regroup(c.counts, spec.groups, spec.psi_bins),
    )
    assert ours == pytest.approx(numpy_psi(ref, cur, spec.psi_edges), abs=1e-9)


@pytest.mark.parametrize("case", SHIFTS)
def test_numeric_js_matches_scipy_on_decile_histograms(case):
    ref, cur, spec, r, c = numeric_case(SHIFTS[case])
    bins = np.concatenate([[-np.inf], spec.psi_edges, [np.inf]])
    h_ref, _ = np.histogram(ref, bins)
    h_cur, _ = np.histogram(cur, bins)
    expected = jensenshannon(h_ref / h_ref.sum(), h_cur / h_cur.sum(), base=2)
    scores = drift.numeric_scores(spec.edges, spec.groups, spec.psi_bins, spec.scale, r, c)
    assert scores["js"] == pytest.approx(expected, abs=1e-9)


def test_fine_bin_js_matches_scipy_too():
    ref, cur, spec, r, c = numeric_case(0.1)
    bins = np.concatenate([[-np.inf], spec.edges, [np.inf]])
    h_ref, _ = np.histogram(ref, bins)
    h_cur, _ = np.histogram(cur, bins)
    expected = jensenshannon(h_ref / h_ref.sum(), h_cur / h_cur.sum(), base=2)
    assert drift.js_distance(r.counts, c.counts) == pytest.approx(expected, abs=1e-9)


def test_small_unshifted_samples_stay_under_default_thresholds():
    """Why PSI and JS use decile bins: 500 values from the reference distribution."""
    rng = np.random.default_rng(9)
    ref = rng.normal(size=50_000)
    spec = NumericSpec.from_sample("x", ref, ref.min(), ref.max(), ref.std())
    specs = ColumnSpecs((spec,))
    worst = {m: 0.0 for m in drift.NUMERIC_METHODS}
    ref_prof = profile_rows(specs, ref[:, None], np.empty((len(ref), 0), np.int64))
    r = NumericCounts(ref_prof.numeric[0, : spec.bins], ref_prof.sums[0, : spec.bins])
    for _ in range(20):
        cur = rng.normal(size=500)
        p = profile_rows(specs, cur[:, None], np.empty((500, 0), np.int64))
        c = NumericCounts(p.numeric[0, : spec.bins], p.sums[0, : spec.bins])
        for m, v in drift.numeric_scores(
            spec.edges, spec.groups, spec.psi_bins, spec.scale, r, c
        ).items():
            worst[m] = max(worst[m], v)
    for m, v in worst.items():
        assert v < drift.METHODS[m].default_threshold, (m, v)


@pytest.mark.parametrize("case", SHIFTS)
def test_numeric_ks_within_one_bin_mass_of_scipy(case):
    ref, cur, spec, r, c = numeric_case(SHIFTS[case])
    expected = stats.ks_2samp(ref, cur).statistic
    # Exact at bin edges; inside a bin off by at most the largest bin mass of either side.
    tol = max((r.counts / r.counts.sum()).max(), (c.counts / c.counts.sum()).max())
    assert abs(drift.ks_statistic(spec.edges, r, c) - expected) <= tol


@pytest.mark.parametrize("case", SHIFTS)
def test_numeric_wasserstein_matches_scipy(case):
    ref, cur, spec, r, c = numeric_case(SHIFTS[case])
    expected = stats.wasserstein_distance(ref, cur) / ref.std()
    ours = drift.wasserstein(spec.edges, r, c, spec.scale)
    # Exact but for the bins where the two CDFs cross: 0.2 % of a std.
    assert ours == pytest.approx(expected, abs=0.002)


def test_numeric_scores_order_identical_slight_strong():
    scores = {}
    for case, shift in SHIFTS.items():
        _ref, _cur, spec, r, c = numeric_case(shift)
        scores[case] = drift.numeric_scores(
            spec.edges, spec.groups, spec.psi_bins, spec.scale, r, c
        )
    for method in drift.NUMERIC_METHODS:
        assert scores["identical"][method] < scores["slight"][method] < scores["strong"][method]
        assert scores["identical"][method] < drift.METHODS[method].default_threshold
        assert scores["strong"][method] > drift.METHODS[method].default_threshold


CATS = [f"c{i}" for i in range(20)]


def categorical_case(case: str, seed: int = 1):
    rng = np.random.default_rng(seed)
    p = np.geomspace(1, 0.05, len(CATS))
    p /= p.sum()
    ref = rng.choice(CATS, N, p=p)
    if case == "identical":
        cur = rng.choice(CATS, N, p=p)
    elif case == "slight":
        q = p * np.linspace(0.9, 1.1, len(CATS))
        cur = rng.choice(CATS, N, p=q / q.sum())
    else:
        cur = rng.choice([*CATS, "new1", "new2"], N, p=np.r_[p[::-1] * 0.9, 0.05, 0.05])
    values, counts = np.unique(ref, return_counts=True)
    spec = CategoricalSpec.from_counts(
        "c", dict(zip(values.tolist(), counts.tolist(), strict=False)), 10, True
    )
    specs = ColumnSpecs((), (spec,))
    prof = lambda x: profile_rows(specs, np.empty((N, 0)), spec.codes(x.tolist())[0][:, None])  # noqa: E731
    return ref, cur, spec, prof(ref).categorical[0], prof(cur).categorical[0]


def raw_bins(x, spec):
    """Independent binning: top-10 values, then other (in reference), then unseen."""
    top = list(spec.values)
    out = np.zeros(len(top) + 2)
    for v, n in zip(*np.unique(x, return_counts=True), strict=True):
        out[top.index(v) if v in top else len(top) if v in CATS else len(top) + 1] += n
    return out


@pytest.mark.parametrize("case", SHIFTS)
def test_categorical_methods_match_raw_computation(case):
    ref, cur, spec, r, c = categorical_case(case)
    rb, cb = raw_bins(ref, spec), raw_bins(cur, spec)
    assert r.tolist() == rb.tolist() and c.tolist() == cb.tolist()
    p, q = rb / rb.sum(), cb / cb.sum()
    assert drift.psi(r, c) == pytest.approx(
        np.sum(
            (np.maximum(q, 1e-4) - np.maximum(p, 1e-4))
            * np.log(np.maximum(q, 1e-4) / np.maximum(p, 1e-4))
        ),
        abs=1e-9,
    )
    assert drift.js_distance(r, c) == pytest.approx(jensenshannon(p, q, base=2), abs=1e-9)
    assert drift.linf(r, c) == pytest.approx(np.abs(p - q).max(), abs=1e-12)
    # Two-sample chi-squared test of independence, as scipy computes it.
    table = np.vstack([rb, cb])
    table = table[:, table.sum(axis=0) > 0]
    pvalue = stats.chi2_contingency(table, correction=False).pvalue
    assert drift.chi2_pvalue(r, c) == pytest.approx(pvalue, rel=1e-9, abs=1e-300)


def test_categorical_unseen_and_other_bins():
    _ref, cur, spec, r, c = categorical_case("strong")
    assert r[-1] == 0 and c[-1] == (np.isin(cur, ["new1", "new2"])).sum()
    assert c[-2] == np.isin(cur, [v for v in CATS if v not in spec.values]).sum()


def test_chi2_pvalue_is_not_fooled_by_high_cardinality_at_large_n():
    # Unchanged distribution over many categories: a two-sample test does not flag it.
    rng = np.random.default_rng(5)
    p = rng.dirichlet(np.ones(500))
    ref = rng.multinomial(1_000_000, p)
    cur = rng.multinomial(1_000_000, p)
    assert drift.chi2_pvalue(ref, cur) > 0.001


def test_empty_profiles_do_not_crash():
    zero = np.zeros(12)
    assert drift.psi(zero, zero) == 0.0
    assert drift.js_distance(zero, zero) == 0.0
    assert drift.chi2_pvalue(zero, zero) == 1.0
    spec_counts = NumericCounts(np.zeros(5), np.zeros(5))
    assert drift.wasserstein(np.arange(4.0), spec_counts, spec_counts, 1.0) == 0.0
    assert Profile.zeros(ColumnSpecs()).samples() == 0


def test_the_registry_is_exported_for_rules_to_select_by_direction():
    from exporter.app import Exporter
    from exporter.config import parse_config
    from exporter.stats.drift import METHODS

    e = Exporter(parse_config({}))
    for name, m in METHODS.items():
        direction = "higher_is_worse" if m.higher_is_worse else "lower_is_worse"
        kinds = ",".join(sorted(m.kinds))
        got = e.registry.get_sample_value(
            "mlpipe_drift_method_info", {"method": name, "direction": direction, "kinds": kinds}
        )
        assert got == 1.0
