"""Quality before labels: ours (stats/estimate.py over the exporter's score bins) beside
NannyML's CBPE, chunk by chunk, against the realized values — binary and multiclass.

    python bench/quality_estimate.py [--rows 50000] [--chunk 5000] [--repeats 5]
                                     [--task binary|multiclass|both]

NannyML runs in its own venv (bench/.venv-nannyml: ``pip install nannyml==0.13.1
'pandas<3' statsmodels``), never a project dependency.

Binary: a classifier whose scores are monotone but not calibrated (``sigmoid(1.5 x + 0.3)``
for a truth of ``sigmoid(2 x)``); the reference and the first half of the analysis chunks
have ``x ~ N(0, 1)``; the second half ``x ~ N(0, 0.6)`` — traffic near the decision
boundary, where quality drops. Multiclass: three classes, the truth ``softmax(W x)`` over a
2-D ``x``, the model's probabilities ``softmax(0.6 W x + b)`` (overconfident in no class,
biased towards one); the shift is the same shrink of ``x`` towards the boundaries.
Both estimators calibrate on the reference (both isotonic); ours from the exporter's 100
quantile bins of each reference score column, and, for multiclass, through the exporter's
own window (state/class_scores.py). Printed: per chunk, both estimates and the realized
value; each one's mean absolute error; the alert decisions (both judged against NannyML's
own thresholds); the time of each (fit + estimate, data in memory; medians of --repeats).
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
from exporter.state.class_scores import ClassScoreWindow
from exporter.state.profiles import ColumnSpecs, NumericSpec, bin_matrix
from exporter.state.windows import BucketClock
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


CLASSES = ("a", "b", "c")
W = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
BIAS = np.array([0.3, 0.0, -0.2])


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def make_multiclass(rng, n: int, spread: float) -> dict:
    x = rng.normal(0.0, spread, (n, 2))
    truth = softmax(x @ W.T)
    y = (rng.random((n, 1)) > np.cumsum(truth, axis=1)).sum(axis=1)
    p = softmax(0.6 * x @ W.T + BIAS)
    out = {f"p_{c}": p[:, k] for k, c in enumerate(CLASSES)}
    out["pred"] = np.array(CLASSES)[p.argmax(axis=1)]
    out["y"] = np.array(CLASSES)[y]
    return out


def scores_of(data: dict) -> np.ndarray:
    return np.stack([data[f"p_{c}"] for c in CLASSES], axis=1)


def realized_multiclass(data: dict) -> dict:
    """Accuracy and macro one-vs-rest ROC AUC (as scikit-learn's roc_auc_score computes)."""
    p, y = scores_of(data), np.searchsorted(CLASSES, data["y"])
    aucs = []
    for k in range(len(CLASSES)):
        pos = y == k
        n1 = pos.sum()
        aucs.append((rankdata(p[:, k])[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * (len(y) - n1)))
    return {"accuracy": float((p.argmax(axis=1) == y).mean()), "auc": float(np.mean(aucs))}


def ours_multiclass(ref: dict, chunks: list[dict]) -> list[dict]:
    """The exporter's path: per class, reference bins and the rows labelled that class per
    bin (the profile build's pass 2), the isotonic maps, then per chunk the window the
    exporter keeps and its estimate."""
    p = scores_of(ref)
    specs = ColumnSpecs(
        tuple(
            NumericSpec.from_sample(f"p_{c}", p[:, k], p[:, k].min(), p[:, k].max(), p[:, k].std())
            for k, c in enumerate(CLASSES)
        )
    )
    bins = bin_matrix(specs, p)
    y = np.searchsorted(CLASSES, ref["y"])
    width = specs.numeric_width
    calibrated = np.stack(
        [
            calibration_map(
                np.bincount(bins[:, k], minlength=width),
                np.bincount(bins[:, k], weights=y == k, minlength=width),
            )
            for k in range(len(CLASSES))
        ]
    )
    out = []
    for c in chunks:
        window = ClassScoreWindow(BucketClock(60, 60), specs, calibrated, n_slots=1)
        scores = scores_of(c)
        window.add(0, np.zeros(len(scores), np.int64), scores, np.full(len(scores), -1))
        est = window.estimate(30.0, 0)
        out.append({m: est[m][0] for m in ("accuracy", "auc")})
    return out


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


TASKS = {
    "binary": (make, lambda c: realized(c["score"], c["y"]), ours, ()),
    "multiclass": (make_multiclass, realized_multiclass, ours_multiclass, CLASSES),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--chunk", type=int, default=5_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--task", choices=(*TASKS, "both"), default="both")
    args = ap.parse_args()
    if not os.path.exists(NANNYML):
        sys.exit(f"no NannyML venv at {NANNYML}: see this file's docstring")
    for task in TASKS if args.task == "both" else (args.task,):
        compare(task, args)


def compare(task: str, args) -> None:
    make_one, realized_one, ours_one, classes = TASKS[task]
    rng = np.random.default_rng(0)
    ref = make_one(rng, args.rows, 1.0)
    k = args.rows // args.chunk
    chunks = [make_one(rng, args.chunk, 1.0) for _ in range(k // 2)]
    chunks += [make_one(rng, args.chunk, 0.6) for _ in range(k - k // 2)]
    os.makedirs(OUT, exist_ok=True)
    ref_path = os.path.join(OUT, f"cbpe-{task}-ref.parquet")
    ana_path = os.path.join(OUT, f"cbpe-{task}-analysis.parquet")
    pq.write_table(pa.table(ref), ref_path)
    pq.write_table(pa.table({c: np.concatenate([x[c] for x in chunks]) for c in ref}), ana_path)

    theirs_runs = []
    ours_times = []
    runner = os.path.join(HERE, "nannyml_runner.py")
    for _ in range(args.repeats):
        run = subprocess.run(
            [NANNYML, runner, ref_path, ana_path, str(args.chunk), *classes],
            capture_output=True,
            text=True,
            check=True,
        )
        theirs_runs.append(json.loads(run.stdout.strip().splitlines()[-1]))
        start = time.perf_counter()
        mine = ours_one(ref, chunks)
        ours_times.append(time.perf_counter() - start)
    theirs = theirs_runs[0]
    truth = [realized_one(c) for c in chunks]

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
        f"\n{task}: {args.rows} reference rows, {k} analysis chunks of {args.chunk}; "
        f"NannyML {theirs['version']} CBPE beside ours"
        + (" (macro one-vs-rest AUC)" if classes else "")
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
