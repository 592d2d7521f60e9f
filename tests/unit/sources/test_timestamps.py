"""The one timestamp parser: RFC 3339 strings and epoch numbers, alone or mixed, against
Python's own reading of each value."""

import datetime as dt
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.sources.timestamps import timestamps

_MOMENTS = st.datetimes(
    min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)
)
_VALUES = st.one_of(
    _MOMENTS.map(lambda d: d.isoformat().replace("+00:00", "Z")),
    _MOMENTS.map(lambda d: d.isoformat()),
    st.floats(0, 4e9),
    st.integers(0, 4 * 10**9),
    st.sampled_from(["not a time", "", "2026-13-40T00:00:00Z"]),
)


def _expected(value) -> float:
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return math.nan
    return float(value)


def _one_kind(values: list) -> list:
    """The strings of ``values``, or its numbers if it has no string."""
    strings = [v for v in values if isinstance(v, str)]
    return strings or [v for v in values if not isinstance(v, str)]


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.lists(_VALUES, max_size=30), st.lists(_VALUES, max_size=30).map(_one_kind)))
def test_each_value_reads_as_python_reads_it(values):
    """Lists of strings only, of numbers only (a source's usual batch) and mixed ones."""
    seconds, ok = timestamps(values)
    want = np.array([_expected(v) for v in values], dtype=float)
    np.testing.assert_allclose(seconds, want, rtol=0, atol=1e-6)
    assert ok.tolist() == np.isfinite(want).tolist()
