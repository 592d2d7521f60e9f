"""Quality before labels: ours (stats/estimate.py over the exporter's score bins) beside
NannyML's CBPE, chunk by chunk, against the realized values.

    python bench/quality_estimate.py [--rows 50000] [--chunk 5000] [--repeats 5]

NannyML runs in its own venv (bench/.venv-nannyml: ``pip install nannyml==0.13.1
'pandas<3' statsmodels``), never a project dependency. The data: a binary classifier whose
scores are monotone but not calibrated (``sigmoid(1.5 x + 0.3)`` for a truth of
``sigmoid(2 x)``); the reference and the first half of the analysis chunks have
``x ~ N(0, 1)``; the second half ``x ~ N(0, 0.6)`` — traffic near the decision boundary,
where quality drops. Both estimators calibrate on the reference (both isotonic); ours from
the exporter's 100 quantile bins of the reference scores. Printed: per chunk, both
estimates and the realized value; each one's mean absolute error; the alert decisions (both
judged against NannyML's own thresholds); the time of each (fit + estimate, data in memory;
medians of --repeats).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.stats import rankdata

from bench.common import OUT, table
from exporter.state.profiles import NumericSpec
from exporter.stats.estimate import calibration_map, estimate_binary

HERE = os.path.dirname(os.path.abspath(__file__))
NANNYML = os.path.join(HERE, ".venv-nannyml", "bin", "python")
THRESHOLD = 0.5


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def make(rng, n: int, spread: float) -> dict:
    x = rng.normal(0.0, spread, n)
    y = rng.random(n) < sigmoid(2.0 * x)
    score = sigmoid(1.5 * x + 0.3)
    return {"score": score, "pred": (score >= THRESHOLD).astype(np.int64), "y": y.astype(np.int64)}


def realized(score: np.ndarray, y: np.ndarray) -> dict:
    pred = score >= THRESHOLD
    n1 = y.sum()
    auc = (rankdata(score)[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * (len(y) - n1))
    return {"accuracy": float((pred == (y == 1)).mean()), "auc": float(auc)}


def ours(ref: dict, chunks: list[dict]) -> list[dict]:
    """The exporter's path: reference bins and positives per bin (the profile build's pass
    2), the isotonic map, then per chunk its score histogram (what the windows hold) and the
    estimate."""
    s = ref["score"]
    spec = NumericSpec.from_sample("score", s, float(s.min()), float(s.max()), float(s.std()))
    idx = spec.bin_index(s)
    counts = np.bincount(idx, minlength=spec.bins)
    positives = np.bincount(idx, weights=ref["y"], minlength=spec.bins)
    calibrated = calibration_map(counts, positives)
    out = []
    for c in chunks:
        i = spec.bin_index(c["score"])
        n = np.bincount(i, minlength=spec.bins)
        sums = np.bincount(i, weights=c["score"], minlength=spec.bins)
        mean = np.where(n > 0, sums / np.maximum(n, 1), 0.5)
        est = estimate_binary(n, mean, calibrated, THRESHOLD)
        out.append({m: est[m][0] for m in ("accuracy", "auc")})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--chunk", type=int, default=5_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    if not os.path.exists(NANNYML):
        sys.exit(f"no NannyML venv at {NANNYML}: see this file's docstring")
    rng = np.random.default_rng(0)
    ref = make(rng, args.rows, 1.0)
    k = args.rows // args.chunk
    chunks = [make(rng, args.chunk, 1.0) for _ in range(k // 2)]
    chunks += [make(rng, args.chunk, 0.6) for _ in range(k - k // 2)]
    os.makedirs(OUT, exist_ok=True)
    ref_path = os.path.join(OUT, "cbpe-ref.parquet")
    ana_path = os.path.join(OUT, "cbpe-analysis.parquet")
    pq.write_table(pa.table(ref), ref_path)
    pq.write_table(pa.table({c: np.concatenate([x[c] for x in chunks]) for c in ref}), ana_path)

    theirs_runs = []
    ours_times = []
    for _ in range(args.repeats):
        run = subprocess.run(
            [NANNYML, os.path.join(HERE, "nannyml_runner.py"), ref_path, ana_path, str(args.chunk)],
            capture_output=True,
            text=True,
            check=True,
        )
        theirs_runs.append(json.loads(run.stdout.strip().splitlines()[-1]))
        start = time.perf_counter()
        mine = ours(ref, chunks)
        ours_times.append(time.perf_counter() - start)
    theirs = theirs_runs[0]
    truth = [realized(c["score"], c["y"]) for c in chunks]

    rows = []
    for i, (t, m) in enumerate(zip(truth, mine, strict=True)):
        rows.append(
            (
                i,
                "shifted" if i >= k // 2 else "as reference",
                f"{t['auc']:.4f}",
                f"{theirs['auc']['value'][i]:.4f}",
                f"{m['auc']:.4f}",
                f"{t['accuracy']:.4f}",
                f"{theirs['accuracy']['value'][i]:.4f}",
                f"{m['accuracy']:.4f}",
            )
        )
    print(
        f"{args.rows} reference rows, {k} analysis chunks of {args.chunk}; "
        f"NannyML {theirs['version']} CBPE beside ours"
    )
    print(
        table(
            rows,
            (
                "chunk",
                "traffic",
                "AUC realized",
                "AUC CBPE",
                "AUC ours",
                "acc realized",
                "acc CBPE",
                "acc ours",
            ),
        )
    )
    summary = []
    for metric in ("auc", "accuracy"):
        real = np.array([t[metric] for t in truth])
        cb = np.array(theirs[metric]["value"])
        me = np.array([m[metric] for m in mine])
        lower, upper = theirs[metric]["lower"], theirs[metric]["upper"]
        my_alerts = [bool(v < lower or v > upper) for v in me]
        summary.append(
            (
                metric,
                f"{np.abs(cb - real).mean():.4f}",
                f"{np.abs(me - real).mean():.4f}",
                f"{np.abs(me - real).mean() - np.abs(cb - real).mean():+.4f}",
                f"{sum(theirs[metric]['alert'])}/{k}",
                f"{sum(my_alerts)}/{k}",
                "yes" if my_alerts == theirs[metric]["alert"] else "NO",
            )
        )
    print(
        table(
            summary,
            (
                "metric",
                "MAE CBPE",
                "MAE ours",
                "ours - CBPE (target <= 0.001)",
                "alerts CBPE",
                "alerts ours",
                "same decisions",
            ),
        )
    )
    t_theirs = statistics.median(r["seconds"] for r in theirs_runs)
    t_ours = statistics.median(ours_times)
    print(
        table(
            [(f"{t_theirs * 1000:.1f}", f"{t_ours * 1000:.2f}", f"{t_theirs / t_ours:.0f}x")],
            ("CBPE ms (fit + estimate)", "ours ms", "speed-up (target >= 20x)"),
        )
    )


if __name__ == "__main__":
    main()
