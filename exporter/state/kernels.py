"""Compiled loops that profile a whole column in one pass (numba; the ``fast`` extra).

A Parquet partition's numeric column costs numpy ~17 passes over its values (clip, NaN
mask, lookup cell, gather, correction steps, offsets, two bincounts, status masks); the
loop here reads each value once: its status, its bin and its sum. Without numba (the
extra not installed, or a Spark worker without it) ``AVAILABLE`` is False and callers take
the numpy path, which gives the same counts (tests/unit/state/test_kernels.py).
"""

from __future__ import annotations

import importlib.util
import logging
import threading

import numpy as np

log = logging.getLogger(__name__)

# numba is optional: its compiler (llvmlite) is ~200 MB, not every install wants it. It is
# imported on first use, so an exporter that profiles no Parquet never loads it (~0.1 s).
AVAILABLE = importlib.util.find_spec("numba") is not None
_compiled: dict = {}
_lock = threading.Lock()


# Status indices, as profiles.STATUSES orders them (kept literal: a compiled loop reads
# module constants once, at compile time).
_VALID, _MISSING, _MALFORMED, _OUT_OF_RANGE = 0, 1, 2, 3
_FLOAT_MAX = float(np.finfo(np.float64).max)


def _profile_column(
    x, low, inv_width, n_cells, start, steps, edges, exact, lo, hi, infinite_malformed,
    counts, sums, status,
):  # fmt: skip
    """Add each value of ``x`` to ``counts``/``sums`` (its bin: ``searchsorted(edges, v,
    "right")``, NaN skipped) and its status to ``status``.

    The bin as ``profiles.bin_matrix`` finds it: ``start`` holds the lookup table's lower
    bound on the bin per cell of width 1/``inv_width`` from ``low``, and ``steps`` moves up
    one edge each where the value has passed it (``edges`` padded with +inf). Always
    ``steps`` of them, not a loop until done: a branch per value that the processor
    cannot predict cost a third of the time. ``exact``: no table, a binary search.
    ±inf are binned as ±largest floats (their sums stay infinite) or, with
    ``infinite_malformed``, counted malformed and not binned. In range: ``lo <= v <= hi``.
    """
    for i in range(x.shape[0]):
        v = x[i]
        if v != v:
            status[_MISSING] += 1
            continue
        b = min(max(v, -_FLOAT_MAX), _FLOAT_MAX)
        if b != v and infinite_malformed:
            status[_MALFORMED] += 1
            continue
        status[_OUT_OF_RANGE if (v < lo) | (v > hi) else _VALID] += 1
        if exact:
            k = np.searchsorted(edges, b, side="right")
        else:
            k = start[int(min(max((b - low) * inv_width, 0.0), n_cells - 1.0))]
            for _ in range(steps):
                k += b >= edges[k]
            if b < low:
                k = 0
        counts[k] += 1
        sums[k] += v


def _add_features(
    numeric, codes, row, low, inv_width, n_cells, start, steps, edges, exact,
    num, sums, cat, total_num, total_sum, total_cat,
):  # fmt: skip
    """A batch of a model's records into its feature window's ring: record i's numeric
    values (NaN skipped) counted and summed in their bins of ring row ``row[i]``, its
    categorical codes (-1 skipped) counted, and both into the since-start totals.

    Bins as ``_profile_column`` finds them, with one table row per column (``start[j]``,
    ``edges[j]``); one call per model and batch instead of some 30 numpy calls, which at
    a few records per model (a hundred models in one log) cost more than the records.
    In phases, each a tight loop of independent reads or writes: with a hundred models
    neither the tables nor the rings stay in cache, and a loop doing all of one value's
    work at once waits on its misses one after another (203 against 94 µs for 67 records
    × 50 features, numpy 182)."""
    n, f = numeric.shape
    cell = np.empty((n, f), np.int64)
    for i in range(n):  # the table's lower bound (-1: NaN)
        for j in range(f):
            v = numeric[i, j]
            if v != v:
                cell[i, j] = -1
            else:
                b = min(max(v, -_FLOAT_MAX), _FLOAT_MAX)
                cell[i, j] = start[
                    j, int(min(max((b - low[j]) * inv_width[j], 0.0), n_cells - 1.0))
                ]
    for i in range(n):  # the bin
        for j in range(f):
            k = cell[i, j]
            if k < 0:
                continue
            b = min(max(numeric[i, j], -_FLOAT_MAX), _FLOAT_MAX)
            if exact[j]:
                k = np.searchsorted(edges[j], b, side="right")
            else:
                for _ in range(steps):
                    k += b >= edges[j, k]
                if b < low[j]:
                    k = 0
            cell[i, j] = k
    for i in range(n):
        r = row[i]
        for j in range(f):
            if cell[i, j] >= 0:
                num[r, j, cell[i, j]] += 1
    for i in range(n):
        r = row[i]
        for j in range(f):
            if cell[i, j] >= 0:
                sums[r, j, cell[i, j]] += numeric[i, j]
    for i in range(n):
        for j in range(f):
            if cell[i, j] >= 0:
                total_num[j, cell[i, j]] += 1
                total_sum[j] += numeric[i, j]
    for i in range(codes.shape[0]):
        r = row[i]
        for j in range(codes.shape[1]):
            c = codes[i, j]
            if c >= 0:
                cat[r, j, c] += 1
                total_cat[j, c] += 1


def profile_column():
    """``_profile_column`` compiled (on the first call), or None without numba."""
    return _get(_profile_column)


def add_features():
    """``_add_features`` compiled (on the first call), or None without numba."""
    return _get(_add_features)


def _get(fn):
    if not AVAILABLE:
        return None
    compiled = _compiled.get(fn.__name__)
    if compiled is None:
        with _lock:
            compiled = _compiled.get(fn.__name__) or _compile(fn)
            _compiled[fn.__name__] = compiled
    return compiled or None


def _compile(fn):
    global AVAILABLE
    try:
        import numba
    except ImportError as exc:  # installed but unusable (e.g. a numpy it does not support)
        log.warning("numba unusable, profiling with numpy: %s", exc)
        AVAILABLE = False
        return False
    # nogil: a partition profiled on its own thread leaves the GIL to serving ingest.
    try:  # cache: compiled once per install (~0.5 s), not once per process
        return numba.njit(nogil=True, cache=True)(fn)
    except RuntimeError:  # no writable place for the cache: compile in each process
        return numba.njit(nogil=True)(fn)
