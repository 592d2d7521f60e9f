"""A model's feature values: data-quality status counts (since start) and, against the
reference's bins, the windowed binned profile that skew and drift are computed from."""

from __future__ import annotations

import numpy as np

from exporter.state.profiles import (
    MALFORMED,
    MISSING,
    SCATTER_COMPILED,
    STATUSES,
    VALID,
    ColumnSpecs,
    Profile,
    categorical_cells,
    categorical_cells_at,
    cell_array,
    numeric_cells,
    numeric_cells_at,
    numeric_status_counts,
    scatter_numeric_at,
    status_counts,
)
from exporter.state.windows import SPARSE_RATIO, BucketClock, BucketRing


class FeatureWindow:
    """Zero: a new window; update: ``count_statuses`` then ``add``; merge: ``merge`` or
    ``profile`` (a window's buckets summed)."""

    def __init__(
        self,
        clock: BucketClock,
        specs: ColumnSpecs | None,
        numeric: list[str],
        categorical: list[str],
        out_of_range_margin: float,
    ):
        self.specs = specs
        self.numeric, self.categorical = numeric, categorical
        self.margin = out_of_range_margin
        # Values by data-quality status, (feature, status), numeric features first.
        self.status = np.zeros((len(numeric) + len(categorical), len(STATUSES)), np.int64)
        shapes = {}
        if specs is not None:
            shapes["num"] = ((len(numeric), specs.numeric_width), np.int64)
            # float32 halves the biggest array; W1 from these sums loses ~1e-7 relative.
            shapes["num_sums"] = ((len(numeric), specs.numeric_width), np.float32)
            shapes["cat"] = ((len(categorical), specs.categorical_width), np.int64)
        self.ring = BucketRing(clock, shapes, profile=True)
        # Since start, what the windows counted: the distribution counters (Fleet).
        width = specs.numeric_width if specs is not None else 0
        self.total_num = np.zeros((len(numeric), width), np.int64)
        self.total_sum = np.zeros(len(numeric))
        cat_width = specs.categorical_width if specs is not None else 0
        self.total_cat = np.zeros((len(categorical), cat_width), np.int64)

    @property
    def names(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def count_statuses(self, numeric, num_bad, cat_values, cat_bad) -> np.ndarray:
        """Count each value's status; categorical bin codes (rows, F_cat) if profiled."""
        n_num = len(self.numeric)
        if numeric is not None and numeric.size and self.specs is not None:
            counts = numeric_status_counts(self.specs, numeric, self.margin, num_bad)
            self.status[:n_num] += counts
        elif numeric is not None and numeric.size:
            status = np.where(np.isnan(numeric), MISSING, VALID).astype(np.int8)
            if num_bad is not None:
                status[num_bad] = MALFORMED
            self.status[:n_num] += status_counts(status)
        if not cat_values:
            return np.empty((0, 0), np.int64)
        n = len(cat_values[0])
        codes = np.full((n, len(cat_values)), -1, np.int64)
        status = np.empty((n, len(cat_values)), np.int8)
        for j, values in enumerate(cat_values):
            if self.specs is not None:
                codes[:, j], status[:, j] = self.specs.categorical[j].codes_array(values)
            else:
                status[:, j] = np.where(
                    values.is_null().to_numpy(zero_copy_only=False), MISSING, VALID
                )
        if cat_bad is not None:
            status[cat_bad] = MALFORMED
            codes[cat_bad] = -1
        self.status[n_num:] += status_counts(status)
        return codes

    def add(
        self, buckets: np.ndarray, numeric: np.ndarray, codes: np.ndarray, grouped=None
    ) -> None:
        """Records with their time buckets (rows,): numeric values (rows, F_num),
        categorical codes (rows, F_cat). Binned once, whatever the buckets they span.
        ``grouped``: ``np.unique(buckets, return_inverse=True)``, if the caller has it."""
        if self.specs is None or not len(buckets):
            return
        ids, groups = grouped or np.unique(buckets, return_inverse=True)
        n, specs = len(ids), self.specs
        num_shape = (len(self.numeric), specs.numeric_width)
        cat_shape = (len(self.categorical), specs.categorical_width)
        num_size, cat_size = int(np.prod(num_shape)), int(np.prod(cat_shape))
        nan = np.isnan(numeric)
        cells = nan.size - int(np.count_nonzero(nan)) + int(np.count_nonzero(codes >= 0))
        if cells * SPARSE_RATIO >= n * (num_size + cat_size):
            num_cells, values = numeric_cells(specs, numeric, groups, nan)
            cat_cells = categorical_cells(specs, codes, groups)
            counts = cell_array(num_cells, (n, *num_shape))
            sums = cell_array(num_cells, (n, *num_shape), values)
            cat = cell_array(cat_cells, (n, *cat_shape))
            self.ring.add_buckets(ids, {"num": counts, "num_sums": sums, "cat": cat})
            # Since start, whatever the buckets: the distribution counters, summed from
            # the buckets' cells (fewer than the values here), not binned a second time.
            self.total_num += counts.sum(axis=0)
            self.total_sum += sums.sum(axis=(0, 2))
            self.total_cat += cat.sum(axis=0)
            return
        # A few records over many buckets (a backfill read with many models): the
        # cells they hit, not every bucket's thousands of bins (docs/scaling.md),
        # placed straight in the ring's rows (the arrays' rows are laid out as
        # ``cell_array``'s).
        row_of = self.ring.claim(ids, ("num", "num_sums", "cat"))[groups]
        cat_cells, cat_within = categorical_cells_at(specs, codes, row_of * cat_size)
        self.ring.add_at({"cat": (cat_cells, None)})
        self.total_cat += cell_array(cat_within, cat_shape)
        if not num_size:
            return
        if SCATTER_COMPILED:
            # Binned and added in one compiled pass, the since-start counters with them.
            ring = self.ring
            flat = ring.flat("num"), ring.flat("num_sums"), self.total_num.reshape(-1)
            scatter_numeric_at(specs, numeric, row_of * num_size, *flat, self.total_sum)
            return
        num_cells, num_within, values = numeric_cells_at(specs, numeric, row_of * num_size, nan)
        self.ring.add_at({"num": (num_cells, None), "num_sums": (num_cells, values)})
        # Since start: the distribution counters, from the cells within a bucket.
        self.total_num += cell_array(num_within, num_shape)
        self.total_sum += np.where(nan, 0.0, numeric).sum(axis=0)

    def merge(self, other: FeatureWindow) -> None:
        self.status += other.status
        self.total_num += other.total_num
        self.total_sum += other.total_sum
        self.total_cat += other.total_cat
        self.ring.merge(other.ring)

    def totals(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Since start: numeric fine-bin counts, numeric value sums, categorical counts."""
        return self.total_num, self.total_sum, self.total_cat

    def profile(self, now: float, back: int = 0) -> Profile:
        ring = self.ring
        return Profile(
            ring.window("num", now, back),
            ring.window("num_sums", now, back),
            ring.window("cat", now, back),
        )
