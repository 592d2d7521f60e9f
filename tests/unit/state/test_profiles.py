"""Merge law: profile(A ∪ B) == profile(A) + profile(B), for any split of any rows."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from exporter.state.profiles import (
    CategoricalSpec,
    ColumnSpecs,
    NumericSpec,
    bin_numeric,
    canonical_category,
    profile_rows,
)

REF = np.random.default_rng(0).normal(size=1000)
SPECS = ColumnSpecs(
    (
        NumericSpec.from_sample("a", REF, REF.min(), REF.max(), REF.std()),
        NumericSpec.from_sample("b", REF * 3, REF.min() * 3, REF.max() * 3, REF.std() * 3),
    ),
    (CategoricalSpec.from_counts("c", {"x": 5, "y": 3, "z": 1}, 2, True),),
)

values = arrays(
    np.float64,
    st.tuples(st.integers(0, 60), st.just(2)),
    elements=st.one_of(st.floats(-10, 10), st.just(np.nan)),
)


@settings(max_examples=200, deadline=None)
@given(
    rows=values,
    split=st.integers(0, 60),
    cats=st.lists(st.sampled_from(["x", "y", "z", "new", None]), min_size=60, max_size=60),
)
def test_merge_law(rows, split, cats):
    split = min(split, len(rows))
    codes = SPECS.categorical[0].codes(cats[: len(rows)])[0][:, None]
    whole = profile_rows(SPECS, rows, codes)
    parts = profile_rows(SPECS, rows[:split], codes[:split]) + profile_rows(
        SPECS, rows[split:], codes[split:]
    )
    assert whole == parts
    assert whole.numeric[0].sum() == np.count_nonzero(~np.isnan(rows[:, 0]))


def test_canonical_categories_match_between_json_and_parquet():
    assert [canonical_category(v) for v in (True, 1, 1.0, 2.5, "DE", None)] == [
        "true",
        "1",
        "1",
        "2.5",
        "DE",
        None,
    ]


# Columns of every shape a reference gives: smooth, heavy-tailed, few distinct values, one
# value only (no lookup table: a binary search), and integers.
RNG = np.random.default_rng(1)
MIXED = ColumnSpecs(
    tuple(
        NumericSpec.from_sample(f"f{j}", s, float(s.min()), float(s.max()), float(s.std()) or 1.0)
        for j, s in enumerate(
            [
                RNG.normal(size=2000),
                RNG.standard_cauchy(2000),
                RNG.integers(0, 3, 2000).astype(float),
                np.full(2000, 7.0),
                RNG.integers(-50, 50, 2000).astype(float) * 1e6,
            ]
        )
    )
)
cells = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 1.0, 2.0, 7.0, -7.0, 1e6, 5e7]),
)


@settings(max_examples=300, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(0, 40), st.just(5)), elements=cells))
def test_every_column_binned_at_once_equals_searchsorted_per_column(values):
    counts, sums = bin_numeric(MIXED, values)
    for j, spec in enumerate(MIXED.numeric):
        col = values[:, j][~np.isnan(values[:, j])]
        idx = np.searchsorted(spec.edges, col, side="right")
        want = np.bincount(idx, minlength=MIXED.numeric_width)
        assert counts[j].tolist() == want.tolist(), spec.name
        with np.errstate(invalid="ignore"):
            want_sums = np.bincount(idx, weights=col, minlength=MIXED.numeric_width)
        np.testing.assert_array_equal(sums[j], want_sums)


def test_values_far_past_the_edges_land_in_the_end_bins():
    """The lookup's cell number was cast from a float that overflows int64 for a value like
    1e25 (a valid JSON number): it landed in bin 2, not the top bin."""
    spec = SPECS.numeric[0]
    x = np.array([1e25, 1e300, np.inf, -1e25, -np.inf, 0.0])
    want = np.searchsorted(spec.edges, x, side="right")
    assert spec.bin_index(x).tolist() == want.tolist()
    assert (
        bin_numeric(ColumnSpecs((spec,)), x[:, None])[0][0].tolist()
        == np.bincount(want, minlength=spec.bins).tolist()
    )
