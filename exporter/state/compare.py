"""Every method for every column of two profiles over the same specs."""

from __future__ import annotations

import numpy as np

from exporter.state.profiles import ColumnSpecs, NumericSpec, Profile
from exporter.stats import batch, drift, verdict


def column_scores(spec, base, current, minimum: int) -> dict[str, float]:
    """All methods for one column, or nothing if either side has fewer than ``minimum``."""
    if base is None:
        return {}
    if isinstance(spec, NumericSpec):
        if current.counts.sum() < minimum or base.counts.sum() < minimum:
            return {}
        return drift.numeric_scores(
            spec.edges, spec.groups, spec.psi_bins, spec.scale, base, current
        )
    if current.sum() < minimum or base.sum() < minimum:
        return {}
    return drift.categorical_scores(base, current)


def column_compare(
    spec, base, current, minimum: int, *, reference: bool
) -> tuple[dict[str, float], tuple[float, float] | None]:
    """One column's distances and its verdict test (p-value, effect; stats/verdict.py), or
    ({}, None) if either side has fewer than ``minimum`` values. ``reference``: ``base`` is
    the training reference (not another window), so unseen categories are tested against
    its long tail. The KS statistic of the distances is the test's."""
    scores = column_scores(spec, base, current, minimum)
    if not scores:
        return scores, None
    if isinstance(spec, NumericSpec):
        ref_coarse = drift.regroup(base.counts, spec.groups, spec.psi_bins)
        cur_coarse = drift.regroup(current.counts, spec.groups, spec.psi_bins)
        return scores, verdict.numeric_pvalue(scores["ks"], ref_coarse, cur_coarse)
    share = spec.new_value_share if reference else None
    return scores, verdict.categorical_pvalue(base, current, share)


def numeric_counts(profile: Profile, j: int, spec: NumericSpec) -> drift.NumericCounts:
    return drift.NumericCounts(profile.numeric[j, : spec.bins], profile.sums[j, : spec.bins])


def _columns(specs: ColumnSpecs, base: Profile, current: Profile, skip=()):
    """(spec, base counts, current counts) of every column of ``specs`` (of a column named
    in ``skip``: (spec, None, None))."""
    for j, spec in enumerate(specs.numeric):
        if spec.name in skip:
            yield spec, None, None
            continue
        yield spec, numeric_counts(base, j, spec), numeric_counts(current, j, spec)
    for j, spec in enumerate(specs.categorical):
        if spec.name in skip:
            yield spec, None, None
            continue
        yield spec, base.categorical[j, : spec.bins], current.categorical[j, : spec.bins]


def profile_scores(specs: ColumnSpecs, base: Profile, current: Profile, minimum: int) -> dict:
    """{(column, method): value} for every column of ``specs``."""
    out = {}
    for spec, b, c in _columns(specs, base, current):
        for method, value in column_scores(spec, b, c, minimum).items():
            out[(spec.name, method)] = value
    return out


class _Batch:
    """Columns computed together: per column (in the specs' order) its name, its value of
    each of ``methods`` and its test; ``short``: columns with too few values (no scores)."""

    def __init__(self, names, methods, columns, tests, short):
        self.names, self.methods, self.columns, self.tests = names, methods, columns, tests
        self.short = short

    @classmethod
    def empty(cls) -> _Batch:
        return cls([], [], [], [], [])

    def covers(self) -> set[str]:
        return {*self.names, *self.short}

    def add_to(self, scores: dict, tests: dict) -> None:
        """Into ``scores`` and ``tests`` as profile_compare gives them, without a dict per
        column: at 100 models × 100 features that was a fifth of a statistics pass's Python."""
        methods = self.methods
        scores.update(
            {
                (name, method): value
                for name, values in zip(self.names, self.columns, strict=True)
                for method, value in zip(methods, values, strict=True)
            }
        )
        tests.update(zip(self.names, self.tests, strict=True))

    def by_column(self) -> dict:
        """{column: (scores, test)}, a short column's ({}, None)."""
        out = {name: ({}, None) for name in self.short}
        for name, values, test in zip(self.names, self.columns, self.tests, strict=True):
            out[name] = (dict(zip(self.methods, values, strict=True)), test)
        return out


def profile_compare(
    specs: ColumnSpecs, base: Profile, current: Profile, minimum: int, *, reference: bool
) -> tuple[dict, dict]:
    """({(column, method): value}, {column: (p-value, effect)}) for every column of
    ``specs`` with enough values (see ``column_compare``), in the specs' order. Numeric
    columns on the full number of bins are computed together (stats/batch.py), the rest
    one by one."""
    numeric = _numeric_together(specs, base, current, minimum)
    categorical = _categorical_together(specs, base, current, minimum, reference)
    scores, tests = {}, {}
    together = numeric.covers() | categorical.covers()
    if len(together) == len(specs.numeric) + len(specs.categorical):
        # Every column in a batch (the usual case): the batches are in the specs' order.
        numeric.add_to(scores, tests)
        categorical.add_to(scores, tests)
        return scores, tests
    computed = numeric.by_column() | categorical.by_column()
    for spec, b, c in _columns(specs, base, current, skip=computed):
        if spec.name in computed:
            column, test = computed[spec.name]
        else:
            column, test = column_compare(spec, b, c, minimum, reference=reference)
        for method, value in column.items():
            scores[(spec.name, method)] = value
        if test is not None:
            tests[spec.name] = test
    return scores, tests


def _numeric_together(specs: ColumnSpecs, base: Profile, current: Profile, minimum: int):
    """The numeric columns on ``numeric_width`` bins that share the most common number of
    decile bins (``ColumnSpecs.numeric_batch``), computed together; a column short of
    ``minimum`` values gets nothing, as from ``column_compare``."""
    rows, n_groups, edges, groups, scales = specs.numeric_batch
    if not len(rows):
        return _Batch.empty()
    width = specs.numeric_width
    pick = _view(rows)
    ref_counts, cur_counts = base.numeric[pick, :width], current.numeric[pick, :width]
    enough = (ref_counts.sum(axis=1) >= minimum) & (cur_counts.sum(axis=1) >= minimum)
    names = [specs.numeric[j].name for j in rows.tolist()]
    short = [name for name, ok in zip(names, enough.tolist(), strict=True) if not ok]
    if not enough.any():
        return _Batch([], [], [], [], short)
    if not enough.all():
        rows, edges, groups, scales = rows[enough], edges[enough], groups[enough], scales[enough]
        pick = rows
        ref_counts, cur_counts = ref_counts[enough], cur_counts[enough]
        names = [name for name, ok in zip(names, enough.tolist(), strict=True) if ok]
    found, pvalues, effects = batch.numeric_compare(
        edges,
        groups,
        n_groups,
        scales,
        ref_counts,
        base.sums[pick, :width],
        cur_counts,
        current.sums[pick, :width],
    )
    columns = list(zip(*(values.tolist() for values in found.values()), strict=True))
    tests = list(zip(pvalues.tolist(), effects.tolist(), strict=True))
    return _Batch(names, list(found), columns, tests, short)


def _view(rows: np.ndarray) -> np.ndarray | slice:
    """``rows`` as a slice where they are consecutive (the usual case: every numeric column
    in the batch), so that the windows' arrays are read in place, not copied."""
    if len(rows) and rows[-1] - rows[0] == len(rows) - 1:
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows


def _categorical_together(
    specs: ColumnSpecs, base: Profile, current: Profile, minimum: int, reference: bool
):
    """The categorical columns computed together (stats/batch.py; bins past a column's own
    are empty on both sides); a column short of ``minimum`` values gets nothing."""
    cats = specs.categorical
    if len(cats) < 2:
        return _Batch.empty()
    ref, cur = base.categorical[:, : specs.categorical_width], current.categorical
    cur = cur[:, : specs.categorical_width]
    enough = (ref.sum(axis=1) >= minimum) & (cur.sum(axis=1) >= minimum)
    short = [s.name for s, ok in zip(cats, enough.tolist(), strict=True) if not ok]
    rows = np.flatnonzero(enough)
    if not len(rows):
        return _Batch([], [], [], [], short)
    found = batch.categorical_scores(ref[rows], cur[rows])
    share = np.array([cats[j].new_value_share for j in rows]) if reference else None
    bins = np.array([cats[j].bins for j in rows])
    pvalues, effects = batch.categorical_pvalue(ref[rows], cur[rows], bins, share)
    columns = list(zip(*(values.tolist() for values in found.values()), strict=True))
    tests = list(zip(pvalues.tolist(), effects.tolist(), strict=True))
    return _Batch([cats[j].name for j in rows.tolist()], list(found), columns, tests, short)
