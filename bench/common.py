"""Shared bits for the benchmarks: data generation, timing, RSS, one-core pinning."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import psutil

NUMERIC = [f"num_{i}" for i in range(20)]
CATEGORICAL = [f"cat_{i}" for i in range(10)]
CATEGORIES = [f"v{i}" for i in range(12)]
OUT = os.path.join(os.path.dirname(__file__), "out")


def pin_one_core() -> None:
    """The targets are per core: keep this process (and its threads) on CPU 0."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


# Bench logs are stamped relative to when they were made; older ones are regenerated, so
# their records always fall inside the bench's 7-day windows.
MAX_AGE_SECONDS = 3 * 86400


def serving_log(path: str, lines: int, seed: int = 0, shift: float = 0.0) -> str:
    """A serving log of ``lines`` lines with 20 numeric and 10 categorical features."""
    if os.path.exists(path) and time.time() - os.path.getmtime(path) < MAX_AGE_SECONDS:
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rng = np.random.default_rng(seed)
    block = 50_000
    t0 = time.time() - 3600
    with open(path + ".tmp", "w") as fh:
        for start in range(0, lines, block):
            n = min(block, lines - start)
            num = np.round(rng.normal(shift, 1.0, (n, len(NUMERIC))), 4)
            cat = rng.integers(0, len(CATEGORIES), (n, len(CATEGORICAL)))
            lat = np.round(rng.lognormal(2.5, 0.5, n), 3)
            out = []
            for k in range(n):
                i = start + k
                ts = t0 + i * 0.001
                feats = dict(zip(NUMERIC, num[k].tolist(), strict=True))
                feats.update({c: CATEGORIES[v] for c, v in zip(CATEGORICAL, cat[k], strict=True)})
                out.append(
                    json.dumps(
                        {
                            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts))
                            + f".{i % 1000:03d}Z",
                            "model": "bench",
                            "model_version": "v2" if i % 10 == 0 else "v1",
                            "request_id": f"{seed}-{i}",
                            "latency_ms": float(lat[k]),
                            "status": "error" if i % 97 == 0 else "ok",
                            "features": feats,
                            "prediction": round(float(rng.random()), 4),
                        }
                    )
                )
            fh.write("\n".join(out) + "\n")
    os.replace(path + ".tmp", path)
    return path


def table(rows: list[tuple], headers: tuple) -> str:
    cols = list(zip(*([headers, *rows]), strict=True))
    widths = [max(len(str(c)) for c in col) for col in cols]

    def line(r):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), sep, *[line(r) for r in rows]])


def reference_parquet(path: str, rows: int = 200_000, seed: int = 99) -> str:
    """Training data from the same distribution as serving_log()'s features."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if os.path.exists(path):
        return path
    rng = np.random.default_rng(seed)
    cols = {name: rng.normal(0.0, 1.0, rows) for name in NUMERIC}
    for name in CATEGORICAL:
        cols[name] = np.array(CATEGORIES)[rng.integers(0, len(CATEGORIES), rows)]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pq.write_table(pa.table(cols), path)
    return path
