"""Skew/drift from Parquet: our profiles vs Evidently's DataDriftPreset, same data, one run.

    python bench/drift.py [--rows 1000000] [--no-evidently]

Data: a reference and a current Parquet file of ``--rows`` rows each, 20 numeric and 10
categorical features; in the current file 5 numeric features shift by 0.3 sigma and 2
categorical ones change their mix. Ours runs in this process, pinned to one core; Evidently
runs in its own venv (bench/.venv-evidently: ``pip install evidently 'pandas<3' pyarrow``),
also pinned to one core, and reports its time, peak RSS and per-feature scores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import CATEGORICAL, CATEGORIES, NUMERIC, OUT, pin_one_core, table
from exporter.config import parse_config
from exporter.sources.datasets import profile_file
from exporter.sources.reference import build_reference
from exporter.state import kernels
from exporter.state.profiles import Profile
from exporter.stats import drift

EVIDENTLY_PY = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), ".venv-evidently", "bin", "python"
)
SHIFTED_NUMERIC = NUMERIC[:5]
SHIFTED_CATEGORICAL = CATEGORICAL[:2]


def write_data(path: str, rows: int, seed: int, shifted: bool) -> str:
    if os.path.exists(path):
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rng = np.random.default_rng(seed)
    p_base = np.geomspace(1, 0.1, len(CATEGORIES))
    p_base /= p_base.sum()
    p_shift = p_base[::-1]
    schema = pa.schema(
        [(n, pa.float64()) for n in NUMERIC] + [(c, pa.string()) for c in CATEGORICAL]
    )
    with pq.ParquetWriter(path + ".tmp", schema) as writer:
        for start in range(0, rows, 131_072):
            n = min(131_072, rows - start)
            cols = {}
            for i, name in enumerate(NUMERIC):
                shift = 0.3 if shifted and name in SHIFTED_NUMERIC else 0.0
                cols[name] = rng.normal(i + shift, 1.0 + i / 10, n)
            for name in CATEGORICAL:
                p = p_shift if shifted and name in SHIFTED_CATEGORICAL else p_base
                cols[name] = np.array(CATEGORIES)[rng.choice(len(CATEGORIES), n, p=p)]
            writer.write_table(pa.table(cols, schema=schema))
    os.replace(path + ".tmp", path)
    return path


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scores_from_profiles(ref, current: Profile) -> dict:
    specs, base = ref.features.specs, ref.features.profile
    out = {}
    for j, spec in enumerate(specs.numeric):
        b = drift.NumericCounts(base.numeric[j, : spec.bins], base.sums[j, : spec.bins])
        c = drift.NumericCounts(current.numeric[j, : spec.bins], current.sums[j, : spec.bins])
        out[spec.name] = drift.numeric_scores(
            spec.edges, spec.groups, spec.psi_bins, spec.scale, b, c
        )
    for j, spec in enumerate(specs.categorical):
        out[spec.name] = drift.categorical_scores(
            base.categorical[j, : spec.bins], current.categorical[j, : spec.bins]
        )
    return out


def run_ours(ref_path: str, cur_path: str, rows: int) -> dict:
    logs = os.path.join(OUT, "logs")
    os.makedirs(logs, exist_ok=True)
    model = parse_config(
        {
            "models": [
                {
                    "name": "bench",
                    "serving_logs": [os.path.join(logs, "*")],
                    "reference": {"path": ref_path},
                    "features": {"numeric": NUMERIC, "categorical": CATEGORICAL},
                }
            ]
        }
    ).models[0]
    rss0 = peak_rss_mb()
    t0 = time.perf_counter()
    ref = build_reference(model)
    t_ref = time.perf_counter() - t0
    rss_ref = peak_rss_mb()
    specs = ref.features.specs
    # The current file is profiled as a dataset partition is (statuses too): by the
    # compiled loop where numba is installed (exporter/state/kernels.py), which the first
    # call loads (and compiles, once per install); a second call is what every further
    # partition costs.
    t0 = time.perf_counter()
    current = profile_file(cur_path, specs, None, 0.1).features
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    profile_file(cur_path, specs, None, 0.1)
    t_cur = time.perf_counter() - t0
    runs = []
    for _ in range(30):
        t0 = time.perf_counter()
        scores_from_profiles(ref, current)  # skew
        scores_from_profiles(ref, current)  # drift: same work against the previous window
        runs.append(time.perf_counter() - t0)
    scores = scores_from_profiles(ref, current)
    return {
        "t_ref": t_ref,
        "t_first": t_first,
        "t_cur": t_cur,
        "t_scores": statistics.median(runs),
        "rss_ref_growth": rss_ref - rss0,
        "rss_peak": peak_rss_mb(),
        "scores": scores,
        "rows": rows,
    }


def run_evidently(ref_path: str, cur_path: str) -> dict | None:
    if not os.path.exists(EVIDENTLY_PY):
        return None
    runner = os.path.join(os.path.dirname(os.path.abspath(__file__)), "evidently_runner.py")
    cmd = [
        "taskset",
        "-c",
        "0",
        EVIDENTLY_PY,
        runner,
        ref_path,
        cur_path,
        json.dumps(NUMERIC),
        json.dumps(CATEGORICAL),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        print(out.stderr[-3000:], file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--no-evidently", action="store_true")
    args = ap.parse_args()
    pin_one_core()
    ref_path = write_data(os.path.join(OUT, f"drift-ref-{args.rows}.parquet"), args.rows, 1, False)
    cur_path = write_data(os.path.join(OUT, f"drift-cur-{args.rows}.parquet"), args.rows, 2, True)
    ours = run_ours(ref_path, cur_path, args.rows)
    evid = None if args.no_evidently else run_evidently(ref_path, cur_path)
    total = ours["t_ref"] + ours["t_first"] + ours["t_scores"]
    rows = [
        (
            "reference profile build (1 file, 30 cols)",
            f"{ours['t_ref']:.2f} s",
            f"{args.rows / ours['t_ref'] / 1e6:.2f}M rows/s",
            f"+{ours['rss_ref_growth']:.0f} MiB",
        ),
        (
            "current profile, the first partition",
            f"{ours['t_first']:.2f} s",
            f"{args.rows / ours['t_first'] / 1e6:.2f}M rows/s",
            "numba loaded" if kernels.AVAILABLE else "numpy (no numba)",
        ),
        (
            "current profile, each partition after",
            f"{ours['t_cur']:.2f} s",
            f"{args.rows / ours['t_cur'] / 1e6:.2f}M rows/s",
            "",
        ),
        (
            "skew + drift, 30 features, from profiles",
            f"{ours['t_scores'] * 1000:.2f} ms",
            "median of 30",
            "",
        ),
        (
            "ours end to end (both files -> scores)",
            f"{total:.2f} s",
            "",
            f"peak {ours['rss_peak']:.0f} MiB",
        ),
    ]
    if evid:
        rows.append(
            (
                "Evidently DataDriftPreset end to end",
                f"{evid['seconds']:.2f} s",
                f"{evid['seconds'] / total:.0f}x ours",
                f"peak {evid['peak_rss_mb']:.0f} MiB",
            )
        )
    print(
        f"{args.rows} reference rows, {args.rows} current rows, 20 numeric + 10 categorical; "
        "one core"
    )
    print(table(rows, ("step", "time", "rate", "memory")))
    if evid:
        print()
        cmp_rows = []
        for feature in [*SHIFTED_NUMERIC[:2], NUMERIC[10], *SHIFTED_CATEGORICAL, CATEGORICAL[5]]:
            ours_f, ev_f = ours["scores"][feature], evid["scores"].get(feature, {})
            for method in ("js", "wasserstein", "psi"):
                if method in ours_f and method in ev_f:
                    same_base = ours_f[method] * np.sqrt(np.log(2)) if method == "js" else None
                    cmp_rows.append(
                        (
                            feature,
                            method,
                            f"{ours_f[method]:.4f}",
                            f"{same_base:.4f}" if same_base is not None else "",
                            f"{ev_f[method]:.4f}",
                        )
                    )
        print(table(cmp_rows, ("feature", "method", "ours", "ours, natural log", "Evidently")))
        print(
            "Ours: numeric PSI/JS on 10 reference deciles, categorical on categories; JS is "
            "base 2 (DESIGN), Evidently's is scipy's natural-log default (x sqrt(ln 2)). "
            "Evidently's numeric PSI bins its own histogram of both samples."
        )


if __name__ == "__main__":
    main()
