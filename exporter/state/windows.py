"""Time-bucketed rings of counts: a window is the sum of its buckets.

The ring keeps two windows' worth of buckets (the current window and the previous one, for
drift) plus the bucket being filled. Each named array has a leading bucket axis; integer
counts are kept as int32 per bucket (a bucket is short) and summed in 64-bit; float arrays
keep the dtype asked for.

A ring is the zero/update/merge of the windowed parts of a model (traffic, features,
predictions, outcomes): zero is a new ring, update is ``add`` into a bucket, merge is
``window`` (the buckets of a window summed) or ``merge`` (another ring's buckets added, as
when two shards' states are combined).
"""

from __future__ import annotations

import numpy as np

# Profiles (features, predictions, outcomes) keep at most this many buckets per window: a
# longer window is held in coarser buckets, a whole number of the configured ones. At 24 h
# / 5 min that is 48 buckets of 30 min instead of 288 (6x less memory); the window then
# drops its oldest 30 min at once, so it spans 23.5 to 24 h (docs/scaling.md). New data
# counts at once either way: only expiry is coarser.
MAX_PROFILE_BUCKETS = 60
# Rows written since a ring's kept window sums were last read, kept as they were (below).
MAX_WRITTEN_ROWS = 8


def coarse_group(per_window: int, max_buckets: int) -> int:
    """The smallest whole number of buckets that, as one, leaves at most ``max_buckets``
    per window (a divisor of ``per_window``: windows stay whole)."""
    for group in range(1, per_window + 1):
        if per_window % group == 0 and per_window // group <= max_buckets:
            return group
    return per_window


# Records of a write hit at most 1/SPARSE_RATIO of the bins of the buckets they span: each
# record's cell is added on its own (``BucketRing.add_cells``) instead of whole bucket rows.
SPARSE_RATIO = 4


class BucketClock:
    """Which bucket a timestamp falls in, and which buckets make up a window."""

    def __init__(self, bucket_seconds: float, window_seconds: float):
        self.bucket_seconds = bucket_seconds
        self.per_window = max(1, round(window_seconds / bucket_seconds))

    def current(self, now: float) -> int:
        return int(np.floor(now / self.bucket_seconds))

    def bucket_of(self, timestamps: np.ndarray) -> np.ndarray:
        return np.floor(timestamps / self.bucket_seconds).astype(np.int64)

    def place(
        self, timestamps: np.ndarray, now: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Bucket ids for records at wall-clock ``now``, and (too old, future) masks.

        Records up to one bucket ahead (clock skew) go into the current bucket; records
        further ahead, or older than the ring, are not windowed (the caller counts them).
        """
        current = self.current(now)
        ids = self.bucket_of(timestamps)
        too_old = ids < current - 2 * self.per_window
        future = ids > current + 1
        return np.minimum(ids, current), too_old, future


class BucketRing:
    def __init__(self, clock: BucketClock, shapes: dict[str, tuple], profile: bool = False):
        """``profile``: a profile's ring, held in at most MAX_PROFILE_BUCKETS buckets per
        window, each a whole number (``group``) of ``clock``'s; ``add`` still takes
        ``clock``'s bucket ids."""
        self.group = coarse_group(clock.per_window, MAX_PROFILE_BUCKETS) if profile else 1
        if self.group > 1:
            clock = BucketClock(
                clock.bucket_seconds * self.group, clock.bucket_seconds * clock.per_window
            )
        self.clock = clock
        self.bucket_seconds = clock.bucket_seconds
        self.per_window = clock.per_window
        self.size = 2 * self.per_window + 1
        self.ids = np.full(self.size, -1, np.int64)
        # Declared arrays are allocated on their first write: a model that never logs a
        # prediction, or never gets a label, holds no window for them (at 24 h / 5 min a
        # window of 1 000 score bins is megabytes).
        self.shapes: dict[str, tuple] = {}
        for name, (shape, dtype) in shapes.items():
            small = np.int32 if np.dtype(dtype).kind in "iu" else dtype
            self.shapes[name] = ((self.size, *shape), small)
        self.arrays: dict[str, np.ndarray] = {}
        # Bumped by every change of a bucket's contents: statistics over an unchanged ring
        # (and unmoved windows) need not be computed again (ModelState.compute).
        self.mutations = 0
        # Window sums kept as windows slide: (name, back) -> [the window's last bucket id,
        # its sum, slides since it was last summed whole]. Rows written since a sum was
        # brought up to date keep their contents as of then (row -> {name: contents}).
        self._sums: dict[tuple[str, int], list] = {}
        self._written: dict[int, dict[str, np.ndarray]] = {}

    def declared(self, name: str) -> bool:
        return name in self.shapes

    def shape(self, name: str) -> tuple:
        """One bucket's shape of array ``name``."""
        return self.shapes[name][0][1:]

    def _array(self, name: str) -> np.ndarray:
        arr = self.arrays.get(name)
        if arr is None:
            shape, dtype = self.shapes[name]
            arr = self.arrays[name] = np.zeros(shape, dtype)
        return arr

    def slot(self, bucket_id: int) -> int:
        return int(self.slots(np.array([bucket_id], np.int64))[0])

    def slots(self, bucket_ids: np.ndarray) -> np.ndarray:
        """The rows of this ring's (distinct) ``bucket_ids``; a row that held an older
        bucket starts again from zero."""
        rows = bucket_ids % self.size
        held = self.ids[rows]
        if (held != bucket_ids).any():
            stale = rows[(held != bucket_ids) & (held >= 0)]  # a row never used holds zeros
            if stale.size:
                if self._sums or self._written:
                    self._forget(stale)
                for arr in self.arrays.values():
                    arr[stale] = 0
            self.ids[rows] = bucket_ids
        return rows

    def add(self, bucket_id: int, name: str, values: np.ndarray) -> None:
        """Add into the bucket of the caller's clock's ``bucket_id``."""
        rows = self.slots(np.array([int(bucket_id) // self.group]))
        self.mutations += 1
        self._accumulate(name, rows, values[None])

    def add_buckets(self, bucket_ids: np.ndarray, values: dict[str, np.ndarray]) -> None:
        """Add ``values[name][g]`` into the bucket of the caller's clock's ``bucket_ids[g]``
        (sorted, distinct, as ``np.unique`` gives them) for every array at once: a batch's
        rows over the few buckets they span, with one slot lookup per bucket."""
        coarse = np.asarray(bucket_ids, np.int64) // self.group
        if self.group > 1 and len(coarse) > 1:  # several of the clock's buckets in one
            starts = np.flatnonzero(np.r_[True, coarse[1:] != coarse[:-1]])
            coarse = coarse[starts]
            values = {k: np.add.reduceat(v, starts, axis=0) for k, v in values.items()}
        # Distinct slots: the caller's records span at most the ring (older ones are not
        # windowed), so no two buckets of a batch share a slot.
        rows = self.slots(coarse)
        self.mutations += 1
        for name, v in values.items():
            self._accumulate(name, rows, v)

    def add_cells(self, bucket_ids: np.ndarray, cells: dict[str, tuple]) -> None:
        """``add_buckets`` (``bucket_ids`` sorted and distinct, as np.unique gives them) for
        values thinly spread over many buckets: ``cells[name]`` is
        (flat positions in the (len(bucket_ids), *shape) array that ``add_buckets`` would
        take, a position once per record that hits it; each record's value there, or None
        for 1). A write then costs its records, not its buckets times a bucket's size: a
        backfill's few records of a model per read, over an hour of buckets, each bucket's
        row thousands of bins. A caller that knows each record's bucket places its cells
        in the ring itself (``claim``, ``add_at``), without this division."""
        row_of = self.claim(bucket_ids, cells)
        targets: dict = {}  # arrays of one shape given the same positions (counts, sums)
        placed = {}
        for name, (flat, values) in cells.items():
            per = self._array(name)[0].size
            target = targets.get((id(flat), per))
            if target is None:
                bucket, within = np.divmod(flat, per)
                target = targets[id(flat), per] = row_of[bucket] * per + within
            placed[name] = (target, values)
        self.add_at(placed)

    def claim(self, bucket_ids: np.ndarray, names) -> np.ndarray:
        """The ring row of each of ``bucket_ids`` (sorted and distinct, as np.unique gives
        them), ready for ``add_at`` into the arrays ``names``: a row that held an older
        bucket starts again from zero, and the kept sums are told of the write."""
        coarse = np.asarray(bucket_ids, np.int64) // self.group
        if self.group == 1:  # distinct already (the caller's np.unique)
            rows = row_of = self.slots(coarse)
        else:
            distinct, which = np.unique(coarse, return_inverse=True)
            rows = self.slots(distinct)
            row_of = rows[which]  # each of bucket_ids' row
        self.mutations += 1
        for name in names:
            self._keep_before(name, rows)
        return row_of

    def add_at(self, cells: dict[str, tuple]) -> None:
        """``cells[name]``: (flat positions in the ring's array ``name``, in rows ``claim``
        gave, once per record that hits it; each record's value there, or None for 1).
        ``np.add.at`` adds repeated positions in one unbuffered pass (numpy >= 1.25 made it
        ~8x faster than the distinct cells by ``np.unique`` and ``bincount`` it replaced)."""
        for name, (target, values) in cells.items():
            arr = self._array(name)
            # Of the array's own dtype: a value to cast makes add.at ~40x slower.
            add = arr.dtype.type(1) if values is None else values.astype(arr.dtype)
            np.add.at(arr.reshape(-1), target, add)

    def flat(self, name: str) -> np.ndarray:
        """The ring's array ``name`` as one flat view, for a caller that adds into the rows
        ``claim`` gave (as ``add_at`` does)."""
        return self._array(name).reshape(-1)

    def _accumulate(self, name: str, rows: np.ndarray, values: np.ndarray) -> None:
        arr = self._array(name)
        self._keep_before(name, rows)
        arr[rows] += values.astype(arr.dtype)

    def _keep_before(self, name: str, rows: np.ndarray) -> None:
        arr = self._array(name)
        if self._sums:
            # A row's contents before its first write since the sums were brought up to
            # date: what they hold of it (one copy per row and pass, not one per batch).
            # Live traffic writes a row or two between passes; a backfill that writes
            # many drops the kept sums instead (summed whole next time): memory stays
            # within MAX_WRITTEN_ROWS rows a ring.
            if len(self._written) + len(rows) > MAX_WRITTEN_ROWS:
                self._sums.clear()
                self._written.clear()
            for row in rows.tolist() if self._sums else ():
                before = self._written.setdefault(row, {})
                if name not in before:
                    before[name] = arr[row].copy()

    # --- window sums, kept --------------------------------------------------------------

    def _settle(self, name: str) -> None:
        """Bring the kept sums of ``name`` up to date with the rows written since."""
        kept = [k for (n, _), k in self._sums.items() if n == name]
        arr = self.arrays.get(name)
        for row, before in self._written.items():
            old = before.pop(name, None)
            if old is None or arr is None:
                continue
            bucket = self.ids[row]
            for end, total, _ in kept:
                if end - self.per_window < bucket <= end:
                    total += arr[row].astype(total.dtype) - old.astype(total.dtype)
        if not any(self._written.values()):
            self._written.clear()

    def _forget(self, rows: np.ndarray) -> None:
        """Take rows about to be zeroed (their bucket leaves the ring) out of the kept sums:
        what the sums hold of a row (its contents before any write not yet settled)."""
        for row in rows.tolist():
            before = self._written.pop(row, {})
            bucket = self.ids[row]
            for (name, _), (end, total, _) in self._sums.items():
                if name in self.arrays and end - self.per_window < bucket <= end:
                    held = before.get(name, self.arrays[name][row])
                    total -= held.astype(total.dtype)

    def _sum(self, arr: np.ndarray, after: int, upto: int, wide) -> np.ndarray:
        """Sum of the rows of buckets ``after < id <= upto``."""
        return arr[self._between(after, upto)].sum(axis=0, dtype=wide)

    def _between(self, after: int, upto: int) -> np.ndarray:
        return (self.ids > after) & (self.ids <= upto)

    def _mask(self, now: float, back: int) -> np.ndarray:
        current = self.clock.current(now) - back * self.per_window
        return self._between(current - self.per_window, current)

    def window(self, name: str, now: float, back: int = 0) -> np.ndarray:
        """Sum over the window ending at ``now`` (``back``=1: the window before it)."""
        shape, dtype = self.shapes[name]
        wide = np.int64 if np.dtype(dtype).kind in "iu" else np.float64
        arr = self.arrays.get(name)
        if arr is None:
            return np.zeros(shape[1:], wide)
        # Summed whole once, then kept: the rows written since are brought in by what they
        # gained, and a window that moves on adds the buckets it takes in and subtracts
        # those it leaves (at 100 models x 100 features, summing 60 buckets of every window
        # was a third of a statistics pass). Summed whole again after a window's worth of
        # moves, so float rounding (float32 buckets, float64 sums) cannot build up.
        self._settle(name)
        end = self.clock.current(now) - back * self.per_window
        pw = self.per_window
        kept = self._sums.get((name, back))
        if kept is not None and kept[0] != end:
            moved = end - kept[0]
            if moved > 0 and kept[2] + moved < pw:
                kept[1] += self._sum(arr, kept[0], end, wide)
                kept[1] -= self._sum(arr, kept[0] - pw, end - pw, wide)
                kept[0], kept[2] = end, kept[2] + moved
            else:
                kept = None
        if kept is None:
            kept = self._sums[(name, back)] = [end, self._sum(arr, end - pw, end, wide), 0]
        return kept[1].copy()

    def per_bucket(self, name: str, now: float) -> dict[int, np.ndarray]:
        """The current window's buckets of ``name`` by bucket id (those that hold data)."""
        rows = np.flatnonzero(self._mask(now, 0))
        arr = self._array(name)
        return {int(self.ids[k]): arr[k] for k in rows}

    def bucket_totals(self, name: str, now: float) -> tuple[np.ndarray, np.ndarray]:
        """The current window's bucket ids that hold ``name``, and each one's total."""
        rows = np.flatnonzero(self._mask(now, 0))
        arr = self._array(name)
        totals = arr[rows].reshape(len(rows), -1).sum(axis=1, dtype=np.int64) if rows.size else rows
        return self.ids[rows], totals

    def merge(self, other: BucketRing) -> None:
        """Add ``other``'s buckets (same clock and arrays) into this ring, bucket by bucket.

        Buckets older than this ring keeps are dropped, as ``add`` would drop them."""
        self.mutations += 1
        self._sums.clear()  # summed whole next time
        self._written.clear()
        newest = max(int(self.ids.max()), int(other.ids.max()))
        for k, bucket_id in enumerate(other.ids):
            if bucket_id < 0 or bucket_id <= newest - self.size:
                continue
            i = self.slot(int(bucket_id))
            for name, arr in other.arrays.items():
                self._array(name)[i] += arr[k]

    def clear_row(self, name: str, index: int) -> None:
        """Zero one row of an array in every bucket (a freed version slot)."""
        if name in self.arrays:
            self.arrays[name][:, index] = 0
            self.mutations += 1
            for (kept_name, _), kept in self._sums.items():
                if kept_name == name:
                    kept[1][index] = 0
            for before in self._written.values():
                if name in before:
                    before[name][index] = 0
