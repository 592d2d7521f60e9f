"""Merge law: profile(A ∪ B) == profile(A) + profile(B), for any split of any rows."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from exporter.state.profiles import (
    CategoricalSpec,
    ColumnSpecs,
    NumericSpec,
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
