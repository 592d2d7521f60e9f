"""Merge law: profile(A ∪ B) == profile(A) + profile(B), for any split of any rows."""

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from exporter.state.profiles import (
    MALFORMED,
    CategoricalSpec,
    ColumnSpecs,
    NumericSpec,
    bin_numeric,
    canonical_category,
    categorical_status,
    numeric_status,
    numeric_status_counts,
    profile_rows,
    status_counts,
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


@pytest.mark.parametrize("seconds", [600, 7200])  # 7200 s: a ring of 2-minute buckets
def test_a_batch_over_several_buckets_lands_in_each_as_numpy_counts_it(seconds):
    """A batch is binned once for all the time buckets it spans (FeatureWindow.add): each
    bucket of the ring must hold exactly its own rows' counts and sums, per column, as
    numpy's searchsorted and bincount give them for that bucket's rows alone; where the
    ring holds coarser buckets (long windows), the rows of the buckets each one covers."""
    from exporter.state.feature_window import FeatureWindow
    from exporter.state.windows import BucketClock

    rng = np.random.default_rng(5)
    n = 500
    numeric = rng.normal(size=(n, 2)) * [1, 3]
    numeric[rng.random((n, 2)) < 0.1] = np.nan
    codes = rng.integers(-1, SPECS.categorical_width, (n, 1))
    buckets = rng.choice([8, 9, 10, 13], n)  # not in order, a gap; 8 and 9 share a 2-min bucket
    window = FeatureWindow(BucketClock(60, seconds), SPECS, ["a", "b"], ["c"], 0.1)
    window.add(buckets, numeric, codes)
    ring = window.ring
    held = buckets // ring.group
    assert ring.group == (1 if seconds == 600 else 2)
    for bucket in np.unique(held):
        mine = held == bucket
        slot = int(np.flatnonzero(ring.ids == bucket)[0])
        for j, spec in enumerate(SPECS.numeric):
            x = numeric[mine, j]
            x = x[~np.isnan(x)]
            bins = np.searchsorted(spec.edges, x, side="right")
            want = np.bincount(bins, minlength=SPECS.numeric_width)
            np.testing.assert_array_equal(ring.arrays["num"][slot, j], want)
            sums = np.bincount(bins, weights=x, minlength=SPECS.numeric_width)
            np.testing.assert_allclose(ring.arrays["num_sums"][slot, j], sums, rtol=1e-6)
        c = codes[mine, 0]
        want = np.bincount(c[c >= 0], minlength=SPECS.categorical_width)
        np.testing.assert_array_equal(ring.arrays["cat"][slot, 0], want)
    assert sorted(int(b) for b in ring.ids if b >= 0) == sorted(set(held.tolist()))
    valid = ~np.isnan(numeric)
    np.testing.assert_array_equal(window.total_num.sum(axis=1), valid.sum(axis=0))
    np.testing.assert_allclose(window.total_sum, np.nansum(numeric, axis=0))


def test_categorical_counts_and_statuses_are_what_the_codes_give():
    spec = CategoricalSpec.from_counts("c", {"x": 5, "y": 3, "z": 1}, 2, True)
    specs = ColumnSpecs((), (spec,))
    values = ["x", "y", "z", "new", None, "x", None, "brand-new", "y", "x"]
    codes, status = spec.codes(values)
    for array in (pa.array(values), pa.array(values).dictionary_encode()):
        counts = spec.counts_array(array)
        assert counts.tolist() == np.bincount(codes[codes >= 0], minlength=spec.bins).tolist()
        assert (
            categorical_status(specs, counts[None], len(values)).tolist()
            == status_counts(status[:, None]).tolist()
        )


@settings(max_examples=200, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(0, 40), st.just(2)),
        elements=st.one_of(st.floats(-20, 20), st.just(np.nan), st.just(np.inf), st.just(-np.inf)),
    ),
    st.sampled_from([0.0, 0.5]),
    st.randoms(use_true_random=False),
)
def test_numeric_status_counts_are_the_statuses_counted(values, margin, rng):
    """The column sums of each status's mask equal the statuses counted one by one
    (values far outside the reference, at its edges, NaN and ±inf; with a margin), with
    and without values marked malformed (MALFORMED whatever else they are)."""
    want = status_counts(numeric_status(SPECS, values, margin))
    np.testing.assert_array_equal(numeric_status_counts(SPECS, values, margin), want)
    malformed = np.array([rng.random() < 0.3 for _ in range(values.size)], bool)
    malformed = malformed.reshape(values.shape)
    status = numeric_status(SPECS, values, margin)
    status[malformed] = MALFORMED
    got = numeric_status_counts(SPECS, values, margin, malformed)
    np.testing.assert_array_equal(got, status_counts(status))
