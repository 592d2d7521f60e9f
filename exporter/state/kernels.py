"""Compiled loops that profile a whole column in one pass (numba; the ``fast`` extra).

A Parquet partition's numeric column costs numpy ~17 passes over its values (clip, NaN
mask, lookup cell, gather, correction steps, offsets, two bincounts, status masks); the
loop here reads each value once: its status, its bin and its sum. Without numba (the
extra not installed) ``AVAILABLE`` is False and callers take the numpy path, which gives
the same counts (tests/unit/state/test_kernels.py).

Used for dataset partitions only. Loading numba costs a process ~140 MiB of RSS (47 MiB
anonymous, the rest LLVM's code), loaded on the first call: an exporter that watches no
dataset never pays it. Serving windows were faster by ~1.4 µs a line at 100 models with a
compiled loop too, but the 140 MiB took the 100 x 100, 24 h bench past its 1 GB bound.
"""

from __future__ import annotations

import importlib.util
import logging
import threading

import numpy as np

log = logging.getLogger(__name__)

# numba is optional: its compiler (llvmlite) is ~200 MB on disk, not every install wants it.
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


def profile_column():
    """``_profile_column`` compiled (on the first call), or None without numba."""
    if not AVAILABLE:
        return None
    fn = _compiled.get("profile_column")
    if fn is None:
        with _lock:
            fn = _compiled.get("profile_column") or _compile(_profile_column)
            _compiled["profile_column"] = fn
    return fn or None


def failed() -> None:
    """The compiled loop raised (a compiler or typing error, not the data's doing): logged
    with its traceback, and numpy from now on."""
    global AVAILABLE
    log.exception("the compiled loop failed; profiling Parquet with numpy from now on")
    AVAILABLE = False


def _compile(fn):
    global AVAILABLE
    try:
        import numba
    except ImportError as exc:  # installed but unusable (e.g. a numpy it does not support)
        log.warning("numba unusable, profiling Parquet with numpy: %s", exc)
        AVAILABLE = False
        return False
    log.info("profiling Parquet partitions with a compiled loop (numba %s)", numba.__version__)
    # nogil: a partition profiled on its own thread leaves the GIL to serving ingest.
    try:  # cache: compiled once per install (~0.5 s), not once per process
        return numba.njit(nogil=True, cache=True)(fn)
    except RuntimeError:  # no writable place for the cache: compile in each process
        return numba.njit(nogil=True)(fn)
